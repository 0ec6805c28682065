"""Online decoding: one window in, one decision out (the same computation as batch evaluation).

:class:`OnlineDecoder` wraps a :class:`~decoders.onnx.ModelBundle`. ``decide(window)`` is
literally ``decide_batch(window[None])[0]``: the feature stage (the fitted numpy/pyriemann steps
rebuilt from the sidecar, starting with the causal band-pass of the padded window) and the
onnxruntime head, so a live window and the same window in an offline batch give the same numbers.

Invalid windows
---------------
A window holding NaN or Inf is never decoded: ``decide`` returns ``None`` and ``decide_batch``
returns a row of NaN for it (``valid_mask`` tells which rows are real decisions).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from neurodeck.decoders.channels import ChannelMatch, match_channels
from neurodeck.decoders.errors import ChannelMismatchError, DecoderError

logger = logging.getLogger(__name__)


class OnlineDecoder:
    """Decide on the latest window(s) with a model bundle.

    Parameters
    ----------
    bundle : ModelBundle or path
        A loaded bundle or its directory.
    sfreq_tol : float
        Relative tolerance when comparing the stream's rate with the model's.

    Attributes
    ----------
    labels : list of str
        Output names (class labels).
    picks_ : ndarray of int or None
        Row indices chosen by :meth:`check_stream` (model channel order) applied by ``decide``;
        None until a stream is checked (windows must then have the model's channels in order).
    """

    def __init__(self, bundle, sfreq_tol: float = 1e-3) -> None:
        from neurodeck.decoders.onnx import ModelBundle, load_bundle

        if not isinstance(bundle, ModelBundle):
            bundle = load_bundle(Path(bundle))
        self.bundle = bundle
        self.sfreq_tol = sfreq_tol
        self.picks_: np.ndarray | None = None
        self.channel_match_: ChannelMatch | None = None

    @property
    def labels(self) -> list[str]:
        return self.bundle.classes

    @property
    def ch_names(self) -> list[str]:
        return self.bundle.ch_names

    @property
    def sfreq(self) -> float:
        return self.bundle.sfreq

    @property
    def window_samples(self) -> int:
        """Samples per window the decoder needs (filter padding included)."""
        return self.bundle.window_samples

    @property
    def pad_samples(self) -> int:
        """Leading samples of each window that only settle the band-pass."""
        return self.bundle.pad_samples

    @property
    def unit(self) -> str:
        """Unit of the training windows (the engine converts a stream to it)."""
        return str(self.bundle.meta.get("unit") or "microvolts")

    @property
    def calibration_amplitude(self) -> float | None:
        """:func:`decoders.calibration.amplitude_scale` of the training windows (None if unknown)."""
        value = (self.bundle.meta.get("calibration") or {}).get("amplitude")
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    def check_stream(
        self,
        ch_names: Sequence[str],
        sfreq: float,
        mapping: Mapping[str, str] | None = None,
    ) -> np.ndarray:
        """Match a stream's channels and rate with the model's.

        Parameters
        ----------
        ch_names : sequence of str
            The stream's channel labels, in stream order.
        sfreq : float
            The stream's nominal rate in Hz.
        mapping : dict of str to str, optional
            Model channel -> stream channel, for channels named differently (e.g.
            ``{"C3": "EEG 5"}``); other channels are matched by name, else ignoring case,
            trailing dots, ``EEG``/``-REF`` decorations and old 10-20 aliases
            (:func:`decoders.channels.match_channels`; the result is kept in ``channel_match_``).

        Returns
        -------
        picks : ndarray of int, shape (n_model_channels,)
            Stream row of each model channel (also stored in ``picks_``; extra stream channels
            are ignored).

        Raises
        ------
        ChannelMismatchError
            Naming the missing channels, or the two rates.
        """
        if sfreq is None or abs(float(sfreq) - self.sfreq) > self.sfreq_tol * self.sfreq:
            raise ChannelMismatchError(
                f"stream rate {sfreq} Hz differs from the model's {self.sfreq} Hz; resample or "
                "retrain"
            )
        match = match_channels(self.ch_names, [str(c) for c in ch_names], mapping)
        if not match.ok:
            extra = list(match.unused)
            raise ChannelMismatchError(
                f"model channels missing from the stream: {list(match.missing)} "
                f"({len(match.pairs)} of {len(self.ch_names)} found); stream channels not used by "
                f"the model: {extra[:20]}{' ...' if len(extra) > 20 else ''}. Pass a channel "
                "mapping (model name -> stream name) if they are named differently"
            )
        self.channel_match_ = match
        logger.info("channels: %s", match.summary())
        picks = list(match.picks)
        self.picks_ = np.asarray(picks, dtype=int)
        return self.picks_

    def stream_picks(self, ch_names: Sequence[str], sfreq: float) -> np.ndarray:
        """Alias of :meth:`check_stream` without mapping (what ``app.engine`` calls)."""
        return self.check_stream(ch_names, sfreq)

    def _check_batch(self, windows: np.ndarray) -> np.ndarray:
        W = np.asarray(windows, dtype=float)
        if W.ndim != 3:
            raise DecoderError(
                f"windows must be (n_windows, n_channels, n_times), got shape {W.shape}"
            )
        n_ch = len(self.ch_names)
        if W.shape[1] != n_ch or W.shape[2] != self.window_samples:
            raise DecoderError(
                f"window shape {W.shape[1:]} does not match the model: expected ({n_ch} channels "
                f"{self.ch_names[:4]}..., {self.window_samples} samples = filter padding + "
                f"{self.bundle.meta.get('window_s')} s at {self.sfreq} Hz)"
            )
        return W

    def valid_mask(self, windows: np.ndarray) -> np.ndarray:
        """True for windows without NaN/Inf, shape (n_windows,)."""
        W = np.asarray(windows, dtype=float)
        # a sum is NaN/Inf iff some element is (or the values are absurdly large: also invalid);
        # one pass without a boolean copy of the batch
        with np.errstate(over="ignore", invalid="ignore"):
            return np.isfinite(W.sum(axis=tuple(range(1, W.ndim))))

    def decide_batch(self, windows: np.ndarray) -> np.ndarray:
        """Outputs for a batch of windows.

        Parameters
        ----------
        windows : ndarray, shape (n_windows, n_model_channels, window_samples)
            Raw windows (same unit as training, microvolts by default), model channel order.

        Returns
        -------
        out : ndarray, shape (n_windows, n_outputs)
            Probabilities (or continuous values); rows of NaN for windows with NaN/Inf.
        """
        W = self._check_batch(windows)
        valid = self.valid_mask(W)
        out = np.full((len(W), len(self.labels)), np.nan)
        if valid.any():
            out[valid] = self.bundle.predict_proba(W[valid])
        return out

    def decide(self, window: np.ndarray) -> np.ndarray | None:
        """Output for one window, or None if it holds NaN/Inf.

        Parameters
        ----------
        window : ndarray, shape (n_channels, n_times)
            Model channels in order, or the stream's channels if :meth:`check_stream` was called
            (then rows are picked with ``picks_``).

        Returns
        -------
        out : ndarray, shape (n_outputs,) or None
        """
        w = np.asarray(window, dtype=float)
        if w.ndim != 2:
            raise DecoderError(f"a window must be (n_channels, n_times), got shape {w.shape}")
        if self.picks_ is not None and w.shape[0] != len(self.ch_names):
            if w.shape[0] <= self.picks_.max():
                raise DecoderError(
                    f"window has {w.shape[0]} channels, the checked stream had more "
                    f"(picks up to row {self.picks_.max()})"
                )
            w = w[self.picks_]
        out = self.decide_batch(w[None])[0]
        return None if np.isnan(out).any() else out
