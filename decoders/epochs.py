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

Working rate (decimation)
-------------------------
A band that ends far below Nyquist does not need the full rate: :func:`decimation_factor` picks
the integer ``q = floor(sfreq / (4 * h_freq))`` (the *working rate* ``sfreq / q`` is at least 4x
the band's upper edge; ``q = 1`` keeps the full rate). With ``q > 1`` the causal path is
(:func:`decimating_filter`): an anti-alias low-pass at the input rate (:func:`antialias_sos`,
Chebyshev type II: <= 0.1 dB loss up to the band's upper edge, >= 60 dB attenuation from
``working rate - h_freq`` on, the first frequency that folds into the band), then every q-th
sample is kept (the samples whose absolute index ``i`` has ``(i + 1) % q == 0``: a window
ending on a multiple of q keeps its last sample), then the band-pass at the working rate. The
state of both filters is carried like the band-pass's, so training epochs, the live stream and
pseudo-online replay still run one function; covariances, spectra and the stream's memory are
at the working rate. :class:`BandPass` records ``decim`` (a bundle's sidecar keeps it; bundles
saved before it existed decode with ``decim = 1``, exactly as before).
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


#: The working rate is at least this many times the band's upper edge (see :func:`decimation_factor`).
WORKING_RATE_FACTOR = 4.0
#: Anti-alias low-pass: largest loss (dB) up to the band's upper edge, least attenuation (dB) of
#: what folds into the band.
ANTIALIAS_PASS_DB, ANTIALIAS_STOP_DB = 0.1, 60.0


def decimation_factor(sfreq: float, h_freq: float) -> int:
    """Integer decimation factor to the working rate of a band ending at ``h_freq``.

    ``q = floor(sfreq / (WORKING_RATE_FACTOR * h_freq))``, at least 1: the working rate
    ``sfreq / q`` stays >= 4x the band's upper edge (e.g. 8-32 Hz: 2048 Hz -> q = 16, 128 Hz;
    512 Hz -> q = 4; 160 or 250 Hz -> q = 1).
    """
    if not (np.isfinite(sfreq) and sfreq > 0 and np.isfinite(h_freq) and h_freq > 0):
        raise DecoderError(f"sfreq ({sfreq!r}) and h_freq ({h_freq!r}) must be positive Hz")
    return max(1, int(np.floor(sfreq / (WORKING_RATE_FACTOR * h_freq) + 1e-9)))


def antialias_sos(sfreq: float, h_freq: float, q: int) -> np.ndarray:
    """Anti-alias low-pass for keeping every ``q``-th sample of a band ending at ``h_freq``.

    Chebyshev type II (flat pass band, no ripple in it) of the lowest order with at most
    :data:`ANTIALIAS_PASS_DB` loss up to ``h_freq`` and at least :data:`ANTIALIAS_STOP_DB`
    attenuation from ``sfreq / q - h_freq`` on (the frequencies that fold into ``[0, h_freq]``
    at the working rate); e.g. 2048 Hz, 32 Hz, q = 16: order 6 (3 sections).

    Returns
    -------
    sos : ndarray, shape (n_sections, 6)
    """
    stop = sfreq / q - h_freq
    if not (q >= 2 and 0 < h_freq < stop < sfreq / 2):
        raise DecoderError(f"no anti-alias low-pass for q={q!r} at {sfreq} Hz with the band up to "
                           f"{h_freq} Hz: need q >= 2 and {h_freq} < {sfreq}/q - {h_freq} < {sfreq / 2}")
    return _antialias_sos(float(sfreq), float(h_freq), int(q)).copy()


@functools.lru_cache(maxsize=64)
def _antialias_sos(sfreq: float, h_freq: float, q: int) -> np.ndarray:
    stop = sfreq / q - h_freq
    order, wn = signal.cheb2ord(h_freq, stop, ANTIALIAS_PASS_DB, ANTIALIAS_STOP_DB, fs=sfreq)
    sos = signal.cheby2(order, ANTIALIAS_STOP_DB, wn, btype="lowpass", fs=sfreq, output="sos")
    sos.flags.writeable = False
    return sos


def kept_offset(start: int, q: int) -> int:
    """Offset of the first kept sample in a piece whose first sample has absolute index ``start``.

    Kept samples are those with ``(i + 1) % q == 0`` (a piece ending on a multiple of q keeps its
    last sample); the kept sample ``i`` is sample ``(i + 1) // q - 1`` at the working rate, and
    ``end // q`` samples at the working rate come before absolute index ``end``.
    """
    return (q - 1 - int(start)) % q


def decimating_filter(x: np.ndarray, sos: np.ndarray, q: int = 1, aa: np.ndarray | None = None,
                      zi=None, start: int = 0):
    """The causal path to the working rate: anti-alias low-pass, keep every q-th sample, band-pass.

    With ``q == 1`` this is :func:`causal_filter` (``aa`` unused). Filtering a signal in pieces,
    passing each call's ``zf`` as the next call's ``zi`` and each piece's absolute ``start``,
    gives the same output as filtering it at once.

    Parameters
    ----------
    x : ndarray, shape (..., n_times)
        Signal at the input rate.
    sos : ndarray, shape (n_sections, 6)
        The band-pass, designed at the working rate ``sfreq / q``.
    q : int
        Decimation factor (:func:`decimation_factor`).
    aa : ndarray, shape (n_aa_sections, 6) or None
        The anti-alias low-pass at the input rate (:func:`antialias_sos`); required when q > 1.
    zi : None, or (zi_aa, zi_bandpass) when q > 1
        State after the previous piece (None: both start at the steady state of their first
        input sample; the band-pass state stays None until a piece holds a kept sample).
    start : int
        Absolute index of ``x[..., 0]``: which samples are kept (:func:`kept_offset`). A padded
        training epoch of ``L`` samples uses ``start = -L`` (its last sample is kept).

    Returns
    -------
    y : ndarray, shape (..., n_kept)
        Band-passed signal at the working rate.
    zf : ndarray or (zf_aa, zf_bandpass)
        The state to pass with the next piece.
    """
    if q == 1:
        return causal_filter(x, sos, zi)
    if aa is None:
        raise DecoderError(f"decimating by q={q} needs the anti-alias low-pass (aa)")
    z_aa, z_bp = (None, None) if zi is None else zi
    lo, z_aa = causal_filter(x, aa, z_aa)
    kept = lo[..., kept_offset(start, q)::q]
    if kept.shape[-1] == 0:
        return kept, (z_aa, z_bp)
    y, z_bp = causal_filter(kept, sos, z_bp)
    return y, (z_aa, z_bp)


def n_working(n: int, q: int) -> int:
    """Samples at the working rate of a window of ``n`` input samples (ending on a kept sample)."""
    return (int(n) - 1) // int(q) + 1


def filter_windows(X: np.ndarray, sos: np.ndarray, n_pad: int, q: int = 1,
                   aa: np.ndarray | None = None) -> np.ndarray:
    """Filter each padded window to the working rate and drop the padding.

    Each window is filtered from its first sample (:func:`decimating_filter` with its last
    sample kept); the result is the last ``n_working(n_times - n_pad, q)`` samples.

    Parameters
    ----------
    X : ndarray, shape (n_windows, n_channels, n_times)
    sos, q, aa
        As for :func:`decimating_filter`.
    n_pad : int
        Leading input samples that only settle the filters.

    Returns
    -------
    Xf : ndarray, shape (n_windows, n_channels, n_working(n_times - n_pad, q))
    """
    if q == 1:
        return bandpass_windows(X, sos, n_pad)
    L = X.shape[-1]
    y = decimating_filter(X, sos, q, aa, start=-L)[0]
    return y[..., y.shape[-1] - n_working(L - n_pad, q):]


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
    decim : int
        Decimation factor to the working rate ``sfreq / decim`` (:func:`decimation_factor`;
        1, the default and what bundles saved before it existed get: no decimation). With
        ``decim > 1`` the output is at the working rate (:func:`decimating_filter`).
    """

    def __init__(self, sfreq: float = 160.0, l_freq: float = 8.0, h_freq: float = 32.0,
                 order: int = 4, pad: float = 1.0, passes: int = 1, decim: int = 1) -> None:
        self.sfreq = sfreq
        self.l_freq = l_freq
        self.h_freq = h_freq
        self.order = order
        self.pad = pad
        self.passes = passes
        self.decim = decim

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
        q = self.q
        return filter_windows(X, self.sos(), n_samples(self.pad, self.sfreq), q,
                              self.antialias() if q > 1 else None)

    @property
    def q(self) -> int:
        """The decimation factor, checked (an int >= 1)."""
        q = self.decim
        if isinstance(q, bool) or int(q) != q or q < 1:
            raise DecoderError(f"decim must be an integer >= 1, got {q!r}")
        return int(q)

    @property
    def working_sfreq(self) -> float:
        """Rate of the output in Hz (``sfreq / decim``)."""
        return float(self.sfreq) / self.q

    def sos(self) -> np.ndarray:
        """The band-pass's second-order sections at the working rate, shape (n_sections, 6)."""
        return bandpass_sos(self.working_sfreq, self.l_freq, self.h_freq, self.order, self.passes)

    def antialias(self) -> np.ndarray | None:
        """The anti-alias low-pass at the input rate (None when ``decim == 1``)."""
        q = self.q
        return None if q == 1 else antialias_sos(float(self.sfreq), float(self.h_freq), q)


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
