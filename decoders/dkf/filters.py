"""The estimators: :class:`KalmanFilter` and :class:`DiscriminativeKalmanFilter`.

scikit-learn style (``fit`` learns the attributes ending in ``_``); ``predict`` filters a whole
sequence, ``reset``/``step`` drive the online filter. The math is in
:mod:`~neurodeck.decoders.dkf.updates` and :mod:`~neurodeck.decoders.dkf.regression`; ONNX export and
the JSON form are in :mod:`~neurodeck.decoders.dkf.export`.
"""
from __future__ import annotations

import logging
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from neurodeck.decoders.dkf.regression import (
    KernelAverage,
    blocked_folds,
    cv_filter_scores,
    input_map,
    kernel_logits,
    nw_loo_fit,
    oof_filter_scores,
    ridge_feature_map,
    ridge_projection,
    select_bandwidth_loo,
    select_q_bandwidth_filter,
    select_q_bandwidth_loo,
)
from neurodeck.decoders.dkf.updates import (
    _check_fit_input,
    _check_sequence,
    _check_x_row,
    _sym_pd_inv,
    dkf_update,
    fit_state_model,
    kalman_update,
    stationary_covariance,
)
from neurodeck.decoders.errors import DecoderError, ModelBundleError

logger = logging.getLogger(__name__)

__all__ = ["KalmanFilter", "DiscriminativeKalmanFilter"]

