"""Nadaraya-Watson regression for the DKF's ``f(x)`` and ``Q(x)``, and bandwidth selection.

numpy reference implementation; :mod:`neurodeck.decoders.dkf.export` builds the same computation as
an ONNX graph (:func:`kernel_logits` and :class:`KernelAverage` are shared by both paths).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from neurodeck.decoders.dkf.updates import dkf_filter_batch
from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)

__all__ = [
    "squared_distances",
    "nadaraya_watson",
    "kernel_logits",
    "input_map",
    "KernelAverage",
    "nw_loo_predictions",
    "nw_loo_fit",
    "select_bandwidth_loo",
    "select_q_bandwidth_loo",
    "select_q_bandwidth_filter",
    "blocked_folds",
    "ridge_projection",
    "ridge_feature_map",
    "cv_filter_scores",
    "oof_filter_scores",
    "linear_filter_cv",
]

def squared_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``|a|^2 + |b|^2 - 2 a.b``, clipped at 0.

    Parameters
    ----------
    A : ndarray, shape (n_a, n_features)
    B : ndarray, shape (n_b, n_features)

    Returns
    -------
    D2 : ndarray, shape (n_a, n_b)
    """
    d2 = (A**2).sum(axis=1)[:, None] + (B**2).sum(axis=1)[None, :] - 2.0 * (A @ B.T)
    return np.maximum(d2, 0.0)


