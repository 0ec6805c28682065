"""Functional connectivity features: cross-spectra, coherence and node strength.

Pure functions (:func:`cross_spectra`, :func:`coherence`, :func:`node_strength`) vectorised over
epochs; :class:`NodeStrength` is the scikit-learn transformer (HappyFeat's connectivity feature).

Defaults follow HappyFeat/OpenViBE's connectivity settings: short segments (0.25 s), 50 %
overlap, zero-padded to a 1 Hz frequency grid, so that a 2 s epoch gives ~15 segments to average
(coherence from few segments is biased towards 1).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import signal
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurodeck.decoders._checks import check_band, check_epochs, check_n_channels, check_sfreq
from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)

__all__ = ["NodeStrength", "coherence", "cross_spectra", "node_strength", "segment_params"]

_KINDS = ("msc", "coh", "imcoh")


def segment_params(
    n_times: int,
    sfreq: float,
    nperseg: int | None = None,
    noverlap: int | None = None,
    nfft: int | None = None,
) -> tuple[int, int, int]:
    """Resolve the segment length, overlap and FFT length used by :func:`cross_spectra`.

    Parameters
    ----------
    n_times : int
        Samples per epoch.
    sfreq : float
        Sampling rate in Hz.
    nperseg : int or None
        Segment length; ``None``: 0.25 s (at least 8 samples), at most the epoch.
    noverlap : int or None
        Overlap; ``None``: ``nperseg // 2``.
    nfft : int or None
        FFT length (zero padding); ``None``: ``max(nperseg, round(sfreq))`` (1 Hz grid).

    Returns
    -------
    nperseg, noverlap, nfft : int
    """
    if nperseg is None:
        nper = int(min(n_times, max(8, round(0.25 * sfreq))))
    else:
        nper = int(nperseg)
        if not 2 <= nper <= n_times:
            raise DecoderError(
                f"nperseg={nperseg}; expected 2 <= nperseg <= epoch length ({n_times} samples)"
            )
    nover = nper // 2 if noverlap is None else int(noverlap)
    if not 0 <= nover < nper:
        raise DecoderError(f"noverlap={noverlap}; expected 0 <= noverlap < nperseg={nper}")
    n_fft = max(nper, int(round(sfreq))) if nfft is None else int(nfft)
    if n_fft < nper:
        raise DecoderError(f"nfft={nfft}; expected nfft >= nperseg={nper}")
    return nper, nover, n_fft


def cross_spectra(
    X: np.ndarray,
    sfreq: float,
    fmin: float,
    fmax: float,
    *,
    nperseg: int | None = None,
    noverlap: int | None = None,
    nfft: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Welch cross-spectral density matrices per epoch and frequency.

    Each epoch is cut into Hann-windowed, mean-removed segments (see :func:`segment_params`);
    ``S[e, i, j, f] = mean_s Z[e, i, s, f] * conj(Z[e, j, s, f])`` with one-sided density scaling,
    so the diagonal equals the Welch PSD with the same segments.

    Parameters
    ----------
    X : ndarray, shape (n_epochs, n_channels, n_times)
        Epochs.
    sfreq : float
        Sampling rate in Hz.
    fmin, fmax : float
        Band kept, inclusive, in Hz.
    nperseg, noverlap, nfft : int or None
        Segmenting; see :func:`segment_params`.

    Returns
    -------
    S : ndarray of complex128, shape (n_epochs, n_channels, n_channels, n_freqs)
        Hermitian in the channel axes.
    freqs : ndarray, shape (n_freqs,)
        Frequencies in Hz within ``[fmin, fmax]``.
    """
    X = check_epochs(X)
    sfreq = check_sfreq(sfreq)
    fmin, fmax = check_band(fmin, fmax, sfreq)
    nper, nover, n_fft = segment_params(X.shape[-1], sfreq, nperseg, noverlap, nfft)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sfreq)
    tol = 1e-9 * max(1.0, fmax)
    mask = (freqs >= fmin - tol) & (freqs <= fmax + tol)
    if not mask.any():
        raise DecoderError(f"no frequency bin in [{fmin:g}, {fmax:g}] Hz with nfft={n_fft}")
    step = nper - nover
    segs = np.lib.stride_tricks.sliding_window_view(X, nper, axis=-1)[..., ::step, :]
    win = signal.get_window("hann", nper)
    segs = (segs - segs.mean(axis=-1, keepdims=True)) * win
    Z = np.fft.rfft(segs, n=n_fft, axis=-1)[..., mask]  # (n_epochs, n_channels, n_segs, n_freqs)
    scale = 2.0 / (sfreq * np.sum(win**2) * Z.shape[2])
    S = np.einsum("eisf,ejsf->eijf", Z, Z.conj(), optimize=True) * scale
    diag = np.arange(S.shape[1])
    S[:, diag, diag, :] = S[:, diag, diag, :].real  # auto-spectra are real (no rounding residue)
    f = freqs[mask]
    edge = np.isclose(f, 0.0) | np.isclose(f, sfreq / 2.0)
    S[..., edge] /= 2.0
    return S, f


