"""Discriminative Kalman Filter (DKF) and the classic Kalman filter baseline.

Implements Burkhart, Brandman, Franco, Hochberg & Harrison, "The Discriminative Kalman Filter for
Bayesian Filtering with Nonlinear and Nongaussian Observation Models", Neural Computation
32(5):969-1017, 2020.

Model (all in centred state coordinates, ``z <- z - mean(Z_train)``):

- state: ``Z_t = A Z_{t-1} + w_t``, ``w_t ~ N(0, Gamma)``, stationary covariance ``S`` solving
  ``S = A S A^T + Gamma``, so ``p(z_t) = N(0, S)`` (paper eq. 2.1);
- observation, *discriminatively*: ``p(z_t | x_t) ~ N(f(x_t), Q(x_t))`` (eq. 2.2), with ``f`` and
  ``Q`` learned by any regression method: Nadaraya-Watson, an MLP or a Gaussian process here.

Since ``p(x | z) ∝ p(z | x) / p(z)``, the filter update is closed form (eq. 2.7)::

    nu      = A mu_{t-1}
    M       = A Sigma_{t-1} A^T + Gamma
    Sigma_t = (M^-1 + Q(x_t)^-1 - S^-1)^-1
    mu_t    = Sigma_t (M^-1 nu + Q(x_t)^-1 f(x_t))

When ``Q^-1 - S^-1`` is not positive definite the ratio is not a Gaussian; as in the paper the
update then drops the ``-S^-1`` term (``Sigma_t = (M^-1 + Q^-1)^-1``). The **robust DKF** of the
paper (its ``DKF_robust`` variant, meant for data whose state distribution differs from training)
always drops it: it treats ``f(x_t)`` as a direct noisy measurement of ``z_t`` with covariance
``Q(x_t)``, and so never relies on the training prior ``N(0, S)``. That is what ``robust=True``
implements here.

Learning ``f`` and ``Q`` (what is implemented, and why):

- ``A, Gamma``: least squares with states as rows, ``A = (Z1^T Z0)(Z0^T Z0)^-1`` (``Z0 = Z[:-1]``,
  ``Z1 = Z[1:]``); a test on a known non-symmetric ``A`` guards against the transposed fit.
- NW ``f``: Gaussian kernel on standardised features, bandwidth minimising the leave-one-out
  MSE (vectorised; evaluated on a contiguous block of at most ``loo_max_samples`` steps, each
  predicted from all other training steps except ``loo_gap`` neighbours on each side, i.e. h-block
  CV because consecutive steps are correlated).
- NW ``Q``: NW average of the outer products of the leave-out residuals ``r r^T`` (a convex
  combination of PSD matrices, plus the floor ``q_reg * cov(r)``, hence positive definite). Its
  bandwidth is chosen, by default, by the filter's own leave-out error on the training sequence
  (``q_criterion="filter"``). Rationale, measured on the Flint data: the likelihood or MSE of the
  outer products prefer small bandwidths (noisy local ``Q``), and because the DKF divides by the
  prior ``N(0, S)`` (amplifying ``f`` where ``Q`` nears ``S``) such a ``Q`` made the filtered
  estimate *worse* than the unfiltered ``f`` (NRMSE 0.69 vs 0.64); the filter-CV bandwidth gives
  0.60. ``q_criterion="nll"`` keeps the likelihood choice.
- MLP ``f`` (scaler + :class:`~sklearn.neural_network.MLPRegressor`), ``Q`` from ``cv``-fold
  out-of-fold residuals (NW as above, or constant). GP ``f`` on an evenly spaced subset, ``Q`` =
  diagonal predictive variance (which includes the fitted white noise) plus the floor.

The filter starts from the stationary prior (``mu_0 = 0``, ``Sigma_0 = S``), whose one-step
prediction is again ``N(0, S)``; the first update therefore gives exactly ``N(f(x_1), Q(x_1))``.

Estimators follow scikit-learn rules: ``__init__`` stores parameters, ``fit`` validates and learns
the attributes ending in ``_``, ``predict`` runs the filter on a whole sequence without touching
the online state, ``step``/``reset`` drive the online filter one sample at a time.

Online / ONNX path: :meth:`DiscriminativeKalmanFilter.to_onnx` returns an ONNX model
``x (n, n_features) float64 -> f (n, n_states), Q (n, n_states, n_states)`` (hand-built graph for
NW, skl2onnx MLP plus an NW or constant Q branch for the MLP); :meth:`to_dict` returns the small
matrices (A, Gamma, S, ...) as a JSON-able dict. :meth:`DiscriminativeKalmanFilter.from_dict`
plus :meth:`use_onnx` rebuild a working filter from those two files, without any pickle.
"""
from __future__ import annotations

import logging
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.linalg import solve_discrete_lyapunov
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from neurodeck.decoders.errors import DecoderError, ModelBundleError

logger = logging.getLogger(__name__)

__all__ = [
    "DiscriminativeKalmanFilter",
    "KalmanFilter",
    "fit_state_model",
    "stationary_covariance",
    "dkf_update",
    "kalman_update",
    "squared_distances",
    "nadaraya_watson",
    "nw_loo_predictions",
    "select_bandwidth_loo",
    "select_q_bandwidth_loo",
    "select_q_bandwidth_filter",
    "velocity_metrics",
]

FORMAT_VERSION = 1
MIN_STEPS = 10
_REGRESSORS = ("nw", "mlp", "gp")


# ----------------------------------------------------------------------------------------------
# validation


