"""Epoching helpers shared by offline evaluation, training and the online decoder.

Band-pass design choice (why online == offline)
-----------------------------------------------
The band-pass is one causal Butterworth filter (``scipy.signal.sosfilt``), started at the steady
state of its first input sample (:func:`causal_filter`), that runs **over the stream as it
arrives**: the online decoder keeps its state per stream and filters only the new samples every
hop (:class:`decoders.online.DecoderStream`); pseudo-online replay filters the whole recording
once with the same function, starting where the first window starts, and restarting after
samples that are not finite, exactly as the online stream does (:meth:`OnlineDecoder.replay`).
Online and pseudo-online decisions are therefore the same numbers.

Training cuts each epoch from the *raw* signal with ``pad`` extra seconds in front and
:class:`BandPass` filters that padded window the same way (started on its first sample) and
drops the padding. A continuously filtered window differs from it only by the filter's response
to the samples before the padding: its energy after 1 s of padding is below 3e-9 of the total
for the 8-32 Hz band at 160-2048 Hz, two passes of order 4 (:func:`impulse_residual`); measured
on EEGMMIDB decisions the largest probability difference is below 1e-3 (see
``tests/decoders/test_online.py``). The first window after a (re)start of the stream filter
(engine start, gap, NaN) is filtered exactly like a training epoch.
"""
from __future__ import annotations

import functools
import logging

import numpy as np
from scipy import signal
from sklearn.base import BaseEstimator, TransformerMixin

from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)


def n_samples(seconds: float, sfreq: float) -> int:
    """Number of samples in ``seconds`` at ``sfreq`` (rounded)."""
    return int(round(seconds * sfreq))


def epoch_length(tmin: float, tmax: float, sfreq: float) -> int:
    """Samples in an epoch from ``tmin`` to ``tmax`` inclusive (MNE's convention)."""
    return n_samples(tmax, sfreq) - n_samples(tmin, sfreq) + 1


