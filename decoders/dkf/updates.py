"""DKF and Kalman filter core: input checks, the linear-Gaussian state model and the update steps.

Pure functions over small matrices (``n_states`` x ``n_states``); see :mod:`neurodeck.decoders.dkf`
for the model and the paper.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.linalg import solve_discrete_lyapunov

from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)

__all__ = ["fit_state_model", "stationary_covariance", "dkf_update", "kalman_update"]

MIN_STEPS = 10


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


def dkf_filter_batch(
    f: np.ndarray,
    Q: np.ndarray,
    A: np.ndarray,
    Gamma: np.ndarray,
    S_inv: np.ndarray,
    robust: bool = False,
) -> np.ndarray:
    """Run ``K`` DKF recursions side by side from the stationary prior (:func:`dkf_update`).

    One Python loop over time for all ``K`` candidates (bandwidths, ``Q`` scales) instead of
    ``K`` loops: what the cross-validations of :mod:`~neurodeck.decoders.dkf.regression` need.

    Parameters
    ----------
    f : ndarray, shape (K, n_steps, n_states)
    Q : ndarray, shape (K, n_steps, n_states, n_states)
    A, Gamma, S_inv : ndarray, shape (n_states, n_states)
    robust : bool

    Returns
    -------
    mu : ndarray, shape (K, n_steps, n_states)
        Filtered means (centred coordinates).
    """
    K, T, d = f.shape
    S = np.linalg.inv(S_inv)
    mu = np.zeros((K, d))
    Sigma = np.broadcast_to(S, (K, d, d)).copy()
    Q_inv = np.linalg.inv(Q)
    D = Q_inv - S_inv
    ok = np.linalg.eigvalsh(0.5 * (D + np.swapaxes(D, -1, -2)))[..., 0] > 0
    if robust:
        ok[:] = False
    obs_prec = np.where(ok[..., None, None], D, Q_inv)  # (K, T, d, d)
    obs_info = np.einsum("ktij,ktj->kti", Q_inv, f)
    out = np.empty((K, T, d))
    for t in range(T):
        nu = mu @ A.T
        M = A @ Sigma @ A.T + Gamma
        M_inv = np.linalg.inv(M)
        Sigma = np.linalg.inv(M_inv + obs_prec[:, t])
        Sigma = 0.5 * (Sigma + np.swapaxes(Sigma, -1, -2))
        mu = np.einsum("kij,kj->ki", Sigma,
                       np.einsum("kij,kj->ki", M_inv, nu) + obs_info[:, t])
        out[:, t] = mu
    return out


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



def _sym_pd_inv(M: np.ndarray, name: str) -> np.ndarray:
    if not _is_pd(M):
        raise DecoderError(f"{name} is not positive definite: eigenvalues {np.linalg.eigvalsh(M)}")
    inv = np.linalg.inv(M)
    return 0.5 * (inv + inv.T)