_REGRESSORS = ("nw", "mlp", "gp")
_PROJECTIONS = ("auto", "none", "ridge")
#: Scales of ``Q`` tried by the blocked cross-validation of the DKF (``q_scale=None``): powers of
#: two from 1/1024 (the filter returns ``f`` almost unchanged) to 4 (it smooths 4x more than the
#: learned ``Q`` says).
Q_SCALES = tuple(2.0 ** k for k in range(-10, 3))

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

    def predict_step(self) -> np.ndarray:
        """Advance the online filter one step without an observation (an invalid window).

        ``mu <- A mu``, ``Sigma <- A Sigma A^T + Gamma``.

        Returns
        -------
        z : ndarray, shape (n_states,)
            Predicted state (prior mean of this step).
        """
        self._check_fitted()
        if not hasattr(self, "mu_"):
            self.reset()
        self.mu_ = self.A_ @ self.mu_
        Sigma = self.A_ @ self.Sigma_ @ self.A_.T + self.Gamma_
        self.Sigma_ = 0.5 * (Sigma + Sigma.T)
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
        # features that sum to a constant (a classifier's class probabilities) have a residual
        # covariance, and an innovation covariance, that are singular: a floor of 1e-9 of the
        # mean residual variance keeps every update solvable without changing the others
        floor = 1e-9 * max(float(np.trace(R)) / len(R), np.finfo(float).tiny)
        self.R_ = 0.5 * (R + R.T) + floor * np.eye(len(R))
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
    projection : {"auto", "none", "ridge"}
        Input space of the NW kernels: of ``f`` and ``Q`` (``regressor="nw"``) or of the MLP's NW
        ``Q`` (the MLP's ``f`` and the GP use the standardised features). ``"none"``: the
        standardised features. ``"ridge"``: their ridge projection on the state space
        (:func:`ridge_projection`, penalty by blocked CV), which suits many noisy, roughly linear
        features. ``"auto"``: both are fitted and the one with the lower blocked cross-validated
        *filtered* error (:func:`cv_filter_scores` for NW; :func:`oof_filter_scores` of the MLP's
        out-of-fold ``f`` and leave-out ``Q``) is kept.
    q_scale : float or None
        Multiplies ``Q(x)`` (every regressor). ``None``: chosen among :data:`Q_SCALES` (1/1024 ...
        4) by the same blocked cross-validation of the filtered error (1 when the folds cannot
        be formed); for the GP, each fold's ``f`` and variance come from the GP refitted without
        that block (its fitted kernel kept).
    cv_folds : int
        Folds of that blocked cross-validation (contiguous blocks, ``loo_gap`` steps apart).
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
    observation_ : callable or None
        ``X -> (f, Q)`` set by :meth:`use_onnx` or :meth:`use_numpy_twin`; ``None``: the fitted
        numpy model.
    n_fallbacks_ : int
        Online steps so far where ``Q^-1 - S^-1`` was not positive definite.
    n_features_in_, n_states_ : int
    """

    def __init__(
        self,
        regressor: str = "nw",
        robust: bool = False,
        projection: str = "auto",
        q_scale: float | None = None,
        cv_folds: int = 5,
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
        self.projection = projection
        self.q_scale = q_scale
        self.cv_folds = cv_folds
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
        if self.projection not in _PROJECTIONS:
            raise DecoderError(
                f"projection must be one of {_PROJECTIONS}, got {self.projection!r}")
        if self.q_model not in ("nw", "constant"):
            raise DecoderError(f"q_model must be 'nw' or 'constant', got {self.q_model!r}")
        if self.q_criterion not in ("filter", "nll"):
            raise DecoderError(
                f"q_criterion must be 'filter' or 'nll', got {self.q_criterion!r}"
            )
        for name in ("bandwidth", "q_bandwidth", "q_scale"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, Real) and np.isfinite(v) and v > 0):
                raise DecoderError(f"{name} must be None or a finite number > 0, got {v!r}")
        if not (isinstance(self.q_reg, Real) and self.q_reg > 0 and np.isfinite(self.q_reg)):
            raise DecoderError(f"q_reg must be a finite number > 0, got {self.q_reg!r}")
        for name, lo in (("loo_max_samples", 10), ("loo_gap", 0), ("cv", 2), ("gp_max_samples", 10),
                         ("cv_folds", 2)):
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
        for attr in ("mu_", "Sigma_", "onnx_session_", "observation_", "_kernel_cache"):
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
        self.onnx_session_ = self.observation_ = None
        self.X_train_ = None
        self.Z_train_ = None
        self.R_train_ = None
        self.Q_const_ = None
        self.projection_ = None
        self.q_scale_ = 1.0
        self.cv_ = None
        if self.regressor == "nw":
            resid = self._fit_nw(Xs, Zc)
        elif self.regressor == "mlp":
            resid = self._fit_mlp(X, Xs, Zc)
        else:
            resid = self._fit_gp(X, Zc)
        self.Q_add_ = self.q_scale_ * self._q_floor(resid)
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

    def _nw_candidate(self, Phi: np.ndarray, Zc: np.ndarray) -> dict[str, Any]:
        """Bandwidths of ``f`` and ``Q`` and the leave-out residuals with NW input ``Phi``."""
        common = {"max_samples": self.loo_max_samples, "random_state": self.random_state,
                  "gap": self.loo_gap}
        if self.bandwidth is None:
            h, _, _ = select_bandwidth_loo(Phi, Zc, **common)
        else:
            h = float(self.bandwidth)
        resid = Zc - nw_loo_fit(Phi, Zc, h, gap=self.loo_gap)
        hq = self._q_bandwidth_for(Phi, Zc, resid, self._q_floor(resid))
        return {"Phi": Phi, "bandwidth": h, "q_bandwidth": hq, "resid": resid}

    def _fit_nw(self, Xs: np.ndarray, Zc: np.ndarray) -> np.ndarray:
        """NW ``f`` and ``Q``; input space and ``Q`` scale by blocked CV of the filtered error."""
        n, gap = Xs.shape[0], self.loo_gap
        can_cv = n >= self.cv_folds * (2 * gap + 20)
        kinds = ["none", "ridge"] if self.projection == "auto" else [self.projection]
        if not can_cv and self.projection == "auto":
            kinds = ["none"]
        scales = self._scales()
        cands: dict[str, dict[str, Any]] = {}
        scores: dict[str, np.ndarray] = {}
        for kind in kinds:
            P = alpha = None
            if kind == "ridge":
                P, alpha, _ = ridge_projection(Xs, Zc, n_folds=self.cv_folds, gap=gap)
            cand = self._nw_candidate(Xs if P is None else Xs @ P, Zc)
            cand.update(projection=P, alpha=alpha)
            cands[kind] = cand
            if can_cv and (len(kinds) > 1 or scales.size > 1):
                scores[kind] = cv_filter_scores(
                    ridge_feature_map(Xs, Zc, alpha), Zc, cand["bandwidth"], cand["q_bandwidth"],
                    self.q_reg, self.A_, self.Gamma_, self.S_inv_, scales, robust=self.robust,
                    n_folds=self.cv_folds, gap=gap)
        kind = self._pick_cv(scores, scales, kinds[0],
                             ridge_alpha=cands.get("ridge", {}).get("alpha"))
        best = cands[kind]
        self.projection_ = best["projection"]
        self.bandwidth_, self.q_bandwidth_ = best["bandwidth"], best["q_bandwidth"]
        resid = best["resid"]
        self.X_train_ = best["Phi"]
        self.Z_train_ = Zc
        self.R_train_ = self.q_scale_ * (resid[:, :, None] * resid[:, None, :])
        return resid

    def _pick_cv(self, scores: dict[str, np.ndarray], scales: np.ndarray, default: str,
                 **info: Any) -> str:
        """Keep the (input space, ``Q`` scale) of lowest blocked-CV filtered error; set
        ``q_scale_`` and ``cv_`` and return the kind (``default`` and scale 1 without scores)."""
        if not scores:
            self.q_scale_ = 1.0 if self.q_scale is None else float(self.q_scale)
            return default
        kind, k = min(((kd, int(np.argmin(v))) for kd, v in scores.items()),
                      key=lambda t: scores[t[0]][t[1]])
        self.q_scale_ = float(scales[k])
        if scales.size > 1 and k in (0, scales.size - 1):
            logger.info("DKF Q scale %g is at the edge of the candidates %s", self.q_scale_,
                        scales.tolist())
        self.cv_ = {"q_scales": scales.tolist(), **info,
                    "nmse": {kd: [float(v) for v in sc] for kd, sc in scores.items()}}
        return kind

    def _scales(self) -> np.ndarray:
        return np.array(Q_SCALES if self.q_scale is None else (self.q_scale,), dtype=float)

    def _fit_mlp(self, X: np.ndarray, Xs: np.ndarray, Zc: np.ndarray) -> np.ndarray:
        """MLP ``f``; ``Q`` (NW on the standardised features or their ridge projection, or
        constant) and its scale chosen by blocked CV of the filter on out-of-fold ``f``, ``Q``."""
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
            oof = cross_val_predict(mlp, X, Zc, cv=KFold(self.cv))  # contiguous folds
            self.regressor_ = mlp.fit(X, Zc)
        resid = Zc - oof.reshape(Zc.shape)
        n, d = Zc.shape
        gap = self.loo_gap
        outer = resid[:, :, None] * resid[:, None, :]
        floor = self._q_floor(resid)
        can_cv = n >= self.cv * (2 * gap + 20)
        scales = self._scales()
        if self.q_model == "constant":
            C = resid.T @ resid / n
            options = {"constant": (None, None, None, 0.5 * (C + C.T))}
        else:
            kinds = ["none", "ridge"] if self.projection == "auto" else [self.projection]
            if not can_cv and self.projection == "auto":
                kinds = ["none"]
            options = {}
            for kind in kinds:
                P = None
                if kind == "ridge":
                    P, _, _ = ridge_projection(Xs, Zc, n_folds=self.cv_folds, gap=gap)
                Phi = Xs if P is None else Xs @ P
                hq = self._q_bandwidth_for(Phi, Zc, resid, floor)
                options[kind] = (P, Phi, hq, None)
        scores: dict[str, np.ndarray] = {}
        if can_cv and (len(options) > 1 or scales.size > 1):
            for kind, (_, Phi, hq, C) in options.items():
                Q = (np.broadcast_to(C, (n, d, d)) if Phi is None else nw_loo_fit(
                    Phi, outer.reshape(n, d * d), hq, gap=gap).reshape(n, d, d)) + floor
                scores[kind] = oof_filter_scores(oof.reshape(Zc.shape), Q, Zc, self.A_,
                                                 self.Gamma_, self.S_inv_, scales,
                                                 robust=self.robust, n_folds=self.cv)
        kind = self._pick_cv(scores, scales, next(iter(options)))
        P, Phi, hq, C = options[kind]
        if Phi is None:
            self.Q_const_ = self.q_scale_ * C
        else:
            self.projection_ = P
            self.q_bandwidth_ = hq
            self.X_train_ = Phi
            self.R_train_ = self.q_scale_ * outer
        return resid

    def _q_bandwidth_for(self, Phi: np.ndarray, Zc: np.ndarray, resid: np.ndarray,
                         floor: np.ndarray) -> float:
        """NW bandwidth of ``Q`` on input ``Phi`` (given, or by ``q_criterion``)."""
        common = {"max_samples": self.loo_max_samples, "random_state": self.random_state,
                  "gap": self.loo_gap}
        if self.q_bandwidth is not None:
            return float(self.q_bandwidth)
        if self.q_criterion == "nll":
            return select_q_bandwidth_loo(Phi, resid, floor, **common)[0]
        return select_q_bandwidth_filter(Phi, Zc, Zc - resid, self.A_, self.Gamma_, self.S_inv_,
                                         floor, robust=self.robust, **common)[0]

    def _fit_gp(self, X: np.ndarray, Zc: np.ndarray) -> np.ndarray:
        """GP ``f`` and predictive-variance ``Q`` on an evenly spaced subset; the scale of ``Q``
        by blocked CV of the filter (per fold the GP is refitted with the fitted kernel)."""
        from sklearn.base import clone
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        n, d = Zc.shape
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
        scales = self._scales()
        gap = self.loo_gap
        scores: dict[str, np.ndarray] = {}
        if scales.size > 1 and n >= self.cv_folds * (2 * gap + 20):
            fixed = clone(gp).set_params(gaussianprocessregressor__kernel=gp[-1].kernel_,
                                         gaussianprocessregressor__optimizer=None)
            f = np.empty((n, d))
            Q = np.zeros((n, d, d))
            for tr, te in blocked_folds(n, self.cv_folds, gap):
                sub = np.intersect1d(rows, tr)
                mean, std = fixed.fit(X[sub], Zc[sub]).predict(X[te], return_std=True)
                f[te] = np.asarray(mean).reshape(-1, d)
                Q[te[:, None], np.arange(d), np.arange(d)] = np.asarray(std).reshape(-1, d) ** 2
            scores["gp"] = oof_filter_scores(f, Q + self._q_floor(resid), Zc, self.A_,
                                             self.Gamma_, self.S_inv_, scales,
                                             robust=self.robust, n_folds=self.cv_folds)
        self._pick_cv(scores, scales, "gp")
        return resid

    # -- observation model ---------------------------------------------------------------------

    def _kernel(self, which: str) -> KernelAverage:
        """The folded NW kernel average of ``f`` or ``Q`` (cached: the online step reuses it)."""
        cache = self.__dict__.get("_kernel_cache")
        if cache is None or cache[0] is not self.X_train_:
            cache = (self.X_train_, {})
            self._kernel_cache = cache
        k = cache[1].get(which)
        if k is None:
            h = self.bandwidth_ if which == "f" else self.q_bandwidth_
            P = self.projection_
            pre = None
            if P is not None and P.shape[1] < P.shape[0]:  # project first: fewer products
                pre = input_map(self.x_mean_, self.x_scale_, P)
                W, b = kernel_logits(self.X_train_, np.zeros(P.shape[1]), np.ones(P.shape[1]), h)
            else:
                W, b = kernel_logits(self.X_train_, self.x_mean_, self.x_scale_, h, P)
            if which == "f":
                T = self.Z_train_
            else:
                T = (self.R_train_ + self.Q_add_[None]).reshape(len(self.R_train_), -1)
            k = cache[1][which] = KernelAverage(W, b, T, pre)
        return k

    def _f_Q_numpy(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, d = X.shape[0], self.n_states_
        if self.regressor == "gp":
            mean, std = self.regressor_.predict(X, return_std=True)
            f = np.asarray(mean).reshape(n, d)
            var = self.q_scale_ * np.asarray(std).reshape(n, d) ** 2
            Q = np.zeros((n, d, d))
            Q[:, np.arange(d), np.arange(d)] = var
            return f, Q + self.Q_add_
        if self.regressor == "nw":
            f = self._kernel("f")(X)
        else:
            f = np.asarray(self.regressor_.predict(X)).reshape(n, d)
        if self.Q_const_ is not None:
            return f, np.broadcast_to(self.Q_const_, (n, d, d)).copy()
        return f, self._kernel("Q")(X).reshape(n, d, d)

    def _f_Q(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``f``, ``Q`` of validated rows from the backend in use (ONNX, a twin, or numpy)."""
        obs = self.__dict__.get("observation_")
        if obs is not None:
            return obs(X)
        if self.regressor_ is None and self.X_train_ is None:
            raise DecoderError(
                "this DKF has no observation model (rebuilt from a dict): call use_onnx(...)"
            )
        return self._f_Q_numpy(X)

    @property
    def backend(self) -> str:
        """Where ``f`` and ``Q`` come from: ``"onnx"``, ``"numpy"`` (fitted model or twin)."""
        return "onnx" if self.__dict__.get("onnx_session_") is not None else "numpy"

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
        return self._f_Q(_check_sequence(X, "X", self.n_features_in_))

    # -- filtering -----------------------------------------------------------------------------

    def _update(self, mu: np.ndarray, Sigma: np.ndarray, x: np.ndarray):
        f, Q = self._f_Q(x[None, :])
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

    # -- ONNX and serialisation (neurodeck.decoders.dkf.export) ---------------------------------

    def to_onnx(self, dtype: str = "float32") -> Any:
        """ONNX model ``x (n, n_features) -> f (n, n_states), Q (n, n_states, n_states)``.

        See :func:`neurodeck.decoders.dkf.export.dkf_to_onnx` (``dtype``: NW kernel precision).
        """
        from neurodeck.decoders.dkf.export import dkf_to_onnx

        return dkf_to_onnx(self, dtype)

    def use_onnx(self, session: Any, warmup: int = 3) -> DiscriminativeKalmanFilter:
        """Take ``f`` and ``Q`` from an onnxruntime session from now on (``None``: back to numpy).

        Parameters
        ----------
        session : onnxruntime.InferenceSession, bytes, str, path or onnx.ModelProto or None
            A session is used as is (create it once); anything else is loaded into a new
            single-threaded CPU session (:func:`~neurodeck.decoders.dkf.export.make_session`).
        warmup : int
            Dummy runs done here so the first real step is not slow.

        Returns
        -------
        self
        """
        from neurodeck.decoders.dkf.export import check_session, make_session

        self._check_fitted()
        if session is None:
            self.onnx_session_ = self.observation_ = None
            return self
        session = make_session(session)
        check_session(session, self.n_features_in_, self.n_states_, warmup)
        self.onnx_session_ = session
        run = session.run

        def observation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return tuple(run(None, {"x": X})[:2])

        self.observation_ = observation
        return self

    def use_numpy_twin(self, model: Any) -> DiscriminativeKalmanFilter:
        """Run ``f`` and ``Q`` in numpy from a saved pure NW graph (no training data needed).

        Parameters
        ----------
        model : onnx.ModelProto
            A graph from :meth:`to_onnx` with ``regressor="nw"``.

        Returns
        -------
        self
        """
        from neurodeck.decoders.dkf.export import numpy_observation

        self._check_fitted()
        obs = numpy_observation(model)
        if obs is None:
            raise ModelBundleError("numpy twin needs a Nadaraya-Watson f and Q graph (regressor='nw')")
        f, Q = obs(np.zeros((1, self.n_features_in_)))
        if f.shape != (1, self.n_states_) or Q.shape != (1, self.n_states_, self.n_states_):
            raise ModelBundleError(
                f"NW graph outputs f {f.shape}, Q {Q.shape}; expected (1, {self.n_states_}) and "
                f"(1, {self.n_states_}, {self.n_states_})"
            )
        self.onnx_session_ = None
        self.observation_ = obs
        return self

    def to_dict(self) -> dict[str, Any]:
        """The filter's parameters and small matrices as a JSON-able dict (no training data).

        Together with :meth:`to_onnx` this is the model bundle: ``from_dict(d).use_onnx(model)``
        gives a filter whose ``step``/``predict`` equal this one's.
        """
        from neurodeck.decoders.dkf.export import dkf_to_dict

        return dkf_to_dict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> DiscriminativeKalmanFilter:
        """Rebuild a filter from :meth:`to_dict`; call :meth:`use_onnx` before filtering."""
        from neurodeck.decoders.dkf.export import dkf_from_dict

        return dkf_from_dict(cls, state)