def extract_epochs(
    data: np.ndarray,
    sfreq: float,
    onsets: np.ndarray,
    tmin: float,
    tmax: float,
    pad: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut padded raw epochs out of a continuous recording.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Continuous signal (unfiltered).
    sfreq : float
        Sampling rate in Hz.
    onsets : ndarray of int, shape (n_events,)
        Event onsets in samples.
    tmin, tmax : float
        Epoch start and end relative to the onset, in seconds (``tmax`` included).
    pad : float
        Seconds of signal kept in front of ``tmin`` for the band-pass filter to settle.

    Returns
    -------
    X : ndarray, shape (n_kept, n_channels, n_pad + n_epoch)
        The epochs that fit inside the recording.
    kept : ndarray of int, shape (n_kept,)
        Indices into ``onsets`` of the epochs kept.
    """
    data = np.asarray(data)
    if data.ndim != 2:
        raise DecoderError(f"data must be (n_channels, n_times), got shape {data.shape}")
    start_off = n_samples(tmin, sfreq) - n_samples(pad, sfreq)
    length = n_samples(pad, sfreq) + epoch_length(tmin, tmax, sfreq)
    onsets = np.asarray(onsets, dtype=int)
    starts = onsets + start_off
    kept = np.flatnonzero((starts >= 0) & (starts + length <= data.shape[1]))
    if len(kept) < len(onsets):  # all dropped: the caller's error says it; some: a warning
        (logger.warning if len(kept) else logger.info)("dropped %d of %d epochs whose window (tmin %g to tmax %g s, %g s padding) "
                       "does not fit in the recording", len(onsets) - len(kept), len(onsets), tmin, tmax, pad)
    idx = starts[kept, None] + np.arange(length)[None, :]
    X = data[:, idx].transpose(1, 0, 2)
    return np.ascontiguousarray(X), kept


def bandpass_sos(sfreq: float, l_freq: float, h_freq: float, order: int = 4,
                 passes: int = 1) -> np.ndarray:
    """Second-order sections of the Butterworth band-pass used everywhere.

    Parameters
    ----------
    sfreq, l_freq, h_freq : float
        Sampling rate and pass band in Hz.
    order : int
        Butterworth order of the prototype (scipy's ``butter(order, ..., "bandpass")``).
    passes : int
        How many times the filter is applied in cascade. ``passes=2`` gives the squared
        magnitude response of the Butterworth, i.e. the magnitude of a forward-backward
        (zero-phase) filter such as MNE's / MOABB's IIR band-pass, but causally.

    Returns
    -------
    sos : ndarray, shape (passes * n_sections, 6)
    """
    nyq = sfreq / 2.0
    if not 0 < l_freq < h_freq < nyq:
        raise DecoderError(
            f"band ({l_freq}, {h_freq}) Hz must satisfy 0 < low < high < Nyquist ({nyq} Hz)"
        )
    if int(passes) != passes or passes < 1:
        raise DecoderError(f"passes must be a positive integer, got {passes!r}")
    return _butter_sos(float(sfreq), float(l_freq), float(h_freq), int(order), int(passes)).copy()


@functools.lru_cache(maxsize=64)
def _butter_sos(sfreq: float, l_freq: float, h_freq: float, order: int, passes: int) -> np.ndarray:
    # designed once per setting: the online decoder filters every window with the same filter,
    # and scipy's design + sosfilt_zi were ~70 % of the band-pass time of one window
    sos = np.tile(signal.butter(order, [l_freq, h_freq], btype="bandpass", fs=sfreq, output="sos"),
                  (passes, 1))
    sos.flags.writeable = False
    return sos


@functools.lru_cache(maxsize=64)
def _sosfilt_zi(sos_bytes: bytes, n_sections: int) -> np.ndarray:
    zi = signal.sosfilt_zi(np.frombuffer(sos_bytes).reshape(n_sections, 6))
    zi.flags.writeable = False
    return zi


def impulse_residual(sos: np.ndarray, n: int) -> float:
    """Fraction of the filter's impulse-response energy that comes after ``n`` samples.

    A window padding of ``n`` samples is adequate when this is small (the output at the first
    kept sample then hardly depends on the signal before the window).
    """
    length = max(4 * int(n), 64)
    x = np.zeros(length)
    x[0] = 1.0
    h = signal.sosfilt(sos, x)
    total = float(np.sum(h**2))
    while abs(h[-1]) > 1e-12 * np.max(np.abs(h)) and length < 1_000_000:  # not decayed yet
        length *= 4
        x = np.zeros(length)
        x[0] = 1.0
        h = signal.sosfilt(sos, x)
        total = float(np.sum(h**2))
    return float(np.sum(h[int(n):] ** 2) / total) if total > 0 else 0.0


def causal_filter(
    x: np.ndarray, sos: np.ndarray, zi: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Causal IIR filter over the last axis, its state carried from call to call.

    The one filter function of neurodeck: training epochs, the live stream (chunk by chunk) and
    pseudo-online replay (the whole recording at once) all go through it. Filtering a signal in
    pieces, passing each call's ``zf`` as the next call's ``zi``, gives the same output as
    filtering it at once.

    Parameters
    ----------
    x : ndarray, shape (..., n_times)
        Signal (e.g. ``(n_channels, n_times)`` or ``(n_windows, n_channels, n_times)``).
    sos : ndarray, shape (n_sections, 6)
    zi : ndarray, shape (n_sections, ..., 2), optional
        State after the previous piece; None starts the filter at the steady state of the first
        sample (as if the signal had been constant before it).

    Returns
    -------
    y : ndarray, shape (..., n_times)
    zf : ndarray, shape (n_sections, ..., 2)
        The state to pass with the next piece.
    """
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    if zi is None:
        zi0 = _sosfilt_zi(sos.tobytes(), sos.shape[0])  # (n_sections, 2)
        lead = (slice(None),) + (None,) * (x.ndim - 1) + (slice(None),)
        zi = zi0[lead] * x[None, ..., 0:1]
    return signal.sosfilt(sos, x, axis=-1, zi=zi)


def bandpass_windows(X: np.ndarray, sos: np.ndarray, n_pad: int) -> np.ndarray:
    """Causally filter each padded window (:func:`causal_filter`) and drop the padding.

    Parameters
    ----------
    X : ndarray, shape (n_windows, n_channels, n_times)
    sos : ndarray, shape (n_sections, 6)
    n_pad : int
        Leading samples to drop after filtering.

    Returns
    -------
    Xf : ndarray, shape (n_windows, n_channels, n_times - n_pad)
    """
    return causal_filter(X, sos)[0][..., n_pad:]


class BandPass(TransformerMixin, BaseEstimator):
    """Causal Butterworth band-pass of padded windows (first step of every pipeline).

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    l_freq, h_freq : float
        Pass band in Hz.
    order : int
        Butterworth order.
    pad : float
        Seconds at the start of each window used only to settle the filter, then dropped.
    passes : int
        Number of causal passes of the Butterworth in cascade (see :func:`bandpass_sos`).
        The class default (1) keeps bundles saved before this parameter existed unchanged;
        :func:`decoders.pipelines.make_pipeline` uses 2 (the magnitude response of the
        zero-phase reference filter).
    """

    def __init__(self, sfreq: float = 160.0, l_freq: float = 8.0, h_freq: float = 32.0,
                 order: int = 4, pad: float = 1.0, passes: int = 1) -> None:
        self.sfreq = sfreq
        self.l_freq = l_freq
        self.h_freq = h_freq
        self.order = order
        self.pad = pad
        self.passes = passes

    def fit(self, X, y=None):  # noqa: ARG002
        self._check(X)
        return self

    def _check(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 3:
            raise DecoderError(
                f"BandPass expects X of shape (n_windows, n_channels, n_times), got {X.shape}"
            )
        n_pad = n_samples(self.pad, self.sfreq)
        if X.shape[-1] <= n_pad + 1:
            raise DecoderError(
                f"windows of {X.shape[-1]} samples are too short for a {self.pad} s filter "
                f"padding ({n_pad} samples at {self.sfreq} Hz)"
            )
        return X

    def transform(self, X):
        X = self._check(X)
        return bandpass_windows(X, self.sos(), n_samples(self.pad, self.sfreq))

    def sos(self) -> np.ndarray:
        """The filter's second-order sections, shape (n_sections, 6)."""
        return bandpass_sos(self.sfreq, self.l_freq, self.h_freq, self.order, self.passes)


class PickChannels(TransformerMixin, BaseEstimator):
    """Keep a subset of channels, by name, inside a pipeline.

    Parameters
    ----------
    ch_names : list of str
        Names of the channels of the incoming data, in order.
    picks : list of str
        Channels to keep (names are matched ignoring case and trailing dots).
    """

    def __init__(self, ch_names=None, picks=None) -> None:
        self.ch_names = ch_names
        self.picks = picks

    def indices(self) -> np.ndarray:
        return pick_indices(self.ch_names, self.picks)

    def fit(self, X, y=None):  # noqa: ARG002
        self.indices()
        return self

    def transform(self, X):
        X = np.asarray(X)
        if X.ndim != 3 or X.shape[1] != len(self.ch_names):
            raise DecoderError(
                f"PickChannels expects (n_windows, {len(self.ch_names)}, n_times), got {X.shape}"
            )
        return X[:, self.indices(), :]


def normalize_name(name: str) -> str:
    """Channel name for matching (:func:`decoders.channels.channel_key`: case, EEGMMIDB's trailing
    dots, ``EEG``/``-REF`` decorations and old 10-20 aliases ignored)."""
    from neurodeck.decoders.channels import channel_key

    return channel_key(name)


def pick_indices(ch_names, picks) -> np.ndarray:
    """Indices of ``picks`` in ``ch_names`` (matched with :func:`normalize_name`).

    Raises
    ------
    DecoderError
        Naming the picks that are not present.
    """
    if ch_names is None:
        raise DecoderError("channel names are required to pick channels")
    if picks is None:
        return np.arange(len(ch_names))
    lookup = {normalize_name(n): i for i, n in enumerate(ch_names)}
    missing = [p for p in picks if normalize_name(p) not in lookup]
    if missing:
        raise DecoderError(
            f"channels {missing} not found; available: {[str(c) for c in ch_names]}"
        )
    return np.array([lookup[normalize_name(p)] for p in picks], dtype=int)
