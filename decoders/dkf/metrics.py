"""Decoding quality of continuous state sequences (velocity correlation, nRMSE, angle error)."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)

__all__ = ["velocity_metrics"]



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


