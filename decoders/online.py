"""Online decoding: one window in, one decision out (the same computation as batch evaluation).

:class:`OnlineDecoder` wraps a :class:`~decoders.onnx.ModelBundle`. ``decide(window)`` is
literally ``decide_batch(window[None])[0]``: the feature stage (the fitted numpy/pyriemann steps
rebuilt from the sidecar, starting with the causal band-pass of the padded window) and the
onnxruntime head, so a live window and the same window in an offline batch give the same numbers.

Streaming (constant work per hop)
---------------------------------
:meth:`OnlineDecoder.open_stream` gives a :class:`DecoderStream`: the band-pass runs over the
stream as it arrives with its state carried (:func:`decoders.epochs.causal_filter`), on the
model's channels only (a ``PickChannels`` step right after the band-pass is applied *before*
filtering, and a spectrum followed by a feature selection keeps only the selected features'
channels); each hop filters only the new samples. A band-pass with ``decim > 1`` (the model's
working rate, :func:`decoders.epochs.decimation_factor`) low-passes the new samples, keeps every
q-th and band-passes those (:func:`decoders.epochs.decimating_filter`): the stream's samples,
blocks and sums below are at the working rate, and hops must be whole working samples
(:meth:`OnlineDecoder.hop_samples`). When the next step is the OAS covariance,
the window's covariance is summed from per-hop blocks (``x @ x.T`` of each hop once, then a sum
over the window's blocks, kept as running sums re-summed once per window) instead of recomputed
over the whole window. A fitted Riemannian tangent space keeps its reference's whitening
``P = C_ref^-1/2`` (computed once at load) and, after an OAS covariance, folds it into the block
sums (Grams of the whitened blocks, :func:`_whitened_oas`): one eigendecomposition per window and
no matrix product by ``P``. A filter-bank tangent space streams one such plan per sub-band
(:class:`FilterBankStream`). :meth:`OnlineDecoder.replay` (pseudo-online) filters a whole
recording once with the same function and the same (re)start rule and decides the same windows:
the stream's decisions equal the replay's (tests/decoders/test_online.py).

Invalid windows
---------------
A window holding NaN or Inf is never decoded: ``decide`` returns ``None`` and ``decide_batch``
returns a row of NaN for it (``valid_mask`` tells which rows are real decisions).
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from neurodeck.decoders.channels import ChannelMatch, match_channels
from neurodeck.decoders.epochs import (
    BandPass,
    PickChannels,
    decimating_filter,
    filter_windows,
    kept_offset,
    n_samples,
    n_working,
)
from neurodeck.decoders.errors import ChannelMismatchError, DecoderError

logger = logging.getLogger(__name__)

try:  # the routine behind scipy.signal.sosfilt (same numbers, no argument checks)
    from scipy.signal._sosfilt import _sosfilt
except ImportError:  # pragma: no cover - another scipy layout: the public function
    _sosfilt = None


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
        self._plan = _StreamPlan.of(bundle)

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
    def decim(self) -> int:
        """Decimation factor of the stream filter (1: the model works at the stream's rate)."""
        return 1 if self._plan is None else int(self._plan.q)

    @property
    def working_sfreq(self) -> float:
        """Rate of the filtered signal the features see, in Hz (``sfreq / decim``)."""
        return self.sfreq / self.decim

    def hop_samples(self, seconds: float) -> int:
        """Samples per hop of ``seconds``: rounded to whole working samples (a multiple of
        :attr:`decim`, at least one), what the engine and pseudo-online replay use."""
        q = self.decim
        if not seconds > 0:
            raise DecoderError(f"hop of {seconds!r} s invalid; expected > 0 seconds")
        return q * max(1, int(round(float(seconds) * self.sfreq / q)))

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
            if self._plan is None:  # adaptive steps update causally (see _StreamPlan.features)
                out[valid] = self.bundle.predict_proba(W[valid], adapt=True)
            else:
                p = self._plan
                X = W[valid] if p.sub is None else W[valid][:, p.sub]
                parts = [bp.transform(bp.filter_windows(X)) for bp in p.bands]
                out[valid] = self.bundle.run_head(p.combine(parts, self.bundle))
        return out

    def open_stream(self, hop: int) -> DecoderStream | FilterBankStream | RawWindowStream:
        """Per-stream state for deciding every ``hop`` samples on a live stream.

        Parameters
        ----------
        hop : int
            Samples between decisions (windows end on multiples of it, in the stream's absolute
            sample index).

        Returns
        -------
        DecoderStream, FilterBankStream or RawWindowStream
            A :class:`DecoderStream` when the model starts with the band-pass, a
            :class:`FilterBankStream` (one per sub-band) for a filter-bank tangent space, else a
            :class:`RawWindowStream` that decides each raw window.
        """
        if self._plan is None:
            return RawWindowStream(self)
        if isinstance(self._plan, _FilterBankPlan):
            return FilterBankStream(self, hop)
        return DecoderStream(self, hop)

    def replay(self, data: np.ndarray, hop: int, batch: int = 256,
               progress: Callable[[int], None] | None = None,
               threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Pseudo-online decisions of a continuous recording, as a live stream would get them.

        The band-pass runs once over the recording (:func:`decoders.epochs.causal_filter`),
        started at the first window's start and restarted at the start of the first window
        without NaN/Inf after windows with NaN/Inf (what :class:`DecoderStream` does live);
        the features and the head then run on batches of the filtered windows.

        Parameters
        ----------
        data : ndarray, shape (n_model_channels, n_times)
            Raw recording, model channels in order.
        hop : int
            Samples between windows; windows end on multiples of it (a multiple of
            :attr:`decim`: :meth:`hop_samples`).
        batch : int
            Windows per call of the features and the head.
        progress : callable or None
            Called as ``progress(n_windows_done)`` after every batch (it may raise to cancel).
        threads : int
            Batches whose features are computed at the same time, each in its own thread
            (their ``eigh`` and matrix products release the GIL). The outputs are the same
            numbers for any value: every batch is computed alone and the head takes them in
            order. A model with an adaptive step (online re-centering) computes one batch at a
            time, in order, whatever this says.

        Returns
        -------
        ends : ndarray of int, shape (n_windows,)
            Sample index (exclusive) where each window ends.
        outputs : ndarray, shape (n_windows, n_outputs)
            NaN rows for windows holding NaN/Inf.
        """
        data = np.asarray(data, dtype=float)
        W = self.window_samples
        if data.ndim != 2 or data.shape[0] != len(self.ch_names):
            raise DecoderError(f"data must be ({len(self.ch_names)} model channels, n_times), "
                               f"got shape {data.shape}")
        first = -(-W // hop) * hop
        ends = np.arange(first, data.shape[1] + 1, hop)
        out = np.full((len(ends), len(self.labels)), np.nan)
        if not len(ends):
            return ends, out
        bad = np.concatenate([[0], np.cumsum(~np.isfinite(data).all(axis=0))])
        ok = bad[ends] == bad[ends - W]
        if self._plan is None:  # no stream filter: each raw window, as RawWindowStream does
            for i in range(0, len(ends), batch):
                e = ends[i:i + batch][ok[i:i + batch]]
                if len(e):
                    idx = e[:, None] + np.arange(-W, 0)[None, :]
                    rows = np.flatnonzero(ok[i:i + batch]) + i
                    out[rows] = self.decide_batch(data[:, idx].transpose(1, 0, 2))
                if progress is not None:
                    progress(min(i + batch, len(ends)))
            return ends, out
        p = self._plan
        q = p.q
        if hop % q:
            raise DecoderError(f"hop of {hop} samples is not a multiple of the model's decimation "
                               f"factor {q} (working rate {self.working_sfreq:g} Hz); use "
                               "OnlineDecoder.hop_samples(seconds)")
        x = data if p.sub is None else data[p.sub]
        starts = [int(e - W) for j, e in enumerate(ends) if ok[j] and (j == 0 or not ok[j - 1])]
        n_sig, hop_w = n_working(W - p.n_pad, q), hop // q  # at the working rate
        rows = np.flatnonzero(ok)
        blocks = all(bp.covariance_first for bp in p.bands) and n_sig >= hop_w
        ys = []  # per band: the filtered recording and, for a tangent space, its whitening
        for bp in p.bands:
            y = np.full((len(x), x.shape[1] // q), np.nan)  # working sample j: input (j + 1) q - 1
            for a, b in zip(starts, [*starts[1:], x.shape[1]], strict=True):
                seg = decimating_filter(x[:, a:b], bp.sos, q, bp.aa, start=a)[0]
                j0 = (a + kept_offset(a, q) + 1) // q - 1
                y[:, j0:j0 + seg.shape[1]] = seg
            ts = bp.whitening if blocks else None
            ys.append((y, None if ts is None else ts.cm12 @ y))  # NaN stays in its columns
        batch = max(1, min(batch, 2**22 // len(x) ** 2))  # block Grams: <= ~32 MB a batch

        def features(i: int) -> tuple[np.ndarray, list[np.ndarray]]:
            r = rows[i:i + batch]
            return r, [bp.window_part(y, yw, ends[r] // q, n_sig, hop_w, blocks)
                       for bp, (y, yw) in zip(p.bands, ys, strict=True)]

        # an adaptive step's reference moves window by window: its batches go one after another
        threads = 1 if self.bundle.adaptive_steps or len(rows) <= batch else threads
        with (one_blas_thread() if threads > 1 else contextlib.nullcontext(),
              contextlib.closing(_in_order(features, range(0, len(rows), batch), threads)) as it):
            for r, parts in it:
                out[r] = self.bundle.run_head(p.combine(parts, self.bundle))
                if progress is not None:
                    progress(int(np.searchsorted(ends, ends[r[-1]], side="right")))
        return ends, out

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


def _block_sums(y: np.ndarray, ends: np.ndarray, n: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums of ``x x^T`` and of ``x`` over the windows ``y[:, e - n:e]``, from hop-long blocks.

    Parameters
    ----------
    y : ndarray, shape (n_channels, n_times)
        Filtered (or whitened filtered) signal.
    ends : ndarray of int, shape (n_windows,)
        Window ends, multiples of ``hop``.
    n, hop : int
        Window length and block length in samples (``n >= hop``).

    Returns
    -------
    S : ndarray, shape (n_windows, n_channels, n_channels)
    s : ndarray, shape (n_windows, n_channels)
    """
    q, r = divmod(n, hop)
    b_lo, b_hi = int(ends.min()) // hop - q, int(ends.max()) // hop
    Yb = y[:, b_lo * hop:b_hi * hop].reshape(len(y), b_hi - b_lo, hop)
    Yb = np.ascontiguousarray(Yb.transpose(1, 0, 2))  # (n_blocks, ch, hop)
    G = Yb @ Yb.transpose(0, 2, 1)  # (n_blocks, ch, ch), each block once
    s = Yb.sum(axis=2)  # (n_blocks, ch)
    first = ends // hop - q - b_lo  # first whole block of each window
    # sums over q consecutive blocks: a window one hop after the previous one is the previous
    # sum plus the block entering minus the block leaving (two passes a window, in this batch
    # only, so rounding stays at the scale of a few hundred blocks: ~1e-14 relative), any other
    # window (the batch's first, or after skipped windows) the sum of its q blocks
    bad = ~np.isfinite(s.sum(axis=1) + np.einsum("bii->b", G))  # only in windows not decided
    G[bad], s[bad] = 0.0, 0.0  # here (kept out of the running sums, which would carry NaN on)
    S = np.empty((len(ends), *G.shape[1:]))
    prev = None
    for i, f in enumerate(first.tolist()):
        if prev is not None and f == prev + 1:
            np.add(S[i - 1], G[f + q - 1], out=S[i])
            S[i] -= G[f - 1]
        else:
            G[f:f + q].sum(axis=0, out=S[i])
        prev = f
    sc = np.zeros((len(s) + 1, len(y)))
    np.cumsum(s, axis=0, out=sc[1:])
    m = sc[first + q] - sc[first]
    if r:
        idx = (ends - n)[:, None] + np.arange(r)[None, :]
        Xr = y[:, idx].transpose(1, 0, 2)  # (n_windows, ch, r)
        if r == 1:  # outer products by broadcasting (no stack of k=1 matrix products)
            S += Xr[:, :, :1] * Xr[:, None, :, 0]
        else:
            S += Xr @ Xr.transpose(0, 2, 1)
        m += Xr.sum(axis=2)
    return S, m


def _oas(S: np.ndarray, m: np.ndarray, n: int) -> np.ndarray:
    """OAS covariances from sums ``S`` (n_windows, c, c) and means ``m`` (n_windows, c) of n samples."""
    from neurodeck.decoders.pipelines import oas_shrink

    return oas_shrink(S / n - m[:, :, None] * m[:, None, :], n)


def _whitened_oas(S: np.ndarray, m: np.ndarray, Sw: np.ndarray, n: int, ts) -> np.ndarray:
    """``P C P`` for the OAS covariances ``C`` of windows, without a product by ``P`` per window.

    With ``P = C_ref^-1/2`` (:class:`_CachedTangentSpace`), ``C = (1 - a) E + a mu I`` (OAS of the
    empirical covariance ``E = S / n - m m^T``) and ``Sw`` the same sums over the whitened signal
    ``P y``: ``P C P = (1 - a) (Sw / n - (P m)(P m)^T) + a mu P^2``. ``a`` and ``mu`` need ``E``
    (elementwise, no matrix product); the per-window products ``P C P`` (2 c^3 flops, ~4 ms at
    256 channels) become a per-sample whitening (c^2 per sample and channel count).

    Parameters
    ----------
    S, Sw : ndarray, shape (n_windows, c, c)
    m : ndarray, shape (n_windows, c)
    n : int
    ts : _CachedTangentSpace

    Returns
    -------
    M : ndarray, shape (n_windows, c, c)
    """
    from neurodeck.decoders.pipelines import oas_coefficients

    E = S / n
    E -= m[:, :, None] * m[:, None, :]  # in place: the same numbers, one temporary less
    a, mu = oas_coefficients(E, n)
    mw = m @ ts.cm12  # (P m) per row; P is symmetric
    M = Sw / n
    M -= mw[:, :, None] * mw[:, None, :]
    M *= (1.0 - a)[:, None, None]
    M += (a * mu)[:, None, None] * ts.p2
    return M


class _CachedTangentSpace:
    """A fitted affine-invariant tangent space with its reference's whitening cached.

    ``pyriemann.tangentspace.TangentSpace.transform`` recomputes ``C_ref^-1/2`` (one
    eigendecomposition of the reference) on every call; the model fixes the reference, so it is
    computed once here: ``upper(logm(C_ref^-1/2 C C_ref^-1/2))``, one ``eigh`` per window. Same
    formula and functions as pyriemann (``log_map_riemann``, ``upper``).
    """

    def __init__(self, ts) -> None:
        from pyriemann.geometry.base import invsqrtm

        self.ts = ts
        self.cm12 = invsqrtm(np.asarray(ts.reference_, dtype=float))
        self.p2 = self.cm12 @ self.cm12  # C_ref^-1
        n = self.cm12.shape[0]
        iu = np.triu_indices(n)
        self.flat = iu[0] * n + iu[1]  # upper triangle, row by row, of a flattened matrix
        self.coeffs = np.where(iu[0] == iu[1], 1.0, np.sqrt(2.0))

    @staticmethod
    def applies(step) -> bool:
        from pyriemann.tangentspace import TangentSpace

        return (type(step) is TangentSpace and getattr(step, "metric", None) == "riemann"
                and not getattr(step, "tsupdate", False) and hasattr(step, "reference_"))

    def transform(self, C: np.ndarray) -> np.ndarray:
        """C : ndarray, shape (n, c, c) -> tangent vectors, shape (n, c * (c + 1) / 2)."""
        return self.log_map(self.cm12 @ C @ self.cm12)

    def log_map(self, M: np.ndarray) -> np.ndarray:
        """Whitened matrices ``C_ref^-1/2 C C_ref^-1/2`` (n, c, c) -> tangent vectors."""
        w, V = np.linalg.eigh(M)
        L = (V * np.log(w)[:, None, :]) @ np.swapaxes(V, -1, -2)
        T = L.reshape(len(L), -1)[:, self.flat]
        T *= self.coeffs
        return T


def _only_selected_channels(sub, rest: list) -> tuple:
    """A spectrum followed by a (channel, frequency) selection needs only the selected channels.

    ``PSD`` is computed channel by channel and ``FeatureSelector`` keeps a few (channel,
    frequency) pairs (psd-lda: 10): the channels no selected feature uses are dropped before
    the band-pass (copies of both steps, renumbered; the bundle's steps are not changed).
    """
    import copy

    from neurodeck.decoders.features.psd import PSD
    from neurodeck.decoders.selection import FeatureSelector

    if not (len(rest) >= 2 and type(rest[0]) is PSD and type(rest[1]) is FeatureSelector
            and hasattr(rest[1], "selected_") and hasattr(rest[0], "n_channels_")):
        return sub, rest
    psd, sel = rest[0], rest[1]
    chans = sorted({int(c) for c, _ in sel.selected_})
    if len(chans) >= psd.n_channels_:
        return sub, rest
    base = np.arange(psd.n_channels_) if sub is None else np.asarray(sub)
    pos = {c: i for i, c in enumerate(chans)}
    psd2, sel2 = copy.copy(psd), copy.copy(sel)
    psd2.n_channels_ = sel2.n_channels_ = len(chans)
    sel2.selected_ = [(pos[int(c)], int(f)) for c, f in sel.selected_]
    return base[chans], [psd2, sel2, *rest[2:]]


class _StreamPlan:
    """How a bundle's feature stage splits into the stream filter and the window features.

    Attributes
    ----------
    sos : ndarray, shape (n_sections, 6)
        The band-pass (first feature step), at the working rate.
    n_pad : int
        Its padding in input samples (dropped from windows).
    q : int
        Decimation factor to the working rate (1: none).
    aa : ndarray or None
        The anti-alias low-pass at the input rate (q > 1).
    sub : ndarray of int or None
        A ``PickChannels`` right after the band-pass, applied before filtering instead.
    steps : list of estimator
        The remaining feature steps (tangent spaces with cached whitening).
    """

    def __init__(self, sos, n_pad, sub, steps, q: int = 1, aa=None) -> None:
        self.sos, self.n_pad, self.sub, self.steps = sos, n_pad, sub, steps
        self.q, self.aa = int(q), aa

    def filter_windows(self, X: np.ndarray) -> np.ndarray:
        """The band-pass of padded raw windows (to the working rate), padding dropped."""
        return filter_windows(X, self.sos, self.n_pad, self.q, self.aa)

    @classmethod
    def of(cls, bundle) -> _StreamPlan | _FilterBankPlan | None:
        from neurodeck.decoders.pipelines import FilterBankTangentSpace

        feats = [step for _, step in bundle.features]
        if feats and type(feats[0]) is FilterBankTangentSpace:
            return _FilterBankPlan.of(feats[0], feats[1:])
        if not feats or not isinstance(feats[0], BandPass):
            return None  # decided window by window
        bp, rest = feats[0], feats[1:]
        sub = None
        if rest and isinstance(rest[0], PickChannels):
            sub, rest = rest[0].indices(), rest[1:]
        rest = [_CachedTangentSpace(st) if _CachedTangentSpace.applies(st) else st for st in rest]
        sub, rest = _only_selected_channels(sub, rest)
        return cls(bp.sos(), n_samples(bp.pad, bp.sfreq), sub, rest, bp.q, bp.antialias())

    @property
    def covariance_first(self) -> bool:
        from neurodeck.decoders.pipelines import OASCovariances

        return bool(self.steps) and type(self.steps[0]) is OASCovariances

    @property
    def whitening(self) -> _CachedTangentSpace | None:
        """The tangent space right after the OAS covariance (its whitening folds into the sums)."""
        if self.covariance_first and len(self.steps) > 1 and isinstance(self.steps[1],
                                                                         _CachedTangentSpace):
            return self.steps[1]
        return None

    @property
    def bands(self) -> list[_StreamPlan]:
        """The filtered signals this plan decides from (one: its band-pass)."""
        return [self]

    def transform(self, X: np.ndarray, start: int = 0) -> np.ndarray:
        """Output of the feature steps from step ``start`` on (``X``: filtered windows, or what
        step ``start`` takes).

        Adaptive steps (online re-centering, :class:`decoders.transfer.Recentering`) update their
        state with the windows in order: live (:class:`DecoderStream`), pseudo-online
        (:meth:`OnlineDecoder.replay`) and :meth:`OnlineDecoder.decide_batch` all come here.
        """
        from neurodeck.decoders.transfer import transform_steps

        return transform_steps([("", st) for st in self.steps[start:]], X, adapt=True)

    def combine(self, parts: list[np.ndarray], bundle) -> np.ndarray:
        """Head input from the output of :meth:`transform` (one part: this plan's)."""
        return _head_input(parts[0], bundle)

    def window_part(self, y: np.ndarray, yw: np.ndarray | None, ends: np.ndarray, n: int, hop: int,
                    blocks: bool) -> np.ndarray:
        """:meth:`transform` of the windows ``y[:, e - n:e]`` of a filtered recording.

        With ``blocks`` the OAS covariances come from hop-block sums (as :class:`DecoderStream`
        computes them live), whitened with ``yw`` (``P y``) when a tangent space follows.
        """
        if not blocks:
            view = np.lib.stride_tricks.sliding_window_view(y, n, axis=1)  # (ch, pos, n)
            return self.transform(np.ascontiguousarray(view[:, ends - n, :].transpose(1, 0, 2)))
        S, sm = _block_sums(y, ends, n, hop)
        ts = self.whitening
        if ts is None:
            return self.transform(_oas(S, sm / n, n), start=1)
        Sw = _block_sums(yw, ends, n, hop)[0]
        # the per-window matrix work in chunks that stay in the CPU cache (the same numbers: each
        # window's matrices are computed alone; ~30 % less time than whole batches of 256 here)
        k = _CACHE_WINDOWS
        T = [ts.log_map(_whitened_oas(S[i:i + k], sm[i:i + k] / n, Sw[i:i + k], n, ts))
             for i in range(0, len(S), k)]
        return self.transform(np.concatenate(T), start=2)


#: Windows per chunk of the per-window matrix work in pseudo-online replay (see window_part).
_CACHE_WINDOWS = 32


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit = None  # threadpoolctl's limiter while anyone holds one BLAS thread


@contextlib.contextmanager
def one_blas_thread():
    """One BLAS thread, process-wide, while any holder runs; the setting before the first
    holder is given back when the last one leaves.

    Holders: the online engine while it decodes (``app.engine``) and a replay running in
    threads. Their linear algebra is small; OpenBLAS's own threads on top of it spin for the
    cores the other threads hold (ts-lr replay with 2 threads on 2 cores: 57x real time with 2
    BLAS threads, 148x with one; ``benchmarks.throughput --blas-threads 0``). Holders may leave
    in any order: a replay that ends while an engine runs leaves the engine at one thread.
    Nothing is changed when BLAS already runs one thread (e.g. in ``neurodeck evaluate``).
    """
    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            from threadpoolctl import threadpool_info, threadpool_limits

            if any(p.get("user_api") == "blas" and p.get("num_threads", 1) > 1
                   for p in threadpool_info()):
                _blas_limit = threadpool_limits(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limit is not None:
                _blas_limit.restore_original_limits()
                _blas_limit = None


def _in_order(fn: Callable, items, threads: int):
    """``map(fn, items)`` with up to ``threads`` calls running at once; results in item order.

    At most ``threads + 1`` results wait to be taken (a batch's features are megabytes); what
    has not started when the caller stops taking results (e.g. a cancelled replay) never runs.
    """
    if threads <= 1:
        yield from map(fn, items)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    ex = ThreadPoolExecutor(threads, thread_name_prefix="neurodeck-replay")
    pending: deque = deque()
    try:
        for item in items:
            pending.append(ex.submit(fn, item))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _head_input(X: np.ndarray, bundle) -> np.ndarray:
    """Features as the ONNX head takes them: (n, n_features), C order, the head's dtype."""
    if bundle.kind == "pipeline":
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    return np.ascontiguousarray(X, dtype=bundle.input_dtype)


class _FilterBankPlan:
    """A :class:`~decoders.pipelines.FilterBankTangentSpace` as streams: one band plan (band-pass
    -> OAS covariance -> tangent space with cached whitening) per sub-band, their vectors
    concatenated in band order, then the remaining feature steps.

    Attributes
    ----------
    bands : list of _StreamPlan
    n_pad : int
    sub : None
    steps : list of estimator
        The feature steps after the filter bank (e.g. the standard scaler).
    """

    sub = None
    q = 1  # the filter bank filters at the input rate

    def __init__(self, bands: list[_StreamPlan], n_pad: int, steps: list) -> None:
        self.bands, self.n_pad, self.steps = bands, n_pad, steps

    @classmethod
    def of(cls, fb, rest: list) -> _FilterBankPlan | None:
        from neurodeck.decoders.epochs import bandpass_sos
        from neurodeck.decoders.pipelines import OASCovariances

        tss = getattr(fb, "tangent_spaces_", None)
        if (tss is None or len(tss) != len(fb.bands) or len(fb.orders) != len(fb.bands)
                or not all(_CachedTangentSpace.applies(ts) for ts in tss)):
            return None
        n_pad = n_samples(fb.pad, fb.sfreq)
        bands = [_StreamPlan(bandpass_sos(fb.sfreq, float(b[0]), float(b[1]), int(o), fb.passes),
                             n_pad, None, [OASCovariances(), _CachedTangentSpace(ts)])
                 for b, o, ts in zip(fb.bands, fb.orders, tss, strict=True)]
        return cls(bands, n_pad, list(rest))

    def combine(self, parts: list[np.ndarray], bundle) -> np.ndarray:
        from neurodeck.decoders.transfer import transform_steps

        X = transform_steps([("", st) for st in self.steps], np.concatenate(parts, axis=1),
                            adapt=True)
        return _head_input(X, bundle)


class DecoderStream:
    """The carried state of one live stream: filter state, filtered samples, block covariances.

    Used by ``app.engine``: ``reset`` (re)starts the filter on a raw padded window (exactly as
    training filters an epoch), ``push`` filters the samples that arrived since, ``decide``
    decides the window ending at :attr:`end`. Filtered samples (at the working rate) are kept in
    a ring of one window (written twice, so the newest window is always one contiguous view).

    Parameters
    ----------
    decoder : OnlineDecoder
    hop : int
        Input samples between decisions (a multiple of the decimation factor); covariance
        blocks are one hop long and aligned on multiples of it.
    plan : _StreamPlan or None
        What to compute (default: the decoder's; a :class:`FilterBankStream` gives one band's).

    Attributes
    ----------
    end : int or None
        Absolute input index one past the last filtered sample; None until ``reset`` (and after
        ``invalidate``).
    needs_window : bool
        False: ``decide`` ignores the raw window (the engine then reads only the new samples).
    """

    needs_window = False

    def __init__(self, decoder: OnlineDecoder, hop: int, plan: _StreamPlan | None = None) -> None:
        p = decoder._plan if plan is None else plan
        self._dec, self._p = decoder, p
        self.hop, self.q = int(hop), int(p.q)
        if self.hop < 1 or self.hop % self.q:
            raise DecoderError(f"hop of {hop} samples is not a positive multiple of the model's "
                               f"decimation factor {self.q} (working rate {decoder.sfreq / self.q:g} "
                               "Hz); use OnlineDecoder.hop_samples(seconds)")
        self.hop_w = self.hop // self.q
        self.n_sig = n_working(decoder.window_samples - p.n_pad, self.q)  # working samples
        n_f = len(decoder.ch_names) if p.sub is None else len(p.sub)
        self._ring = np.zeros((n_f, 2 * self.n_sig))
        self._sos = np.ascontiguousarray(p.sos, dtype=np.float64)
        self._aa = None if self.q == 1 else np.ascontiguousarray(p.aa, dtype=np.float64)
        # states in scipy's internal layout (n_f, n_sections, 2): band-pass, anti-alias
        self._zi: np.ndarray | None = None
        self._zaa: np.ndarray | None = None
        self.end: int | None = None
        self._nb, self._r = divmod(self.n_sig, self.hop_w)  # whole blocks per window, rest
        self._blocks = p.covariance_first and self._nb >= 1
        if self._blocks:
            self._ts = p.whitening
            k = 3 if self._ts is not None else 2  # x x^T, (P x)(P x)^T, x: per block, per slot
            self._gram = np.zeros((k - 1, self._nb, n_f, n_f))
            self._sum = np.zeros((self._nb, n_f))
            self._ids = [-1] * self._nb  # absolute block index held by each slot
            self._tot_g = np.zeros((k - 1, n_f, n_f))  # running sums over the slots' blocks
            self._rows = -(-n_f // self._nb)  # rows re-summed exactly per hop

    def invalidate(self) -> None:
        """Forget the filter state (a gap, NaN/Inf): the next ``reset`` restarts it."""
        self.end = None

    def reset(self, window: np.ndarray, end: int) -> None:
        """Start the filter on a raw padded window ``(n_model_channels, window_samples)``."""
        x = window if self._p.sub is None else window[self._p.sub]
        x = np.asarray(x, dtype=float)
        y, zf = decimating_filter(x, self._p.sos, self.q, self._p.aa, start=int(end) - x.shape[1])
        if self.q > 1:
            self._zaa = np.ascontiguousarray(zf[0].transpose(1, 0, 2))
            zf = zf[1]
        self._zi = np.ascontiguousarray(zf.transpose(1, 0, 2))
        self.end = int(end)
        if self._blocks:
            self._ids = [-1] * self._nb
            self._tot_g[:] = 0.0
        self._store(y)

    def push(self, new: np.ndarray) -> None:
        """Filter the raw samples ``(n_model_channels, n_new)`` that follow :attr:`end`."""
        x = new if self._p.sub is None else new[self._p.sub]
        y = np.array(x, dtype=np.float64, order="C")
        if self.q > 1:  # anti-alias at the input rate, then the kept samples only
            _sosfilt_inplace(self._aa, y, self._zaa)
            y = np.ascontiguousarray(y[:, kept_offset(self.end, self.q)::self.q])
        if y.shape[1]:
            _sosfilt_inplace(self._sos, y, self._zi)
        self.end += x.shape[1]
        self._store(y)

    def _store(self, y: np.ndarray) -> None:
        """Write working samples ``y`` as the ones ending at working index ``end // q``."""
        C = self.n_sig
        m = y.shape[1]
        if m > C:
            y, m = y[:, -C:], C
        i = (self.end // self.q - m) % C
        k = min(m, C - i)
        self._ring[:, i:i + k] = y[:, :k]
        self._ring[:, i + C:i + C + k] = y[:, :k]
        if m > k:
            self._ring[:, :m - k] = y[:, k:]
            self._ring[:, C:C + m - k] = y[:, k:]

    def _span(self, a: int, b: int) -> np.ndarray:
        """View of filtered working samples [a, b) (within the newest window)."""
        i = a % self.n_sig
        return self._ring[:, i:i + (b - a)]

    def decide(self, window: np.ndarray | None = None) -> np.ndarray | None:  # noqa: ARG002
        """Output for the window ending at :attr:`end` (``window``: unused, the raw window).

        Returns
        -------
        out : ndarray, shape (n_outputs,) or None
            None if the features are not finite.
        """
        return _run_head(self._p.combine([self.vectors()], self._dec.bundle), self._dec.bundle)

    def vectors(self) -> np.ndarray:
        """The plan's :meth:`_StreamPlan.transform` of the window ending at :attr:`end`, shape (1, ...)."""
        p, n = self._p, self.n_sig
        e = self.end // self.q  # at the working rate
        if self._blocks and self.end % self.hop == 0:
            hop, nb = self.hop_w, self._nb
            b1 = e // hop
            ts, G, tot_g = self._ts, self._gram, self._tot_g
            for b in range(b1 - nb, b1):
                k = b % nb
                if self._ids[k] != b:
                    if self._ids[k] >= 0:  # the block leaving the window
                        tot_g -= G[:, k]
                    x = self._span(b * hop, (b + 1) * hop)
                    G[0, k] = x @ x.T
                    if ts is not None:
                        xw = ts.cm12 @ x
                        G[1, k] = xw @ xw.T
                    self._sum[k] = x.sum(axis=1)
                    self._ids[k] = b
                    tot_g += G[:, k]
            # running sums drift by rounding: re-sum 1/nb of the rows exactly every hop (all of
            # them once per window, without a spike of nb matrix sums: 1.6 ms at 256 ch)
            rows = slice((b1 % nb) * self._rows, (b1 % nb + 1) * self._rows)
            G[:, :, rows].sum(axis=1, out=tot_g[:, rows])
            Sg, s = tot_g.copy(), self._sum.sum(axis=0)
            if self._r:
                x = self._span(e - n, e - nb * hop)
                Sg[0] += x @ x.T
                if ts is not None:
                    xw = ts.cm12 @ x
                    Sg[1] += xw @ xw.T
                s += x.sum(axis=1)
            if ts is None:
                return p.transform(_oas(Sg[:1], s[None] / n, n), start=1)
            M = _whitened_oas(Sg[:1], s[None] / n, Sg[1:], n, ts)
            return p.transform(ts.log_map(M), start=2)
        return p.transform(self._span(e - n, e)[None])


def _sosfilt_inplace(sos: np.ndarray, y: np.ndarray, zi: np.ndarray) -> None:
    """Filter ``y`` (n, n_times; float64, C order) in place, its state ``zi`` (n, n_sections, 2)
    too: scipy's sosfilt routine without its per-call checks (~45 us a hop)."""
    if _sosfilt is not None:
        _sosfilt(sos, y, zi)
        return
    from scipy import signal  # pragma: no cover - another scipy layout

    out, zf = signal.sosfilt(sos, y, axis=-1, zi=zi.transpose(1, 0, 2))
    y[...] = out
    zi[...] = zf.transpose(1, 0, 2)


def _run_head(F: np.ndarray, bundle) -> np.ndarray | None:
    """The head's output for one window's features (1, n_features), None if either is not finite."""
    if not np.isfinite(F).all():
        return None
    out = bundle.run_head(F)[0]
    return None if np.isnan(out).any() else out


class FilterBankStream:
    """:class:`DecoderStream` of a filter-bank model: one per sub-band (each its band-pass state,
    block sums and whitening), their tangent vectors concatenated as
    :class:`~decoders.pipelines.FilterBankTangentSpace` does, then the remaining steps and the
    head. Same interface as :class:`DecoderStream`.
    """

    needs_window = False

    def __init__(self, decoder: OnlineDecoder, hop: int) -> None:
        self._dec, self._p = decoder, decoder._plan
        self._bands = [DecoderStream(decoder, hop, plan=bp) for bp in self._p.bands]

    @property
    def end(self) -> int | None:
        return self._bands[0].end

    def invalidate(self) -> None:
        for b in self._bands:
            b.invalidate()

    def reset(self, window: np.ndarray, end: int) -> None:
        for b in self._bands:
            b.reset(window, end)

    def push(self, new: np.ndarray) -> None:
        for b in self._bands:
            b.push(new)

    def decide(self, window: np.ndarray | None = None) -> np.ndarray | None:  # noqa: ARG002
        bundle = self._dec.bundle
        return _run_head(self._p.combine([b.vectors() for b in self._bands], bundle), bundle)


class RawWindowStream:
    """The :class:`DecoderStream` interface for decoders that take whole raw windows.

    Keeps nothing: ``decide(window)`` is ``decoder.decide(window)`` (models without a leading
    band-pass or filter bank, and any object with ``decide``).
    """

    needs_window = True

    def __init__(self, decoder) -> None:
        self._dec = decoder
        self.end: int | None = None

    def invalidate(self) -> None:
        self.end = None

    def reset(self, window: np.ndarray, end: int) -> None:  # noqa: ARG002
        self.end = int(end)

    def push(self, new: np.ndarray) -> None:
        self.end += new.shape[1]

    def decide(self, window: np.ndarray) -> np.ndarray | None:
        return self._dec.decide(window)
