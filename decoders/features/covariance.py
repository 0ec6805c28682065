"""Covariance features: plain shrinkage covariances and augmented (delay-embedded) covariances.

Plain covariances are pyRiemann's :class:`pyriemann.estimation.Covariances` (re-exported here,
use ``Covariances(estimator="oas")``); we do not re-implement them.

Augmented covariance (Carrara & Papadopoulo, "Classification of BCI-EEG based on the augmented
covariance matrix", IEEE TBME 2024): each epoch is delay-embedded with ``order`` copies of the
channels shifted by multiples of ``lag`` samples, by *slicing* (the embedded epoch is
``(order - 1) * lag`` samples shorter), as in MOABB's ``AugmentedDataset``. This differs from
pyRiemann's ``TimeDelayCovariances``, which shifts with ``np.roll`` and so wraps the end of the
epoch around to its start.

``order`` and ``lag`` can be chosen from the training data by the paper's fast route
(:func:`mutual_information_lag` then :func:`fnn_order`) or by a grid search over the
estimator's parameters (``GridSearchCV`` works on :class:`AugmentedCovariances`).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from pyriemann.estimation import Covariances
from scipy.spatial import cKDTree
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurodeck.decoders._checks import check_epochs, check_n_channels
from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)

__all__ = [
    "AugmentedCovariances",
    "Covariances",
    "augment",
    "fnn_fractions",
    "fnn_order",
    "mutual_information_curve",
    "mutual_information_lag",
]

MAX_ORDER = 10
MAX_LAG = 10


def _check_pos_int(value: Any, name: str, upper: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DecoderError(f"{name}={value!r}; expected a positive integer")
    if upper is not None and value > upper:
        raise DecoderError(f"{name}={value!r}; expected at most {upper}")
    return int(value)


def augment(X: np.ndarray, order: int, lag: int) -> np.ndarray:
    """Delay embedding by slicing, without wrap-around.

    ``out[:, k * n_channels + c, t] = X[:, c, t + k * lag]`` for ``k = 0 .. order - 1`` and
    ``t = 0 .. n_times - (order - 1) * lag - 1``: block ``k`` is the epoch advanced by ``k * lag``
    samples. ``order=1`` returns ``X`` unchanged (a copy).

    The blocks are MOABB's (``moabb.pipelines.features.AugmentedDataset``), which however stops
    every block ``lag`` samples earlier (length ``n_times - order * lag``); we keep every sample
    that all blocks have, so MOABB's output is ``augment(X, order, lag)[..., :n_times - order*lag]``.

    Parameters
    ----------
    X : ndarray, shape (n_epochs, n_channels, n_times)
        Epochs.
    order : int
        Number of delayed copies (embedding dimension), >= 1.
    lag : int
        Delay between copies in samples, >= 1.

    Returns
    -------
    Xa : ndarray, shape (n_epochs, n_channels * order, n_times - (order - 1) * lag)
    """
    X = check_epochs(X)
    order = _check_pos_int(order, "order")
    lag = _check_pos_int(lag, "lag")
    n_out = X.shape[-1] - (order - 1) * lag
    if n_out < 2:
        raise DecoderError(
            f"order={order}, lag={lag} need more than {(order - 1) * lag + 1} samples per epoch; "
            f"X has {X.shape[-1]}"
        )
    return np.concatenate([X[..., k * lag : k * lag + n_out] for k in range(order)], axis=1)


def _equal_width_bins(X: np.ndarray, n_bins: int, clip: float = 0.005) -> np.ndarray:
    """Equal-width bin index per channel over its [clip, 1 - clip] quantile range.

    Values outside the range (artefacts) fall in the first/last bin. Returns ints in
    ``[0, n_bins)``, shape like ``X`` (n_epochs, n_channels, n_times).
    """
    lo, hi = np.quantile(X, [clip, 1.0 - clip], axis=(0, 2))  # each (n_channels,)
    width = np.where(hi > lo, hi - lo, 1.0)[None, :, None]
    bins = np.floor((X - lo[None, :, None]) / width * n_bins).astype(np.int64)
    return np.clip(bins, 0, n_bins - 1)


def mutual_information_curve(X: np.ndarray, max_lag: int = MAX_LAG, n_bins: int = 16) -> np.ndarray:
    """Auto mutual information of ``x(t)`` and ``x(t + lag)``, averaged over channels.

    Histogram estimator with ``n_bins`` equal-width bins per channel spanning its 0.5-99.5 %
    quantile range (outliers go to the end bins), pooled over epochs (pairs never cross epoch
    boundaries)::

        I(lag) = sum_ab p_ab log(p_ab / (p_a p_b))      (nats)

    Parameters
    ----------
    X : ndarray, shape (n_epochs, n_channels, n_times)
        Epochs (e.g. the training data, band-passed).
    max_lag : int
        Largest lag in samples.
    n_bins : int
        Bins per axis of the joint histogram.

    Returns
    -------
    mi : ndarray, shape (max_lag + 1,)
        ``mi[lag]`` for ``lag = 0 .. max_lag`` (``mi[0]`` is the binned entropy).
    """
    X = check_epochs(X)
    max_lag = _check_pos_int(max_lag, "max_lag")
    n_bins = _check_pos_int(n_bins, "n_bins")
    if X.shape[-1] <= max_lag + 1:
        raise DecoderError(f"max_lag={max_lag} needs epochs longer than {max_lag + 1} samples")
    n_ch = X.shape[1]
    B = _equal_width_bins(X, n_bins)
    offset = (np.arange(n_ch) * n_bins * n_bins)[None, :, None]
    mi = np.empty(max_lag + 1)
    for lag in range(max_lag + 1):
        a = B[..., : B.shape[-1] - lag]
        b = B[..., lag:]
        joint = np.bincount((offset + a * n_bins + b).ravel(), minlength=n_ch * n_bins**2)
        p = joint.reshape(n_ch, n_bins, n_bins).astype(float)
        p /= p.sum(axis=(1, 2), keepdims=True)
        pa = p.sum(axis=2, keepdims=True)
        pb = p.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log(p / (pa * pb)), 0.0)
        mi[lag] = terms.sum(axis=(1, 2)).mean()
    return mi


def mutual_information_lag(X: np.ndarray, max_lag: int = MAX_LAG, n_bins: int = 16) -> int:
    """Delay at the first minimum of the auto mutual information (Fraser & Swinney).

    Parameters
    ----------
    X : ndarray, shape (n_epochs, n_channels, n_times)
    max_lag : int
        Largest lag considered (samples).
    n_bins : int
        See :func:`mutual_information_curve`.

    Returns
    -------
    lag : int
        First ``l`` in ``1 .. max_lag - 1`` with ``mi[l] < mi[l-1]`` and ``mi[l] <= mi[l+1]``;
        if the curve has no interior minimum, the lag of its smallest value in ``1 .. max_lag``.
        For a sinusoid of period ``T`` samples this is ``T / 4``.
    """
    mi = mutual_information_curve(X, max_lag, n_bins)
    for lag in range(1, max_lag):
        if mi[lag] < mi[lag - 1] and mi[lag] <= mi[lag + 1]:
            return lag
    return int(np.argmin(mi[1:]) + 1)


def _embed_1d(x: np.ndarray, dim: int, lag: int, n: int) -> np.ndarray:
    """Rows ``(x[t], x[t+lag], ..., x[t+(dim-1)lag])`` for ``t < n``; x: (n_epochs, n_times)."""
    return np.stack([x[:, k * lag : k * lag + n] for k in range(dim)], axis=-1)


def fnn_fractions(
    X: np.ndarray,
    lag: int,
    max_order: int = MAX_ORDER,
    *,
    rtol: float = 15.0,
    atol: float = 2.0,
    max_points: int = 1000,
    theiler: int | None = None,
) -> np.ndarray:
    """Fraction of false nearest neighbours per embedding dimension (Kennel et al. 1992).

    For each channel and dimension ``d``, every delay vector
    ``y_d(t) = (x(t), x(t + lag), ..., x(t + (d - 1) lag))`` gets its nearest neighbour
    ``y_d(t')`` (excluding points of the same epoch closer than ``theiler`` samples in time).
    The pair is *false* when adding the next coordinate separates them:
    ``|x(t + d lag) - x(t' + d lag)| / R_d > rtol`` or ``R_{d+1} / R_A > atol``, with ``R_d`` the
    neighbour distance and ``R_A`` the channel's standard deviation. Fractions are averaged over
    channels.

    Parameters
    ----------
    X : ndarray, shape (n_epochs, n_channels, n_times)
    lag : int
        Delay in samples (e.g. from :func:`mutual_information_lag`).
    max_order : int
        Largest dimension tested.
    rtol, atol : float
        Kennel's thresholds (15 and 2 in the paper).
    max_points : int
        Per channel, at most this many delay vectors (evenly spaced) are tested, for speed.
    theiler : int or None
        Temporal exclusion window; ``None``: ``lag``.

    Returns
    -------
    fractions : ndarray, shape (max_order,)
        ``fractions[d - 1]`` is the FNN fraction of dimension ``d``.
    """
    X = check_epochs(X)
    lag = _check_pos_int(lag, "lag")
    max_order = _check_pos_int(max_order, "max_order")
    n_epochs, n_ch, n_times = X.shape
    n = n_times - max_order * lag  # same points for every dimension
    if n < 2:
        raise DecoderError(
            f"fnn_fractions: lag={lag}, max_order={max_order} need epochs longer than "
            f"{max_order * lag + 1} samples; X has {n_times}"
        )
    w = lag if theiler is None else int(theiler)
    n_pts = n_epochs * n
    keep = np.unique(np.linspace(0, n_pts - 1, min(n_pts, int(max_points))).astype(int))
    epoch_of = np.repeat(np.arange(n_epochs), n)[keep]
    time_of = np.tile(np.arange(n), n_epochs)[keep]
    k_nb = min(len(keep), 2 * w + 3)
    fractions = np.zeros((n_ch, max_order))
    for c in range(n_ch):
        x = X[:, c, :]
        r_a = x.std()
        if r_a == 0:
            continue
        full = _embed_1d(x, max_order + 1, lag, n).reshape(n_pts, max_order + 1)[keep]
        for d in range(1, max_order + 1):
            tree = cKDTree(full[:, :d])
            dist, idx = tree.query(full[:, :d], k=k_nb)
            dist, idx = np.atleast_2d(dist), np.atleast_2d(idx)
            rows = np.arange(len(keep))[:, None]
            excluded = (idx == rows) | (
                (epoch_of[idx] == epoch_of[:, None])
                & (np.abs(time_of[idx] - time_of[:, None]) <= w)
            )
            valid = ~excluded & (dist > 0)  # exact repeats make Kennel's ratio undefined
            has = valid.any(axis=1)
            first = np.argmax(valid, axis=1)
            r_d = dist[np.arange(len(keep)), first]
            nn = idx[np.arange(len(keep)), first]
            ok = has & (r_d > 0)
            if not ok.any():
                continue
            extra = np.abs(full[:, d] - full[nn, d])
            r_d1 = np.sqrt(r_d**2 + extra**2)
            false = (extra / np.where(r_d > 0, r_d, 1.0) > rtol) | (r_d1 / r_a > atol)
            fractions[c, d - 1] = false[ok].mean()
    return fractions.mean(axis=0)


def fnn_order(
    X: np.ndarray,
    lag: int,
    max_order: int = MAX_ORDER,
    *,
    threshold: float = 0.02,
    **kwargs: Any,
) -> int:
    """Embedding order by the false-nearest-neighbours criterion.

    Parameters
    ----------
    X : ndarray, shape (n_epochs, n_channels, n_times)
    lag : int
        Delay in samples.
    max_order : int
        Upper bound of the order.
    threshold : float
        The order is the smallest dimension whose FNN fraction is below ``threshold``; if none
        is, the dimension with the smallest fraction.
    **kwargs
        Passed to :func:`fnn_fractions`.

    Returns
    -------
    order : int
        In ``1 .. max_order``. A sinusoid gives 2, the Lorenz attractor 3.
    """
    fr = fnn_fractions(X, lag, max_order, **kwargs)
    below = np.flatnonzero(fr < threshold)
    return int(below[0] + 1) if below.size else int(np.argmin(fr) + 1)


class AugmentedCovariances(TransformerMixin, BaseEstimator):
    """Covariance of the delay-embedded epochs (augmented covariance matrix, ACM).

    Parameters
    ----------
    order : int or "auto"
        Embedding order (1 .. 10); ``"auto"``: :func:`fnn_order` on the training data.
    lag : int or "auto"
        Delay in samples (1 .. 10); ``"auto"``: :func:`mutual_information_lag` on the
        training data.
    estimator : str
        pyRiemann covariance estimator (``"oas"``, ``"lwf"``, ``"scm"``, ...).
    max_order, max_lag : int
        Bounds for the automatic choices (at most 10).

    Attributes
    ----------
    order_, lag_ : int
        Order and lag used by transform.
    n_channels_ : int
        Channels seen in fit.

    Notes
    -----
    Output shape ``(n_epochs, n_channels * order_, n_channels * order_)``, SPD when the
    embedded epoch has more samples than ``n_channels * order_`` (shrinkage estimators keep it
    SPD otherwise).
    """

    def __init__(
        self,
        order: int | str = 4,
        lag: int | str = 2,
        estimator: str = "oas",
        max_order: int = MAX_ORDER,
        max_lag: int = MAX_LAG,
    ) -> None:
        self.order = order
        self.lag = lag
        self.estimator = estimator
        self.max_order = max_order
        self.max_lag = max_lag

    def fit(self, X: Any, y: Any = None) -> AugmentedCovariances:
        """Resolve ``order_`` and ``lag_`` (from ``X`` when "auto").

        Parameters
        ----------
        X : array-like, shape (n_epochs, n_channels, n_times)
        y : ignored

        Returns
        -------
        self : AugmentedCovariances
        """
        X = check_epochs(X)
        max_order = _check_pos_int(self.max_order, "max_order", MAX_ORDER)
        max_lag = _check_pos_int(self.max_lag, "max_lag", MAX_LAG)
        if self.lag == "auto":
            lag = mutual_information_lag(X, max_lag)
        else:
            lag = _check_pos_int(self.lag, "lag", max_lag)
        if self.order == "auto":
            order = fnn_order(X, lag, max_order)
        else:
            order = _check_pos_int(self.order, "order", max_order)
        if X.shape[-1] - (order - 1) * lag < 2:
            raise DecoderError(
                f"order={order}, lag={lag} leave {X.shape[-1] - (order - 1) * lag} samples of "
                f"{X.shape[-1]}; use shorter order/lag or longer epochs"
            )
        try:
            Covariances(estimator=self.estimator).transform(augment(X[:1], order, lag))
        except ValueError as exc:
            raise DecoderError(f"estimator={self.estimator!r}: {exc}") from exc
        if self.order == "auto" or self.lag == "auto":
            logger.info("AugmentedCovariances: order=%d lag=%d chosen from training data", order, lag)
        self.order_ = order
        self.lag_ = lag
        self.n_channels_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Augmented covariance of each epoch.

        Parameters
        ----------
        X : array-like, shape (n_epochs, n_channels, n_times)

        Returns
        -------
        covs : ndarray, shape (n_epochs, n_channels * order_, n_channels * order_)
        """
        check_is_fitted(self, "order_")
        X = check_epochs(X)
        check_n_channels(X, self.n_channels_)
        Xa = augment(X, self.order_, self.lag_)
        return Covariances(estimator=self.estimator).transform(Xa)
