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

Modules: :mod:`.updates` (state model, update equations), :mod:`.regression`
(Nadaraya-Watson, bandwidth selection), :mod:`.filters` (the estimators), :mod:`.export` (ONNX
graph, sessions, JSON form), :mod:`.metrics`.

Online / ONNX path: :meth:`DiscriminativeKalmanFilter.to_onnx` returns an ONNX model
``x (n, n_features) float64 -> f (n, n_states), Q (n, n_states, n_states)`` (hand-built graph for
NW, skl2onnx MLP plus an NW or constant Q branch for the MLP); :meth:`to_dict` returns the small
matrices (A, Gamma, S, ...) as a JSON-able dict. :meth:`DiscriminativeKalmanFilter.from_dict`
plus :meth:`use_onnx` rebuild a working filter from those two files, without any pickle."""
from __future__ import annotations

from neurodeck.decoders.dkf.filters import DiscriminativeKalmanFilter, KalmanFilter
from neurodeck.decoders.dkf.metrics import velocity_metrics
from neurodeck.decoders.dkf.regression import (
    nadaraya_watson,
    nw_loo_predictions,
    select_bandwidth_loo,
    select_q_bandwidth_filter,
    select_q_bandwidth_loo,
    squared_distances,
)
from neurodeck.decoders.dkf.updates import (
    dkf_update,
    fit_state_model,
    kalman_update,
    stationary_covariance,
)

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