def _check_sequence(X: Any, name: str, n_cols: int | None = None) -> np.ndarray:
    """2-D finite float64 array (n_steps, n_cols) or a :class:`DecoderError` quoting the problem."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DecoderError(f"{name} must be a numeric array, got {type(X).__name__}: {exc}") from exc
    if arr.ndim != 2:
        raise DecoderError(
            f"{name} must have shape (n_steps, n_{'features' if name == 'X' else 'states'}), "
            f"got an array of shape {arr.shape}"
        )
    if n_cols is not None and arr.shape[1] != n_cols:
        raise DecoderError(
            f"{name} has {arr.shape[1]} columns but the model was fitted with {n_cols}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise DecoderError(
            f"{name} contains {int(bad.sum())} NaN/inf value(s), first at row {rows[0]}, "
            f"column {cols[0]}; expected finite values"
        )
    return arr


def _check_fit_input(X: Any, Z: Any) -> tuple[np.ndarray, np.ndarray]:
    X = _check_sequence(X, "X")
    Z = _check_sequence(Z, "Z")
    if X.shape[0] != Z.shape[0]:
        raise DecoderError(
            f"X and Z must have the same number of time steps, got X {X.shape} and Z {Z.shape}"
        )
    if X.shape[0] < MIN_STEPS:
        raise DecoderError(
            f"need at least {MIN_STEPS} consecutive time steps to fit, got {X.shape[0]}"
        )
    if X.shape[0] <= Z.shape[1] + 1:
        raise DecoderError(
            f"need more time steps ({X.shape[0]}) than states + 1 ({Z.shape[1] + 1}) to fit A"
        )
    return X, Z


def _check_x_row(x: Any, n_features: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != (n_features,):
        raise DecoderError(f"x must have shape ({n_features},) for one step, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DecoderError(f"x contains NaN/inf: {arr.tolist()}; expected finite values")
    return arr


# ----------------------------------------------------------------------------------------------
# state model


def fit_state_model(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of ``Z[t] = A Z[t-1] + w``, ``w ~ N(0, Gamma)``.

    Parameters
    ----------
    Z : ndarray, shape (n_steps, n_states)
        Consecutive states, one row per time step (already centred if a zero-mean model is meant).

    Returns
    -------
    A : ndarray, shape (n_states, n_states)
        ``A = (Z1^T Z0)(Z0^T Z0)^-1`` with ``Z0 = Z[:-1]``, ``Z1 = Z[1:]`` (rows are states, so the
        row form of the regression is ``Z1 ≈ Z0 A^T``).
    Gamma : ndarray, shape (n_states, n_states)
        Covariance of the one-step residuals ``Z1 - Z0 A^T`` (symmetric).
    """
    Z = np.asarray(Z, dtype=np.float64)
    Z0, Z1 = Z[:-1], Z[1:]
    G = Z0.T @ Z0
    try:
        A = np.linalg.solve(G, Z0.T @ Z1).T
    except np.linalg.LinAlgError as exc:
        raise DecoderError(
            "cannot fit the state transition: Z[:-1]^T Z[:-1] is singular "
            "(a constant or collinear state dimension?)"
        ) from exc
    resid = Z1 - Z0 @ A.T
    Gamma = resid.T @ resid / resid.shape[0]
    return A, 0.5 * (Gamma + Gamma.T)


def stationary_covariance(A: np.ndarray, Gamma: np.ndarray) -> np.ndarray:
    """Solve ``S = A S A^T + Gamma`` (the stationary state covariance).

    Parameters
    ----------
    A, Gamma : ndarray, shape (n_states, n_states)

    Returns
    -------
    S : ndarray, shape (n_states, n_states)

    Raises
    ------
    DecoderError
        If ``A`` has an eigenvalue of modulus >= 1 (no stationary distribution).
    """
    rho = float(np.max(np.abs(np.linalg.eigvals(A))))
    if rho >= 1.0:
        raise DecoderError(
            f"state transition A has spectral radius {rho:.4f} >= 1: the state model is not "
            "stationary, so S = A S A^T + Gamma has no solution"
        )
    S = solve_discrete_lyapunov(A, Gamma)
    return 0.5 * (S + S.T)


# ----------------------------------------------------------------------------------------------
# filter updates (pure functions)