def _kernel_weights(d2: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian kernel weights, each row scaled by its largest weight (so no 0/0)."""
    logits = d2 * (-0.5 / bandwidth**2)
    logits -= logits.max(axis=1, keepdims=True)
    return np.exp(logits)


def kernel_logits(
    X_train: np.ndarray,
    x_mean: np.ndarray,
    x_scale: np.ndarray,
    bandwidth: float,
    projection: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold standardisation, projection and the Gaussian kernel into one affine map of the input.

    The NW weights are ``softmax_i(-|s(x) - x_i|^2 / (2 h^2))`` with ``s(x) = (x - mean) / scale``
    (times ``projection`` if given). The ``|s(x)|^2`` term is the same for every ``i`` and cancels
    in the softmax, so the logits are ``x @ W + b`` with ``W = (X_train / scale)^T / h^2`` and
    ``b_i = -(mean / scale) . x_i / h^2 - |x_i|^2 / (2 h^2)`` (``/ scale`` becoming
    ``diag(1 / scale) @ projection`` with a projection): one Gemm per kernel, for numpy and ONNX
    alike.

    Parameters
    ----------
    X_train : ndarray, shape (n_train, n_dims)
        Standardised (and projected) training features: the kernel centres.
    x_mean, x_scale : ndarray, shape (n_features,)
    bandwidth : float
    projection : ndarray, shape (n_features, n_dims) or None
        Linear map applied after standardisation (``None``: identity, ``n_dims = n_features``).

    Returns
    -------
    W : ndarray, shape (n_features, n_train)
    b : ndarray, shape (n_train,)
    """
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        raise DecoderError(f"NW bandwidth must be a finite positive number, got {bandwidth!r}")
    X_train = np.asarray(X_train, dtype=np.float64)
    x_mean = np.asarray(x_mean, dtype=np.float64).ravel()
    x_scale = np.asarray(x_scale, dtype=np.float64).ravel()
    inv_h2 = 1.0 / bandwidth**2
    M = np.diag(1.0 / x_scale) if projection is None else (
        np.asarray(projection, dtype=np.float64) / x_scale[:, None])  # (n_features, n_dims)
    W = (M @ X_train.T) * inv_h2
    b = -(X_train @ (x_mean @ M)) * inv_h2 - 0.5 * inv_h2 * (X_train**2).sum(axis=1)
    return np.ascontiguousarray(W), b


def input_map(x_mean: np.ndarray, x_scale: np.ndarray,
              projection: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardisation then projection as one affine map ``u = x @ M + c``.

    With a projection onto fewer dimensions than features (the ridge space of the DKF, 2 state
    dimensions for 26-104 lag-stacked band powers), mapping the input first and then taking the
    kernel logits in the projected space (:func:`kernel_logits` with zero mean, unit scale) costs
    ``n_features * n_dims + n_dims * n_train`` multiplications per row instead of
    ``n_features * n_train``.

    Returns
    -------
    M : ndarray, shape (n_features, n_dims)
    c : ndarray, shape (n_dims,)
    """
    x_mean = np.asarray(x_mean, dtype=np.float64).ravel()
    x_scale = np.asarray(x_scale, dtype=np.float64).ravel()
    P = np.asarray(projection, dtype=np.float64)
    return np.ascontiguousarray(P / x_scale[:, None]), -(x_mean / x_scale) @ P


class KernelAverage:
    """numpy NW average ``softmax(x @ W + b) @ T`` (the ONNX graph computes the same).

    Parameters
    ----------
    W : ndarray, shape (n_in, n_train)
    b : ndarray, shape (n_train,)
    T : ndarray, shape (n_train, n_out)
        Targets averaged by the kernel weights.
    pre : (M, c) or None
        Affine map applied to the input first, ``x @ M + c`` (:func:`input_map`).
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, T: np.ndarray,
                 pre: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.W, self.b, self.T = W, b, np.ascontiguousarray(T, dtype=np.float64)
        self.pre = pre

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Kernel averages, shape (n_query, n_out), of ``X`` (n_query, n_features)."""
        if self.pre is not None:
            X = X @ self.pre[0] + self.pre[1]
        L = X @ self.W
        L += self.b
        L -= L.max(axis=1, keepdims=True)
        np.exp(L, out=L)
        return (L @ self.T) / L.sum(axis=1, keepdims=True)


def nadaraya_watson(
    Xq: np.ndarray, X_train: np.ndarray, Y_train: np.ndarray, bandwidth: float
) -> np.ndarray:
    """Nadaraya-Watson estimate with a Gaussian kernel.

    Parameters
    ----------
    Xq : ndarray, shape (n_query, n_features)
    X_train : ndarray, shape (n_train, n_features)
    Y_train : ndarray, shape (n_train, n_targets)
    bandwidth : float
        Kernel standard deviation ``h`` in feature units.

    Returns
    -------
    Yq : ndarray, shape (n_query, n_targets)
    """
    W = _kernel_weights(squared_distances(Xq, X_train), bandwidth)
    return (W @ Y_train) / W.sum(axis=1, keepdims=True)


def nw_loo_predictions(
    d2: np.ndarray,
    Y: np.ndarray,
    bandwidth: float,
    self_index: np.ndarray | None = None,
    gap: int = 0,
    chunk: int = 1000,
) -> np.ndarray:
    """Leave-one-out NW predictions: row ``i`` is predicted without its own training point.

    Parameters
    ----------
    d2 : ndarray, shape (n_eval, n)
        Squared distances from the evaluated points to all ``n`` training points.
    Y : ndarray, shape (n, n_targets)
        Training targets.
    bandwidth : float
    self_index : ndarray of int, shape (n_eval,) or None
        Column of each evaluated point in the training set (left out). ``None``: ``d2`` is square
        and row ``i`` leaves out column ``i``.
    gap : int
        Also leave out the ``gap`` training points on each side in time (h-block
        cross-validation for autocorrelated sequences).
    chunk : int
        Rows processed at once (memory: chunk x n floats).

    Returns
    -------
    Y_loo : ndarray, shape (n_eval, n_targets)
    """
    n_eval = d2.shape[0]
    if self_index is None:
        self_index = np.arange(n_eval)
    out = np.empty((n_eval, Y.shape[1]))
    for start in range(0, n_eval, chunk):
        stop = min(start + chunk, n_eval)
        block = d2[start:stop].copy()
        cols = np.arange(d2.shape[1])
        block[np.abs(cols[None, :] - self_index[start:stop, None]) <= gap] = np.inf
        W = _kernel_weights(block, bandwidth)
        out[start:stop] = (W @ Y) / W.sum(axis=1, keepdims=True)
    return out


def nw_loo_fit(
    X: np.ndarray, Y: np.ndarray, bandwidth: float, gap: int = 0, chunk: int = 1000
) -> np.ndarray:
    """Leave-out NW predictions at every training point, ``chunk`` rows of distances at a time.

    Equals ``nw_loo_predictions(squared_distances(X, X), Y, bandwidth, gap=gap)`` without the
    (n, n) distance matrix (memory ``chunk * n`` floats), so long recordings fit.

    Parameters
    ----------
    X : ndarray, shape (n, n_features)
    Y : ndarray, shape (n, n_targets)
    bandwidth : float
    gap, chunk : int

    Returns
    -------
    Y_loo : ndarray, shape (n, n_targets)
    """
    n = X.shape[0]
    out = np.empty((n, Y.shape[1]))
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        out[rows] = nw_loo_predictions(squared_distances(X[rows], X), Y, bandwidth,
                                       self_index=rows, gap=gap, chunk=chunk)
    return out


def _loo_setup(
    X: np.ndarray, max_samples: int, random_state: int | None, gap: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shifted distances from (a random subset of) the training points to all of them.

    The evaluated points are a contiguous block of at most ``max_samples`` steps (random start),
    so a filter can also be run over them. Returns ``(D, rows, d2_sub)``: ``D[k, j] = d2[rows[k], j] - min_j d2[rows[k], j]`` over the
    columns kept, with ``+inf`` where column ``j`` is left out (``|j - rows[k]| <= gap``: the
    point itself and, for time series, its ``gap`` neighbours on each side), so that
    ``exp(-D / (2 h^2))`` are the row-scaled leave-out kernel weights for any ``h``;
    ``d2_sub`` is the square block between the evaluated points (for the default grid).
    """
    n = X.shape[0]
    if n > max_samples:
        start = int(np.random.default_rng(random_state).integers(0, n - max_samples + 1))
        rows = np.arange(start, start + max_samples)
    else:
        rows = np.arange(n)
    D = squared_distances(X[rows], X)
    d2_sub = D[:, rows].copy()
    cols = np.arange(n)
    for k0 in range(0, rows.size, 1000):
        blk = slice(k0, min(k0 + 1000, rows.size))
        D[blk][np.abs(cols[None, :] - rows[blk, None]) <= gap] = np.inf
    finite_min = np.min(D, axis=1, keepdims=True)
    if not np.all(np.isfinite(finite_min)):
        raise DecoderError(
            f"leave-out gap {gap} leaves no training point to predict from (n_steps={n})"
        )
    D -= finite_min
    return D, rows, d2_sub


def _loo_eval(D: np.ndarray, Y: np.ndarray, bandwidth: float) -> np.ndarray:
    W = np.exp(D * (-0.5 / bandwidth**2))
    return (W @ Y) / W.sum(axis=1, keepdims=True)


def _default_grid(d2_sub: np.ndarray, lo: float, hi: float, num: int) -> np.ndarray:
    off = d2_sub[np.triu_indices_from(d2_sub, k=1)]
    med = float(np.sqrt(np.median(off))) if off.size else 1.0
    return (med if med > 0 else 1.0) * np.geomspace(lo, hi, num)


def _check_grid(bandwidths: Any) -> np.ndarray:
    grid = np.asarray(bandwidths, dtype=np.float64).ravel()
    if grid.size == 0 or np.any(~np.isfinite(grid)) or np.any(grid <= 0):
        raise DecoderError(f"bandwidth candidates must be finite and > 0, got {grid}")
    return grid


def _pick(grid: np.ndarray, scores: np.ndarray, what: str) -> float:
    best = float(grid[int(np.nanargmin(scores))])
    if grid.size > 1 and best in (grid[0], grid[-1]):
        logger.warning("LOO %s bandwidth %.4g is at the edge of the candidate grid", what, best)
    return best


def select_bandwidth_loo(
    X: np.ndarray,
    Y: np.ndarray,
    bandwidths: np.ndarray | None = None,
    max_samples: int = 2000,
    random_state: int | None = 0,
    gap: int = 0,
) -> tuple[float, np.ndarray, np.ndarray]:
    """NW bandwidth of ``f`` minimising the leave-one-out mean squared error.

    Each evaluated point is predicted from all the *other* ``n - 1`` training points (so the
    bandwidth suits the full training-set size); at most ``max_samples`` evaluated points (a
    random subset) keep it fast. Vectorised: one distance matrix, then one exp + matmul per
    candidate.

    Parameters
    ----------
    X : ndarray, shape (n, n_features)
    Y : ndarray, shape (n, n_targets)
    bandwidths : ndarray, shape (n_candidates,) or None
        Default: 25 values geometrically spaced from 0.03 to 3 times the median pairwise
        distance.
    max_samples : int
    random_state : int or None

    Returns
    -------
    best : float
    bandwidths : ndarray, shape (n_candidates,)
    loo_mse : ndarray, shape (n_candidates,)
    """
    D, rows, d2_sub = _loo_setup(X, max_samples, random_state, gap)
    grid = _check_grid(_default_grid(d2_sub, 0.03, 3.0, 25) if bandwidths is None else bandwidths)
    scores = np.array([np.mean((_loo_eval(D, Y, h) - Y[rows]) ** 2) for h in grid])
    return _pick(grid, scores, "f"), grid, scores


def select_q_bandwidth_loo(
    X: np.ndarray,
    resid: np.ndarray,
    Q_add: np.ndarray,
    bandwidths: np.ndarray | None = None,
    max_samples: int = 2000,
    random_state: int | None = 0,
    gap: int = 0,
) -> tuple[float, np.ndarray, np.ndarray]:
    """NW bandwidth of ``Q`` maximising the leave-one-out Gaussian likelihood of the residuals.

    ``Q_loo(x_i)`` is the NW average of the other points' residual outer products (plus
    ``Q_add``), scored by the Gaussian negative log-likelihood
    ``log det Q_loo(x_i) + r_i^T Q_loo(x_i)^-1 r_i`` -- a proper score for a covariance, unlike
    the squared error of the outer products, which heavy-tailed residuals push towards tiny,
    noisy bandwidths.

    Parameters
    ----------
    X : ndarray, shape (n, n_features)
    resid : ndarray, shape (n, n_states)
        Out-of-sample (e.g. leave-one-out) residuals of ``f``.
    Q_add : ndarray, shape (n_states, n_states)
        Positive-definite floor added to every ``Q``.
    bandwidths, max_samples, random_state
        As in :func:`select_bandwidth_loo`.

    Returns
    -------
    best : float
    bandwidths : ndarray, shape (n_candidates,)
    loo_nll : ndarray, shape (n_candidates,)
    """
    n, d = resid.shape
    D, rows, d2_sub = _loo_setup(X, max_samples, random_state, gap)
    grid = _check_grid(_default_grid(d2_sub, 0.03, 3.0, 25) if bandwidths is None else bandwidths)
    outer = (resid[:, :, None] * resid[:, None, :]).reshape(n, d * d)
    r = resid[rows]
    scores = np.empty(grid.size)
    for k, h in enumerate(grid):
        Q = _loo_eval(D, outer, h).reshape(-1, d, d) + Q_add
        sign, logdet = np.linalg.slogdet(Q)
        maha = np.einsum("ni,ni->n", r, np.linalg.solve(Q, r[:, :, None])[:, :, 0])
        scores[k] = np.mean(logdet + maha) if np.all(sign > 0) else np.nan
    return _pick(grid, scores, "Q"), grid, scores


def select_q_bandwidth_filter(
    X: np.ndarray,
    Zc: np.ndarray,
    f_loo: np.ndarray,
    A: np.ndarray,
    Gamma: np.ndarray,
    S_inv: np.ndarray,
    Q_add: np.ndarray,
    robust: bool = False,
    bandwidths: np.ndarray | None = None,
    max_samples: int = 2000,
    random_state: int | None = 0,
    gap: int = 0,
) -> tuple[float, np.ndarray, np.ndarray]:
    """NW bandwidth of ``Q`` minimising the DKF's own filtered error on the training sequence.

    Over a contiguous block of training steps, ``f`` is the leave-out prediction ``f_loo`` and
    ``Q`` the leave-out NW average of the residual outer products; the DKF recursion is run for
    each candidate bandwidth and scored by the mean squared error of the filtered means. This is
    cross-validation of the quantity the filter is used for: the DKF update divides ``p(z|x)`` by
    the prior ``N(0, S)``, which amplifies ``f`` where ``Q(x)`` approaches ``S``, so noisy local
    ``Q`` estimates (preferred by likelihood or squared-error criteria on the outer products)
    can hurt the filter.

    Parameters
    ----------
    X : ndarray, shape (n, n_features)
    Zc : ndarray, shape (n, n_states)
        Centred training states.
    f_loo : ndarray, shape (n, n_states)
        Leave-out predictions of ``f`` at every training step.
    A, Gamma, S_inv, Q_add : ndarray, shape (n_states, n_states)
    robust : bool
    bandwidths, max_samples, random_state, gap
        As in :func:`select_bandwidth_loo`.

    Returns
    -------
    best : float
    bandwidths : ndarray, shape (n_candidates,)
    filtered_mse : ndarray, shape (n_candidates,)
    """
    n, d = Zc.shape
    resid = Zc - f_loo
    D, rows, d2_sub = _loo_setup(X, max_samples, random_state, gap)
    grid = _check_grid(_default_grid(d2_sub, 0.03, 3.0, 25) if bandwidths is None else bandwidths)
    outer = (resid[:, :, None] * resid[:, None, :]).reshape(n, d * d)
    Q = np.stack([_loo_eval(D, outer, h).reshape(-1, d, d) + Q_add for h in grid])
    f = np.broadcast_to(f_loo[rows], (grid.size, rows.size, d))
    mu = dkf_filter_batch(f, Q, A, Gamma, S_inv, robust)
    scores = np.mean((mu - Zc[rows][None]) ** 2, axis=(1, 2))
    return _pick(grid, scores, "Q"), grid, scores



def blocked_folds(n: int, n_folds: int = 5, gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Chronological K-fold splits for a time series: each test fold is a contiguous block.

    The training rows of a fold are all rows more than ``gap`` steps away from its test block
    (h-block cross-validation: neighbouring steps are correlated).

    Parameters
    ----------
    n : int
        Number of consecutive steps.
    n_folds : int
    gap : int

    Returns
    -------
    folds : list of (train_rows, test_rows), each an ndarray of int
    """
    edges = np.linspace(0, n, n_folds + 1).astype(int)
    idx = np.arange(n)
    folds = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b <= a:
            continue
        train = idx[(idx < a - gap) | (idx >= b + gap)]
        folds.append((train, idx[a:b]))
    return folds


def _ridge_coef(X: np.ndarray, Y: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Ridge coefficients (no intercept) for each alpha, shape (n_alphas, n_features, n_targets)."""
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    UtY = U.T @ Y
    return np.stack([Vt.T @ ((s / (s**2 + a))[:, None] * UtY) for a in alphas])


def ridge_projection(
    Xs: np.ndarray,
    Zc: np.ndarray,
    alphas: np.ndarray | None = None,
    n_folds: int = 5,
    gap: int = 0,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Supervised linear projection of standardised features onto the state space.

    A ridge regression ``Zc ~ Xs`` whose penalty is chosen by blocked cross-validation
    (:func:`blocked_folds`; the usual leave-one-out shortcut would overfit consecutive, strongly
    correlated steps), its columns scaled to unit variance on the training rows. The NW kernel
    of the DKF then works in this ``n_states``-dimensional space instead of the raw feature space
    (where, with many features and few independent training steps, its distances are mostly
    noise).

    Parameters
    ----------
    Xs : ndarray, shape (n, n_features)
        Standardised features (zero mean).
    Zc : ndarray, shape (n, n_states)
        Centred states.
    alphas : ndarray, shape (n_alphas,) or None
        Candidate penalties; default ``n * logspace(-5, 1, 13)``.
    n_folds, gap : int
        Blocked cross-validation.

    Returns
    -------
    P : ndarray, shape (n_features, n_states)
        ``Xs @ P`` is the projected feature (unit variance per column).
    alpha : float
        Chosen penalty.
    cv_nmse : ndarray, shape (n_alphas,)
        Cross-validated MSE per alpha, each target's divided by its variance, averaged.
    """
    n = Xs.shape[0]
    grid = n * np.logspace(-5, 1, 13) if alphas is None else _check_grid(alphas)
    var = np.maximum(Zc.var(axis=0), 1e-12)
    sq = np.zeros(grid.size)
    for tr, te in blocked_folds(n, n_folds, gap):
        B = _ridge_coef(Xs[tr], Zc[tr], grid)
        sq += np.array([np.sum(((Xs[te] @ b - Zc[te]) ** 2) / var) for b in B])
    scores = sq / Zc.size
    alpha = float(grid[int(np.argmin(scores))])
    B = _ridge_coef(Xs, Zc, np.array([alpha]))[0]
    sd = (Xs @ B).std(axis=0)
    return B / np.where(sd > 0, sd, 1.0), alpha, scores


def ridge_feature_map(Xs: np.ndarray, Zc: np.ndarray, alpha: float | None) -> Any:
    """``rows -> Phi`` for :func:`cv_filter_scores`: the standardised features ``Xs`` (n, n_features)
    (``alpha`` None), or their ridge projection on ``Zc`` (:func:`ridge_projection` with penalty
    ``alpha``) refitted on the given training rows only."""
    if alpha is None:
        return lambda rows: Xs

    def features(rows: np.ndarray) -> np.ndarray:
        B = _ridge_coef(Xs[rows], Zc[rows], np.array([alpha]))[0]
        sd = (Xs[rows] @ B).std(axis=0)
        return Xs @ (B / np.where(sd > 0, sd, 1.0))

    return features


def cv_filter_scores(
    features: Any,
    Zc: np.ndarray,
    bandwidth: float,
    q_bandwidth: float,
    q_reg: float,
    A: np.ndarray,
    Gamma: np.ndarray,
    S_inv: np.ndarray,
    q_scales: np.ndarray,
    robust: bool = False,
    n_folds: int = 5,
    gap: int = 0,
) -> np.ndarray:
    """Blocked cross-validated error of the NW DKF for each scale of ``Q``.

    For each fold (:func:`blocked_folds`) the observation model is rebuilt from the training
    rows only (the feature map, NW ``f`` at ``bandwidth``, ``Q`` from leave-out residuals at
    ``q_bandwidth`` plus the ``q_reg`` floor), then the filter runs over the contiguous test
    block from the stationary prior with ``Q`` multiplied by each of ``q_scales``. Scaling ``Q``
    tunes how much the filter smooths: the DKF treats observations as conditionally independent
    given the state, so when ``f``'s errors are correlated over time (overlapping windows, a
    lagging signal) the learned ``Q`` over-smooths, and a scale below one trusts ``f`` more.

    Parameters
    ----------
    features : callable
        ``features(train_rows) -> Phi`` of shape (n, k): the NW input of every row, with any
        supervised map fitted on ``train_rows`` only.
    Zc : ndarray, shape (n, n_states)
    bandwidth, q_bandwidth, q_reg : float
    A, Gamma, S_inv : ndarray, shape (n_states, n_states)
    q_scales : ndarray, shape (n_scales,)
    robust : bool
    n_folds, gap : int

    Returns
    -------
    nmse : ndarray, shape (n_scales,)
        Filtered MSE per scale, each target's divided by its variance, averaged over targets and
        test steps.
    """
    n, d = Zc.shape
    var = np.maximum(Zc.var(axis=0), 1e-12)
    sq = np.zeros(len(q_scales))
    for tr, te in blocked_folds(n, n_folds, gap):
        Phi = features(tr)
        P_tr, Z_tr = Phi[tr], Zc[tr]
        resid = Z_tr - nw_loo_fit(P_tr, Z_tr, bandwidth, gap=gap)
        C = resid.T @ resid / len(resid)
        Q_add = q_reg * 0.5 * (C + C.T)
        f = nadaraya_watson(Phi[te], P_tr, Z_tr, bandwidth)
        outer = (resid[:, :, None] * resid[:, None, :]).reshape(len(tr), d * d)
        Q = nadaraya_watson(Phi[te], P_tr, outer, q_bandwidth).reshape(-1, d, d) + Q_add
        sq += _scaled_block_sq(f, Q, Zc[te], var, A, Gamma, S_inv, q_scales, robust)
    return sq / (n * d)


def _scaled_block_sq(f, Q, Z, var, A, Gamma, S_inv, q_scales, robust) -> np.ndarray:
    """Filter one contiguous block from the stationary prior with ``Q`` times each scale;
    per scale, the squared error summed over steps and targets, each over its variance."""
    c = np.asarray(q_scales, dtype=float)[:, None, None, None]
    mu = dkf_filter_batch(np.broadcast_to(f, (c.shape[0], *f.shape)), c * Q[None], A, Gamma,
                          S_inv, robust)
    return np.sum((mu - Z[None]) ** 2 / var, axis=(1, 2))


def oof_filter_scores(
    f: np.ndarray,
    Q: np.ndarray,
    Zc: np.ndarray,
    A: np.ndarray,
    Gamma: np.ndarray,
    S_inv: np.ndarray,
    q_scales: np.ndarray,
    robust: bool = False,
    n_folds: int = 5,
) -> np.ndarray:
    """Blocked cross-validated error of the DKF for each scale of ``Q``, from out-of-fold ``f``, ``Q``.

    The counterpart of :func:`cv_filter_scores` for regressors that are not refitted here (MLP,
    GP): ``f`` and ``Q`` at every training step come from models that did not see that step's
    block; the filter runs over each contiguous block (:func:`blocked_folds`) from the stationary
    prior with ``Q`` multiplied by each scale.

    Parameters
    ----------
    f : ndarray, shape (n, n_states)
    Q : ndarray, shape (n, n_states, n_states)
    Zc : ndarray, shape (n, n_states)
    A, Gamma, S_inv : ndarray, shape (n_states, n_states)
    q_scales : ndarray, shape (n_scales,)
    robust : bool
    n_folds : int
        Blocks the filter runs over (those of the out-of-fold predictions, ideally).

    Returns
    -------
    nmse : ndarray, shape (n_scales,)
        Filtered MSE per scale, each target's divided by its variance, averaged.
    """
    n, d = Zc.shape
    var = np.maximum(Zc.var(axis=0), 1e-12)
    sq = np.zeros(len(q_scales))
    for _, te in blocked_folds(n, n_folds, 0):
        sq += _scaled_block_sq(f[te], Q[te], Zc[te], var, A, Gamma, S_inv, q_scales, robust)
    return sq / (n * d)


def linear_filter_cv(
    Xs: np.ndarray,
    Zc: np.ndarray,
    q_scales: np.ndarray,
    n_folds: int = 5,
    gap: int = 0,
) -> tuple[float, float]:
    """Blocked cross-validated error of a DKF with a linear ``f`` and a constant ``Q``.

    A cheap stand-in for the filters when comparing feature sets (windows, lags): ``f`` is the
    ridge regression of ``Zc`` on ``Xs`` (penalty by blocked CV, :func:`ridge_projection`),
    predicted for each block by the fit on the other blocks (``gap`` steps apart); ``Q`` the
    covariance of those out-of-fold residuals; the state model is fitted on ``Zc``; the DKF runs
    over each block with ``Q`` times each scale (:func:`oof_filter_scores`). Unlike the ridge's
    own error this credits features that are noisy but timely, which the filter smooths.

    Parameters
    ----------
    Xs : ndarray, shape (n, n_features)
        Standardised features.
    Zc : ndarray, shape (n, n_states)
        Centred states, consecutive.
    q_scales : ndarray, shape (n_scales,)
    n_folds, gap : int

    Returns
    -------
    nmse : float
        The lowest filtered error over the scales (each target's MSE over its variance); the
        ridge's own CV error when the fitted state model is not stationary (no filter prior).
    q_scale : float
        The scale reaching it (NaN in that case).
    """
    from neurodeck.decoders.dkf.updates import fit_state_model, stationary_covariance

    n, d = Zc.shape
    _, alpha, ridge_cv = ridge_projection(Xs, Zc, n_folds=n_folds, gap=gap)
    A, Gamma = fit_state_model(Zc)
    try:
        S_inv = np.linalg.inv(stationary_covariance(A, Gamma))
    except DecoderError:  # e.g. a drifting position: no stationary prior, score the ridge alone
        logger.info("state model not stationary: feature sets compared by the ridge's CV error")
        return float(np.min(ridge_cv)), float("nan")
    f = np.empty_like(Zc)
    for tr, te in blocked_folds(n, n_folds, gap):
        f[te] = Xs[te] @ _ridge_coef(Xs[tr], Zc[tr], np.array([alpha]))[0]
    r = Zc - f
    C = r.T @ r / n
    scores = oof_filter_scores(f, np.broadcast_to(0.5 * (C + C.T), (n, d, d)), Zc, A, Gamma,
                               S_inv, q_scales, n_folds=n_folds)
    k = int(np.argmin(scores))
    return float(scores[k]), float(np.asarray(q_scales)[k])