def coherence(
    X: np.ndarray,
    sfreq: float,
    fmin: float,
    fmax: float,
    kind: str = "msc",
    *,
    nperseg: int | None = None,
    noverlap: int | None = None,
    nfft: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Coherence between every pair of channels, per epoch and frequency.

    With ``S`` the cross-spectra of :func:`cross_spectra`:

    - ``"msc"``: magnitude-squared coherence ``|S_xy|^2 / (S_xx S_yy)``,
    - ``"coh"``: coherence ``|S_xy| / sqrt(S_xx S_yy)``,
    - ``"imcoh"``: absolute imaginary coherence ``|Im S_xy| / sqrt(S_xx S_yy)``, insensitive to
      zero-lag (volume-conducted) mixing.

    Parameters
    ----------
    X : ndarray, shape (n_epochs, n_channels, n_times)
    sfreq : float
    fmin, fmax : float
    kind : {"msc", "coh", "imcoh"}
    nperseg, noverlap, nfft : int or None
        See :func:`segment_params`.

    Returns
    -------
    C : ndarray, shape (n_epochs, n_channels, n_channels, n_freqs)
        Symmetric, values in [0, 1]; the diagonal is 1 (msc, coh) or 0 (imcoh).
    freqs : ndarray, shape (n_freqs,)
    """
    if kind not in _KINDS:
        raise DecoderError(f"kind={kind!r}; expected one of {list(_KINDS)}")
    S, freqs = cross_spectra(X, sfreq, fmin, fmax, nperseg=nperseg, noverlap=noverlap, nfft=nfft)
    power = np.einsum("eiif->eif", S).real  # (n_epochs, n_channels, n_freqs)
    denom = np.sqrt(power[:, :, None, :] * power[:, None, :, :])
    tiny = np.finfo(float).tiny
    if kind == "msc":
        num = np.abs(S) ** 2
        denom = denom**2
    elif kind == "coh":
        num = np.abs(S)
    else:
        num = np.abs(S.imag)
    flat = denom <= tiny
    if flat.any():
        logger.warning("coherence: %d channel pair(s)/bin(s) with zero power set to 0", flat.sum())
    C = np.where(flat, 0.0, num / np.where(flat, 1.0, denom))
    return np.clip(C, 0.0, 1.0), freqs


def node_strength(C: np.ndarray, *, normalize: bool = False) -> np.ndarray:
    """Node strength: sum of a node's connectivity with every *other* node.

    ``strength[e, i, f] = sum_{j != i} C[e, i, j, f]``: the weighted-graph node strength
    (Rubinov & Sporns 2010, BCT's ``strengths_und`` on the matrix with its diagonal zeroed), the
    feature HappyFeat builds from OpenViBE's connectivity matrices. The diagonal is excluded
    because self-coherence is a constant (1 for msc/coh, 0 for imcoh) that carries no
    information. Unnormalised by default, so values grow with the montage size (up to
    ``n_channels - 1``); ``normalize=True`` divides by ``n_channels - 1`` (mean connectivity of
    the node, in [0, 1] for every ``kind``, comparable across montages). Whether OpenViBE's box
    divides by the channel count was not verified; for R² selection and LDA (the HappyFeat use)
    the constant factor makes no difference.

    Parameters
    ----------
    C : ndarray, shape (n_epochs, n_channels, n_channels, n_freqs)
        Connectivity matrices (e.g. from :func:`coherence`).
    normalize : bool
        Divide by ``n_channels - 1``.

    Returns
    -------
    strength : ndarray, shape (n_epochs, n_channels, n_freqs)
    """
    C = np.asarray(C)
    if C.ndim != 4 or C.shape[1] != C.shape[2]:
        raise DecoderError(
            f"C has shape {C.shape}; expected (n_epochs, n_channels, n_channels, n_freqs)"
        )
    n_ch = C.shape[1]
    total = C.sum(axis=2) - np.einsum("eiif->eif", C)
    if normalize:
        if n_ch < 2:
            raise DecoderError("node_strength(normalize=True) needs at least 2 channels")
        total = total / (n_ch - 1)
    return total


class NodeStrength(TransformerMixin, BaseEstimator):
    """Connectivity node strength per channel and frequency (HappyFeat's connectivity feature).

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    fmin, fmax : float
        Band kept, inclusive, in Hz.
    kind : {"msc", "coh", "imcoh"}
        Connectivity measure; see :func:`coherence`.
    normalize : bool
        Divide the strength by ``n_channels - 1``; see :func:`node_strength`.
    nperseg, noverlap, nfft : int or None
        Segmenting; see :func:`segment_params`.

    Attributes
    ----------
    freqs_ : ndarray, shape (n_freqs,)
    n_channels_ : int
    segments_ : tuple of int
        ``(nperseg, noverlap, nfft)`` resolved in fit and reused by transform.
    """

    def __init__(
        self,
        sfreq: float,
        fmin: float = 8.0,
        fmax: float = 30.0,
        kind: str = "imcoh",
        normalize: bool = False,
        nperseg: int | None = None,
        noverlap: int | None = None,
        nfft: int | None = None,
    ) -> None:
        self.sfreq = sfreq
        self.fmin = fmin
        self.fmax = fmax
        self.kind = kind
        self.normalize = normalize
        self.nperseg = nperseg
        self.noverlap = noverlap
        self.nfft = nfft

    def _compute(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nper, nover, n_fft = self.segments_
        C, freqs = coherence(
            X, self.sfreq, self.fmin, self.fmax, self.kind, nperseg=nper, noverlap=nover, nfft=n_fft
        )
        return node_strength(C, normalize=self.normalize), freqs

    def fit(self, X: Any, y: Any = None) -> NodeStrength:
        """Validate parameters and data, resolve segments and frequency grid.

        Parameters
        ----------
        X : array-like, shape (n_epochs, n_channels, n_times)
        y : ignored

        Returns
        -------
        self : NodeStrength
        """
        if self.kind not in _KINDS:
            raise DecoderError(f"kind={self.kind!r}; expected one of {list(_KINDS)}")
        X = check_epochs(X)
        if X.shape[1] < 2:
            raise DecoderError(f"X has {X.shape[1]} channel; connectivity needs at least 2")
        sfreq = check_sfreq(self.sfreq)
        check_band(self.fmin, self.fmax, sfreq)
        self.segments_ = segment_params(X.shape[-1], sfreq, self.nperseg, self.noverlap, self.nfft)
        _, self.freqs_ = self._compute(X[:1])
        self.n_channels_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Node strength of each epoch.

        Parameters
        ----------
        X : array-like, shape (n_epochs, n_channels, n_times)
            At least ``segments_[0]`` samples per epoch.

        Returns
        -------
        F : ndarray, shape (n_epochs, n_channels, n_freqs)
        """
        check_is_fitted(self, "freqs_")
        X = check_epochs(X, min_times=self.segments_[0])
        check_n_channels(X, self.n_channels_)
        F, _ = self._compute(X)
        return F