def _is_pd(M: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return False
    return True


def dkf_update(
    mu: np.ndarray,
    Sigma: np.ndarray,
    f: np.ndarray,
    Q: np.ndarray,
    A: np.ndarray,
    Gamma: np.ndarray,
    S_inv: np.ndarray,
    robust: bool = False,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """One DKF predict + update step (paper eq. 2.7).

    Parameters
    ----------
    mu : ndarray, shape (n_states,)
        Previous posterior mean.
    Sigma : ndarray, shape (n_states, n_states)
        Previous posterior covariance.
    f : ndarray, shape (n_states,)
        ``f(x_t)``, the regression estimate of the state.
    Q : ndarray, shape (n_states, n_states)
        ``Q(x_t)``, its covariance.
    A, Gamma : ndarray, shape (n_states, n_states)
        State model.
    S_inv : ndarray, shape (n_states, n_states)
        Inverse stationary covariance.
    robust : bool
        Always drop ``-S^-1`` (robust DKF).

    Returns
    -------
    mu : ndarray, shape (n_states,)
    Sigma : ndarray, shape (n_states, n_states)
    fell_back : bool
        True when ``Q^-1 - S^-1`` was not positive definite and ``-S^-1`` was dropped
        (always False when ``robust``).
    """
    nu = A @ mu
    M = A @ Sigma @ A.T + Gamma
    M_inv = np.linalg.inv(M)
    Q_inv = np.linalg.inv(Q)
    fell_back = False
    if robust:
        P = M_inv + Q_inv
    else:
        D = Q_inv - S_inv
        if _is_pd(0.5 * (D + D.T)):
            P = M_inv + D
        else:
            P = M_inv + Q_inv
            fell_back = True
    Sigma_new = np.linalg.inv(P)
    Sigma_new = 0.5 * (Sigma_new + Sigma_new.T)
    mu_new = Sigma_new @ (M_inv @ nu + Q_inv @ f)
    return mu_new, Sigma_new, fell_back


def kalman_update(
    mu: np.ndarray,
    Sigma: np.ndarray,
    x: np.ndarray,
    A: np.ndarray,
    Gamma: np.ndarray,
    H: np.ndarray,
    b: np.ndarray,
    R: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One classic Kalman filter step for ``z_t = A z_{t-1} + w``, ``x_t = H z_t + b + v``.

    Parameters
    ----------
    mu : ndarray, shape (n_states,)
    Sigma : ndarray, shape (n_states, n_states)
    x : ndarray, shape (n_features,)
    A, Gamma : ndarray, shape (n_states, n_states)
    H : ndarray, shape (n_features, n_states)
    b : ndarray, shape (n_features,)
    R : ndarray, shape (n_features, n_features)
        Observation noise covariance.

    Returns
    -------
    mu : ndarray, shape (n_states,)
    Sigma : ndarray, shape (n_states, n_states)
    """
    nu = A @ mu
    M = A @ Sigma @ A.T + Gamma
    HM = H @ M
    innov_cov = HM @ H.T + R
    K = np.linalg.solve(innov_cov, HM).T
    mu_new = nu + K @ (x - H @ nu - b)
    Sigma_new = M - K @ HM
    return mu_new, 0.5 * (Sigma_new + Sigma_new.T)


# ----------------------------------------------------------------------------------------------
# Nadaraya-Watson regression (numpy reference; decoders.nw_onnx builds the same graph)


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
    S = np.linalg.inv(S_inv)
    scores = np.empty(grid.size)
    for k, h in enumerate(grid):
        Q = _loo_eval(D, outer, h).reshape(-1, d, d) + Q_add
        mu, Sigma = np.zeros(d), S
        sq = 0.0
        for t, row in enumerate(rows):
            mu, Sigma, _ = dkf_update(mu, Sigma, f_loo[row], Q[t], A, Gamma, S_inv, robust)
            sq += float(np.sum((mu - Zc[row]) ** 2))
        scores[k] = sq / (rows.size * d)
    return _pick(grid, scores, "Q"), grid, scores


# ----------------------------------------------------------------------------------------------
# metrics


def velocity_metrics(Z_true: np.ndarray, Z_pred: np.ndarray) -> dict[str, Any]:
    """Decoding quality of a state sequence.

    Parameters
    ----------
    Z_true, Z_pred : ndarray, shape (n_steps, n_states)

    Returns
    -------
    metrics : dict
        ``corr`` (list, Pearson correlation per dimension), ``corr_mean``, ``rmse`` (root mean
        squared error over all entries), ``nrmse`` (list: per-dimension RMSE divided by the
        standard deviation of the true dimension), ``nrmse_mean`` and, for 2-D states,
        ``angle_error`` (mean absolute angle between true and predicted vectors, radians, in
        [0, pi]).
    """
    Z_true = np.asarray(Z_true, dtype=np.float64)
    Z_pred = np.asarray(Z_pred, dtype=np.float64)
    if Z_true.shape != Z_pred.shape or Z_true.ndim != 2:
        raise DecoderError(
            f"Z_true and Z_pred must have the same shape (n_steps, n_states), got "
            f"{Z_true.shape} and {Z_pred.shape}"
        )
    err = Z_pred - Z_true
    corr = [float(np.corrcoef(Z_true[:, j], Z_pred[:, j])[0, 1]) for j in range(Z_true.shape[1])]
    nrmse = np.sqrt(np.mean(err**2, axis=0)) / Z_true.std(axis=0)
    out: dict[str, Any] = {
        "corr": corr,
        "corr_mean": float(np.mean(corr)),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "nrmse": nrmse.tolist(),
        "nrmse_mean": float(np.mean(nrmse)),
    }
    if Z_true.shape[1] == 2:
        diff = np.arctan2(Z_pred[:, 1], Z_pred[:, 0]) - np.arctan2(Z_true[:, 1], Z_true[:, 0])
        out["angle_error"] = float(np.mean(np.abs(np.angle(np.exp(1j * diff)))))
    return out


# ----------------------------------------------------------------------------------------------
# estimators


def _sym_pd_inv(M: np.ndarray, name: str) -> np.ndarray:
    if not _is_pd(M):
        raise DecoderError(f"{name} is not positive definite: eigenvalues {np.linalg.eigvalsh(M)}")
    inv = np.linalg.inv(M)
    return 0.5 * (inv + inv.T)


class _FilterBase(BaseEstimator):
    """Shared online machinery: ``reset``/``step`` over the subclass's ``_update``."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "A_"):
            raise DecoderError(f"{type(self).__name__} is not fitted: call fit(X, Z) first")

    def _initial_state(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.n_states_), self.S_.copy()

    def reset(self) -> _FilterBase:
        """Restart the online filter from the stationary prior ``N(mean(Z_train), S)``."""
        self._check_fitted()
        self.mu_, self.Sigma_ = self._initial_state()
        return self

    def step(self, x: Any) -> np.ndarray:
        """One online update with the features of one time step.

        Parameters
        ----------
        x : array-like, shape (n_features,)

        Returns
        -------
        z : ndarray, shape (n_states,)
            Filtered state estimate (posterior mean) after this step.
        """
        self._check_fitted()
        x = _check_x_row(x, self.n_features_in_)
        if not hasattr(self, "mu_"):
            self.reset()
        self.mu_, self.Sigma_ = self._update(self.mu_, self.Sigma_, x)
        return self.mu_ + self.z_mean_

    @property
    def posterior_covariance(self) -> np.ndarray:
        """Current online posterior covariance, shape (n_states, n_states)."""
        self._check_fitted()
        if not hasattr(self, "Sigma_"):
            self.reset()
        return self.Sigma_.copy()


class KalmanFilter(_FilterBase):
    """Classic Kalman filter with a linear-Gaussian observation model ``x = H z + b + v``.

    All parameters are fitted by least squares from training sequences: ``A, Gamma`` from
    consecutive states (:func:`fit_state_model`), ``H, b`` by regressing the features on the
    states, ``R`` the covariance of that regression's residuals.

    Attributes
    ----------
    A_, Gamma_, S_ : ndarray, shape (n_states, n_states)
    H_ : ndarray, shape (n_features, n_states)
    b_ : ndarray, shape (n_features,)
    R_ : ndarray, shape (n_features, n_features)
    z_mean_ : ndarray, shape (n_states,)
    n_features_in_, n_states_ : int
    """

    def fit(self, X: Any, Z: Any) -> KalmanFilter:
        """Fit from features ``X`` (n_steps, n_features) and states ``Z`` (n_steps, n_states)."""
        X, Z = _check_fit_input(X, Z)
        for attr in ("mu_", "Sigma_"):
            self.__dict__.pop(attr, None)
        self.z_mean_ = Z.mean(axis=0)
        Zc = Z - self.z_mean_
        self.A_, self.Gamma_ = fit_state_model(Zc)
        self.S_ = stationary_covariance(self.A_, self.Gamma_)
        design = np.column_stack([Zc, np.ones(len(Zc))])
        coef, *_ = np.linalg.lstsq(design, X, rcond=None)
        self.H_ = coef[:-1].T
        self.b_ = coef[-1]
        resid = X - design @ coef
        R = resid.T @ resid / len(resid)
        self.R_ = 0.5 * (R + R.T)
        self.n_features_in_ = X.shape[1]
        self.n_states_ = Z.shape[1]
        return self

    def _update(self, mu: np.ndarray, Sigma: np.ndarray, x: np.ndarray):
        return kalman_update(mu, Sigma, x, self.A_, self.Gamma_, self.H_, self.b_, self.R_)

    def predict(self, X: Any) -> np.ndarray:
        """Filter a whole sequence from the stationary prior (the online state is untouched).

        Parameters
        ----------
        X : array-like, shape (n_steps, n_features)

        Returns
        -------
        Z : ndarray, shape (n_steps, n_states)
        """
        self._check_fitted()
        X = _check_sequence(X, "X", self.n_features_in_)
        mu, Sigma = self._initial_state()
        out = np.empty((X.shape[0], self.n_states_))
        for t, x in enumerate(X):
            mu, Sigma = self._update(mu, Sigma, x)
            out[t] = mu
        return out + self.z_mean_


class DiscriminativeKalmanFilter(_FilterBase):
    """Discriminative Kalman Filter (Burkhart et al., Neural Computation 2020).

    Parameters
    ----------
    regressor : {"nw", "mlp", "gp"}
        How ``f(x) = E[z | x]`` and ``Q(x)`` are learned:

        - ``"nw"``: Nadaraya-Watson with a Gaussian kernel on standardised features, bandwidth by
          leave-one-out MSE; ``Q`` is the NW average (own LOO bandwidth) of the outer products of
          the LOO residuals, plus ``q_reg`` times their overall covariance (positive definite).
        - ``"mlp"``: :class:`sklearn.neural_network.MLPRegressor` for ``f``; residuals from
          ``cv``-fold out-of-fold predictions give ``Q``, either by NW on their outer products
          (``q_model="nw"``) or as their constant covariance (``q_model="constant"``).
        - ``"gp"``: :class:`sklearn.gaussian_process.GaussianProcessRegressor` (RBF + white noise,
          fitted on at most ``gp_max_samples`` training steps) for ``f``; ``Q`` is the diagonal
          predictive variance (latent variance + fitted noise) plus the ``q_reg`` floor.
    robust : bool
        Robust DKF: always use ``Sigma_t = (M^-1 + Q^-1)^-1`` (never subtract the prior ``S^-1``).
    bandwidth : float or None
        NW bandwidth of ``f`` in standardised feature units; ``None``: leave-one-out search.
    q_bandwidth : float or None
        NW bandwidth of ``Q``; ``None``: leave-one-out search on the residual outer products.
    q_model : {"nw", "constant"}
        ``Q`` model for the MLP (NW always uses ``"nw"``, GP its predictive variance).
    q_criterion : {"filter", "nll"}
        How the NW bandwidth of ``Q`` is chosen when ``q_bandwidth`` is None: ``"filter"``
        minimises the DKF's filtered MSE over a contiguous block of training steps with
        leave-out ``f`` and ``Q`` (:func:`select_q_bandwidth_filter`); ``"nll"`` maximises the
        leave-out Gaussian likelihood of the residuals (:func:`select_q_bandwidth_loo`).
    loo_gap : int
        Leave-out also drops this many neighbouring time steps on each side (h-block
        cross-validation: consecutive steps are correlated).
    q_reg : float
        Relative floor: ``Q(x) += q_reg * cov(residuals)`` keeps ``Q`` positive definite.
    loo_max_samples : int
        At most this many training steps (random subset) in each bandwidth search.
    hidden_layer_sizes : tuple of int
        MLP architecture.
    alpha : float
        MLP L2 penalty.
    cv : int
        Folds for the MLP's out-of-fold residuals.
    gp_max_samples : int
        Training steps (evenly spaced subset) used by the GP.
    random_state : int or None
        Seed for subsampling and the MLP/GP.

    Attributes
    ----------
    A_, Gamma_, S_, S_inv_ : ndarray, shape (n_states, n_states)
        State model and its stationary covariance (centred coordinates).
    z_mean_ : ndarray, shape (n_states,)
    x_mean_, x_scale_ : ndarray, shape (n_features,)
        Feature standardisation used by NW.
    bandwidth_, q_bandwidth_ : float or None
        Bandwidths actually used (``None`` where not applicable).
    Q_add_ : ndarray, shape (n_states, n_states)
        The positive-definite floor added to ``Q``.
    regressor_ : estimator or None
        Fitted MLP/GP (``None`` for NW).
    onnx_session_ : onnxruntime.InferenceSession or None
        When set by :meth:`use_onnx`, ``f`` and ``Q`` come from this session.
    n_fallbacks_ : int
        Online steps so far where ``Q^-1 - S^-1`` was not positive definite.
    n_features_in_, n_states_ : int
    """

    def __init__(
        self,
        regressor: str = "nw",
        robust: bool = False,
        bandwidth: float | None = None,
        q_bandwidth: float | None = None,
        q_model: str = "nw",
        q_criterion: str = "filter",
        q_reg: float = 1e-3,
        loo_max_samples: int = 2000,
        loo_gap: int = 5,
        hidden_layer_sizes: tuple[int, ...] = (32,),
        alpha: float = 0.1,
        cv: int = 3,
        gp_max_samples: int = 800,
        random_state: int | None = 0,
    ) -> None:
        self.regressor = regressor
        self.robust = robust
        self.bandwidth = bandwidth
        self.q_bandwidth = q_bandwidth
        self.q_model = q_model
        self.q_criterion = q_criterion
        self.q_reg = q_reg
        self.loo_max_samples = loo_max_samples
        self.loo_gap = loo_gap
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.cv = cv
        self.gp_max_samples = gp_max_samples
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.regressor not in _REGRESSORS:
            raise DecoderError(f"regressor must be one of {_REGRESSORS}, got {self.regressor!r}")
        if self.q_model not in ("nw", "constant"):
            raise DecoderError(f"q_model must be 'nw' or 'constant', got {self.q_model!r}")
        if self.q_criterion not in ("filter", "nll"):
            raise DecoderError(
                f"q_criterion must be 'filter' or 'nll', got {self.q_criterion!r}"
            )
        for name in ("bandwidth", "q_bandwidth"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, Real) and np.isfinite(v) and v > 0):
                raise DecoderError(f"{name} must be None or a finite number > 0, got {v!r}")
        if not (isinstance(self.q_reg, Real) and self.q_reg > 0 and np.isfinite(self.q_reg)):
            raise DecoderError(f"q_reg must be a finite number > 0, got {self.q_reg!r}")
        for name, lo in (("loo_max_samples", 10), ("loo_gap", 0), ("cv", 2), ("gp_max_samples", 10)):
            v = getattr(self, name)
            if not isinstance(v, Integral) or v < lo:
                raise DecoderError(f"{name} must be an integer >= {lo}, got {v!r}")

    # -- fitting -------------------------------------------------------------------------------

    def fit(self, X: Any, Z: Any) -> DiscriminativeKalmanFilter:
        """Learn the state model and the discriminative observation model.

        Parameters
        ----------
        X : array-like, shape (n_steps, n_features)
            Features, one row per time step.
        Z : array-like, shape (n_steps, n_states)
            States at the same (consecutive) time steps.

        Returns
        -------
        self
        """
        self._check_params()
        X, Z = _check_fit_input(X, Z)
        for attr in ("mu_", "Sigma_", "onnx_session_"):
            self.__dict__.pop(attr, None)
        self.n_features_in_ = X.shape[1]
        self.n_states_ = Z.shape[1]
        self.n_fallbacks_ = 0
        self.z_mean_ = Z.mean(axis=0)
        Zc = Z - self.z_mean_
        self.A_, self.Gamma_ = fit_state_model(Zc)
        self.S_ = stationary_covariance(self.A_, self.Gamma_)
        self.S_inv_ = _sym_pd_inv(self.S_, "stationary covariance S")
        self.x_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.x_scale_ = np.where(scale > 0, scale, 1.0)
        Xs = (X - self.x_mean_) / self.x_scale_
        self.bandwidth_ = None
        self.q_bandwidth_ = None
        self.regressor_ = None
        self.onnx_session_ = None
        self.X_train_ = None
        self.Z_train_ = None
        self.R_train_ = None
        self.Q_const_ = None
        if self.regressor == "nw":
            resid = self._fit_nw(Xs, Zc)
        elif self.regressor == "mlp":
            resid = self._fit_mlp(X, Xs, Zc)
        else:
            resid = self._fit_gp(X, Zc)
        self.Q_add_ = self._q_floor(resid)
        if self.Q_const_ is not None:
            self.Q_const_ = self.Q_const_ + self.Q_add_
        logger.info(
            "DKF(%s) fitted on %d steps: bandwidth=%s q_bandwidth=%s",
            self.regressor, X.shape[0], self.bandwidth_, self.q_bandwidth_,
        )
        return self

    def _q_floor(self, resid: np.ndarray) -> np.ndarray:
        C = resid.T @ resid / len(resid)
        return self.q_reg * 0.5 * (C + C.T)

    def _fit_q_nw(self, Xs: np.ndarray, Zc: np.ndarray, resid: np.ndarray) -> None:
        outer = resid[:, :, None] * resid[:, None, :]
        common = {
            "max_samples": self.loo_max_samples,
            "random_state": self.random_state,
            "gap": self.loo_gap,
        }
        if self.q_bandwidth is not None:
            self.q_bandwidth_ = float(self.q_bandwidth)
        elif self.q_criterion == "nll":
            self.q_bandwidth_, _, _ = select_q_bandwidth_loo(
                Xs, resid, self._q_floor(resid), **common
            )
        else:
            self.q_bandwidth_, _, _ = select_q_bandwidth_filter(
                Xs, Zc, Zc - resid, self.A_, self.Gamma_, self.S_inv_, self._q_floor(resid),
                robust=self.robust, **common,
            )
        self.X_train_ = Xs
        self.R_train_ = outer

    def _fit_nw(self, Xs: np.ndarray, Zc: np.ndarray) -> np.ndarray:
        if self.bandwidth is None:
            self.bandwidth_, _, _ = select_bandwidth_loo(
                Xs, Zc, max_samples=self.loo_max_samples, random_state=self.random_state,
                gap=self.loo_gap,
            )
        else:
            self.bandwidth_ = float(self.bandwidth)
        d2 = squared_distances(Xs, Xs)
        resid = Zc - nw_loo_predictions(d2, Zc, self.bandwidth_, gap=self.loo_gap)
        del d2
        self.Z_train_ = Zc
        self._fit_q_nw(Xs, Zc, resid)
        return resid

    def _fit_mlp(self, X: np.ndarray, Xs: np.ndarray, Zc: np.ndarray) -> np.ndarray:
        from sklearn.model_selection import KFold, cross_val_predict
        from sklearn.neural_network import MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        mlp = make_pipeline(
            StandardScaler(),
            MLPRegressor(
                hidden_layer_sizes=tuple(self.hidden_layer_sizes),
                alpha=self.alpha,
                max_iter=1000,
                early_stopping=True,
                n_iter_no_change=20,
                random_state=self.random_state,
            ),
        )
        with warnings.catch_warnings():
            # early stopping ends most fits; a fit that hits max_iter is still usable
            warnings.simplefilter("ignore", ConvergenceWarning)
            oof = cross_val_predict(mlp, X, Zc, cv=KFold(self.cv))
            self.regressor_ = mlp.fit(X, Zc)
        resid = Zc - oof.reshape(Zc.shape)
        if self.q_model == "nw":
            self._fit_q_nw(Xs, Zc, resid)
        else:
            C = resid.T @ resid / len(resid)
            self.Q_const_ = 0.5 * (C + C.T)
        return resid

    def _fit_gp(self, X: np.ndarray, Zc: np.ndarray) -> np.ndarray:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        n = X.shape[0]
        rows = np.unique(np.linspace(0, n - 1, min(n, self.gp_max_samples)).astype(int))
        kernel = ConstantKernel(1.0) * RBF(length_scale=3.0) + WhiteKernel(noise_level=0.5)
        gp = make_pipeline(
            StandardScaler(),
            GaussianProcessRegressor(
                kernel=kernel, normalize_y=True, random_state=self.random_state
            ),
        )
        self.regressor_ = gp.fit(X[rows], Zc[rows])
        held = np.setdiff1d(np.arange(n), rows)
        if held.size < self.n_states_ + 1:
            held = rows
        resid = Zc[held] - self.regressor_.predict(X[held]).reshape(-1, self.n_states_)
        return resid

    # -- observation model ---------------------------------------------------------------------

    def _distances_to_train(self, Xs: np.ndarray) -> np.ndarray:
        """:func:`squared_distances` to the training points, their norms cached (online speed)."""
        cache = self.__dict__.get("_train_sq")
        if cache is None or cache[0] is not self.X_train_:
            cache = (self.X_train_, (self.X_train_**2).sum(axis=1)[None, :])
            self._train_sq = cache
        d2 = (Xs**2).sum(axis=1)[:, None] + cache[1] - 2.0 * (Xs @ self.X_train_.T)
        return np.maximum(d2, 0.0)

    def _f_Q_numpy(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, d = X.shape[0], self.n_states_
        if self.regressor == "gp":
            mean, std = self.regressor_.predict(X, return_std=True)
            f = np.asarray(mean).reshape(n, d)
            var = np.asarray(std).reshape(n, d) ** 2
            Q = np.zeros((n, d, d))
            Q[:, np.arange(d), np.arange(d)] = var
            return f, Q + self.Q_add_
        Xs = (X - self.x_mean_) / self.x_scale_
        if self.regressor == "nw":
            d2 = self._distances_to_train(Xs)
            W = _kernel_weights(d2, self.bandwidth_)
            f = (W @ self.Z_train_) / W.sum(axis=1, keepdims=True)
        else:
            d2 = None
            f = np.asarray(self.regressor_.predict(X)).reshape(n, d)
        if self.Q_const_ is not None:
            return f, np.broadcast_to(self.Q_const_, (n, d, d)).copy()
        if d2 is None:
            d2 = self._distances_to_train(Xs)
        Wq = _kernel_weights(d2, self.q_bandwidth_)
        Q = (Wq @ self.R_train_.reshape(len(self.R_train_), -1)) / Wq.sum(axis=1, keepdims=True)
        return f, Q.reshape(n, d, d) + self.Q_add_

    def _f_Q_onnx(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, Q = self.onnx_session_.run(None, {"x": np.ascontiguousarray(X, dtype=np.float64)})
        return f, Q

    def predict_f_Q(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The discriminative observation model at each row of ``X``.

        Parameters
        ----------
        X : array-like, shape (n_steps, n_features)

        Returns
        -------
        f : ndarray, shape (n_steps, n_states)
            ``E[z | x]`` in centred coordinates (add ``z_mean_`` for state units).
        Q : ndarray, shape (n_steps, n_states, n_states)
            ``Cov[z | x]``.
        """
        self._check_fitted()
        X = _check_sequence(X, "X", self.n_features_in_)
        if getattr(self, "onnx_session_", None) is not None:
            return self._f_Q_onnx(X)
        if self.regressor_ is None and self.X_train_ is None:
            raise DecoderError(
                "this DKF has no observation model (rebuilt from a dict): call use_onnx(...)"
            )
        return self._f_Q_numpy(X)

    # -- filtering -----------------------------------------------------------------------------

    def _update(self, mu: np.ndarray, Sigma: np.ndarray, x: np.ndarray):
        f, Q = self.predict_f_Q(x[None, :])
        mu, Sigma, fell_back = dkf_update(
            mu, Sigma, f[0], Q[0], self.A_, self.Gamma_, self.S_inv_, self.robust
        )
        self.n_fallbacks_ += int(fell_back)
        return mu, Sigma

    def filter_from(
        self, f: np.ndarray, Q: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the DKF recursion over precomputed ``f`` and ``Q`` from the stationary prior.

        Parameters
        ----------
        f : ndarray, shape (n_steps, n_states)
        Q : ndarray, shape (n_steps, n_states, n_states)

        Returns
        -------
        Z : ndarray, shape (n_steps, n_states)
            Filtered means in state units.
        fell_back : ndarray of bool, shape (n_steps,)
        """
        self._check_fitted()
        mu, Sigma = self._initial_state()
        out = np.empty((f.shape[0], self.n_states_))
        flags = np.zeros(f.shape[0], dtype=bool)
        for t in range(f.shape[0]):
            mu, Sigma, flags[t] = dkf_update(
                mu, Sigma, f[t], Q[t], self.A_, self.Gamma_, self.S_inv_, self.robust
            )
            out[t] = mu
        return out + self.z_mean_, flags

    def predict(self, X: Any) -> np.ndarray:
        """Filter a whole sequence from the stationary prior (the online state is untouched).

        ``f`` and ``Q`` are computed in one batch, then the recursion runs step by step; the result
        equals ``reset()`` followed by ``step(x)`` for each row.

        Parameters
        ----------
        X : array-like, shape (n_steps, n_features)

        Returns
        -------
        Z : ndarray, shape (n_steps, n_states)
        """
        f, Q = self.predict_f_Q(X)
        return self.filter_from(f, Q)[0]

    # -- ONNX and serialisation ----------------------------------------------------------------

    def to_onnx(self) -> Any:
        """ONNX model ``x (n, n_features) float64 -> f (n, n_states), Q (n, n_states, n_states)``.

        NW: hand-built graph (:mod:`decoders.nw_onnx`). MLP: skl2onnx export of the fitted
        scaler+MLP pipeline for ``f``, with an NW (or constant) ``Q`` branch added to the same
        graph. GP: not supported (raises :class:`DecoderError`).

        Returns
        -------
        model : onnx.ModelProto
        """
        import onnx

        from neurodeck.decoders import nw_onnx

        self._check_fitted()
        if self.regressor == "gp":
            raise DecoderError("to_onnx supports regressor='nw' and 'mlp', not 'gp'")
        if self.regressor_ is None and self.X_train_ is None:
            raise DecoderError("this DKF has no observation model to export (rebuilt from a dict)")
        q_kwargs: dict[str, Any] = (
            {"Q_const": self.Q_const_}
            if self.Q_const_ is not None
            else {"R_train": self.R_train_, "q_bandwidth": self.q_bandwidth_, "Q_add": self.Q_add_}
        )
        if self.regressor == "nw":
            return nw_onnx.make_nw_model(
                self.X_train_, self.x_mean_, self.x_scale_,
                Y_train=self.Z_train_, bandwidth=self.bandwidth_, **q_kwargs,
            )
        from onnx import helper
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType

        model = convert_sklearn(
            self.regressor_,
            initial_types=[(nw_onnx.INPUT_NAME, DoubleTensorType([None, self.n_features_in_]))],
            target_opset={"": nw_onnx.OPSET},
        )
        graph = model.graph
        f_out = graph.output[0].name
        x_train = self.X_train_ if self.X_train_ is not None else np.zeros((1, self.n_features_in_))
        nodes, inits, outputs = nw_onnx.nw_nodes(
            x_train, self.x_mean_, self.x_scale_, prefix="dkfq_", **q_kwargs
        )
        graph.node.extend(nodes)
        graph.node.append(helper.make_node("Reshape", [f_out, "dkfq_f_shape"], [nw_onnx.F_NAME]))
        graph.initializer.extend(inits)
        graph.initializer.append(
            onnx.numpy_helper.from_array(
                np.array([-1, self.n_states_], dtype=np.int64), name="dkfq_f_shape"
            )
        )
        del graph.output[:]
        graph.output.extend(
            [
                helper.make_tensor_value_info(
                    nw_onnx.F_NAME, onnx.TensorProto.DOUBLE, [None, self.n_states_]
                ),
                *outputs,
            ]
        )
        onnx.checker.check_model(model)
        return model

    def use_onnx(self, session: Any, warmup: int = 3) -> DiscriminativeKalmanFilter:
        """Take ``f`` and ``Q`` from an onnxruntime session from now on (``None``: back to numpy).

        Parameters
        ----------
        session : onnxruntime.InferenceSession, bytes, str, path or onnx.ModelProto or None
            A session is used as is (create it once); anything else is loaded into a new
            single-threaded CPU session.
        warmup : int
            Dummy runs done here so the first real step is not slow.

        Returns
        -------
        self
        """
        self._check_fitted()
        if session is None:
            self.onnx_session_ = None
            return self
        import onnxruntime as ort

        if not isinstance(session, ort.InferenceSession):
            if hasattr(session, "SerializeToString"):
                session = session.SerializeToString()
            elif not isinstance(session, bytes | bytearray):
                session = str(session)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            session = ort.InferenceSession(
                session, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        ins = [i.name for i in session.get_inputs()]
        outs = [o.name for o in session.get_outputs()]
        if ins != ["x"] or outs[:2] != ["f", "Q"]:
            raise ModelBundleError(
                f"ONNX model must have input ['x'] and outputs ['f', 'Q'], got inputs {ins}, "
                f"outputs {outs}"
            )
        dummy = np.zeros((1, self.n_features_in_))
        for _ in range(max(int(warmup), 1)):
            f, Q = session.run(None, {"x": dummy})[:2]
        if f.shape != (1, self.n_states_) or Q.shape != (1, self.n_states_, self.n_states_):
            raise ModelBundleError(
                f"ONNX model outputs f {f.shape}, Q {Q.shape}; expected (1, {self.n_states_}) and "
                f"(1, {self.n_states_}, {self.n_states_})"
            )
        self.onnx_session_ = session
        return self

    def to_dict(self) -> dict[str, Any]:
        """The filter's parameters and small matrices as a JSON-able dict (no training data).

        Together with :meth:`to_onnx` this is the model bundle: ``from_dict(d).use_onnx(model)``
        gives a filter whose ``step``/``predict`` equal this one's.
        """
        self._check_fitted()

        def arr(a: np.ndarray | None) -> list | None:
            return None if a is None else np.asarray(a, dtype=np.float64).tolist()

        return {
            "kind": "DiscriminativeKalmanFilter",
            "format_version": FORMAT_VERSION,
            "params": {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()
            },
            "n_features": int(self.n_features_in_),
            "n_states": int(self.n_states_),
            "A": arr(self.A_),
            "Gamma": arr(self.Gamma_),
            "S": arr(self.S_),
            "z_mean": arr(self.z_mean_),
            "x_mean": arr(self.x_mean_),
            "x_scale": arr(self.x_scale_),
            "Q_add": arr(self.Q_add_),
            "bandwidth": self.bandwidth_,
            "q_bandwidth": self.q_bandwidth_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> DiscriminativeKalmanFilter:
        """Rebuild a filter from :meth:`to_dict`; call :meth:`use_onnx` before filtering."""
        try:
            if state.get("kind") != "DiscriminativeKalmanFilter":
                raise ModelBundleError(f"not a DKF dict: kind={state.get('kind')!r}")
            if state.get("format_version") != FORMAT_VERSION:
                raise ModelBundleError(
                    f"unsupported DKF format_version {state.get('format_version')!r}, "
                    f"expected {FORMAT_VERSION}"
                )
            params = dict(state["params"])
            if isinstance(params.get("hidden_layer_sizes"), list):
                params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
            dkf = cls(**params)
            d = int(state["n_states"])
            dkf.n_features_in_ = int(state["n_features"])
            dkf.n_states_ = d
            mats = {}
            for key, shape in (("A", (d, d)), ("Gamma", (d, d)), ("S", (d, d)), ("z_mean", (d,))):
                mats[key] = np.asarray(state[key], dtype=np.float64)
                if mats[key].shape != shape or not np.all(np.isfinite(mats[key])):
                    raise ModelBundleError(
                        f"DKF dict entry {key!r} must be finite with shape {shape}, "
                        f"got {mats[key].shape}"
                    )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelBundleError):
                raise
            raise ModelBundleError(f"malformed DKF dict: {exc!r}") from exc
        dkf.A_, dkf.Gamma_, dkf.S_, dkf.z_mean_ = mats["A"], mats["Gamma"], mats["S"], mats["z_mean"]
        dkf.S_inv_ = _sym_pd_inv(dkf.S_, "stationary covariance S")
        dkf.x_mean_ = np.asarray(state.get("x_mean"), dtype=np.float64)
        dkf.x_scale_ = np.asarray(state.get("x_scale"), dtype=np.float64)
        dkf.Q_add_ = np.asarray(state.get("Q_add"), dtype=np.float64)
        dkf.bandwidth_ = state.get("bandwidth")
        dkf.q_bandwidth_ = state.get("q_bandwidth")
        dkf.regressor_ = None
        dkf.X_train_ = dkf.Z_train_ = dkf.R_train_ = dkf.Q_const_ = None
        dkf.onnx_session_ = None
        dkf.n_fallbacks_ = 0
        return dkf
