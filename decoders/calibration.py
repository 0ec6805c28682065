"""Amplitude statistics a model bundle keeps of its training data, to recognise a wrong unit live.

A stream that declares no (readable) unit is assumed to be in the model's training unit. Whether it
really is can be told from its amplitude: EEG differs between people, caps and amplifiers by a few
times, units by powers of 1000. :func:`amplitude_scale` is robust to DC offsets and slow drifts
(first differences) and to a few bad channels (median over channels).
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

logger = logging.getLogger(__name__)

#: How :func:`amplitude_scale` is computed (stored next to the value in a bundle's sidecar).
STATISTIC = "median over channels of the mean |first difference|, median over windows"


def _median(v: np.ndarray) -> float:
    """``np.median`` of a finite 1-d array (the mean of the two middle values when even)."""
    n = len(v)
    h = n // 2
    if n % 2:
        return float(np.partition(v, h)[h])
    part = np.partition(v, (h - 1, h))
    return float((part[h - 1] + part[h]) / 2.0)


def amplitude_scale(X: np.ndarray) -> float:
    """Typical sample-to-sample amplitude of windows, in their unit.

    Parameters
    ----------
    X : ndarray, shape (n_windows, n_channels, n_times) or (n_channels, n_times)
        Raw windows (NaN/Inf samples are ignored).

    Returns
    -------
    scale : float
        ``median_windows(median_channels(mean_t |x[t+1] - x[t]|))``; NaN if nothing is finite.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        if X.shape[-1] >= 2:  # one window (the online engine, every hop): one median
            d = X[:, 1:] - X[:, :-1]  # np.diff, np.mean and np.median, without their wrappers
            np.abs(d, out=d)  # (the same numbers: ~4x faster on the engine's 64 x 64 tail)
            per_channel = d.sum(axis=-1) / d.shape[-1]
            if np.isfinite(per_channel).all():
                return _median(per_channel)
        X = X[None]
    if X.ndim != 3 or X.shape[-1] < 2:
        raise ValueError(f"X must be (n_windows, n_channels, n_times >= 2), got shape {X.shape}")
    d = np.abs(np.diff(X, axis=-1))
    per_channel = d.mean(axis=-1)  # (n_windows, n_channels)
    if np.isfinite(per_channel).all():  # the usual case: no NaN/Inf anywhere
        return float(np.median(np.median(per_channel, axis=1)))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN channels or windows
        d[~np.isfinite(d)] = np.nan
        per_channel = np.nanmean(d, axis=-1)
        return float(np.nanmedian(np.nanmedian(per_channel, axis=1)))
