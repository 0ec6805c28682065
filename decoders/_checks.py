"""Shared input validation for the decoders layer.

Every feature step and decoder validates its input with these helpers so that users get the same
clear :class:`~decoders.errors.DecoderError` (quoting the bad value and saying what was expected)
whatever step they hit first.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from neurodeck.decoders.errors import ChannelMismatchError, DecoderError

logger = logging.getLogger(__name__)

__all__ = [
    "check_epochs",
    "check_features_3d",
    "check_finite",
    "check_labels",
    "check_sfreq",
    "check_band",
    "check_n_channels",
]


def _describe_nonfinite(X: np.ndarray, axis_names: Sequence[str]) -> str:
    """Say how many NaN/Inf values ``X`` holds and where the first few are."""
    bad = ~np.isfinite(X)
    n_nan = int(np.isnan(X).sum())
    n_inf = int(bad.sum()) - n_nan
    idx = np.argwhere(bad)[:3]
    where = "; ".join(
        ", ".join(f"{name} {int(i)}" for name, i in zip(axis_names, pos)) for pos in idx
    )
    more = " ..." if bad.sum() > 3 else ""
    return f"{n_nan} NaN and {n_inf} Inf value(s) (first at: {where}{more})"


def check_finite(X: np.ndarray, what: str, axis_names: Sequence[str]) -> None:
    """Raise :class:`DecoderError` if ``X`` has NaN/Inf, saying how many and where.

    Parameters
    ----------
    X : ndarray
        Array to check.
    what : str
        Name of the array in the message (e.g. ``"X"``).
    axis_names : sequence of str
        One name per axis of ``X`` (e.g. ``("epoch", "channel", "sample")``).
    """
    if not np.all(np.isfinite(X)):
        raise DecoderError(
            f"{what} contains {_describe_nonfinite(X, axis_names)}; expected finite values "
            "(interpolate or drop bad channels/epochs before decoding)"
        )


def _as_float_array(X: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists etc.
        raise DecoderError(f"{what} could not be converted to an array: {exc}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise DecoderError(f"{what} has dtype {arr.dtype!s}; expected a real numeric array")
    if np.iscomplexobj(arr):
        raise DecoderError(f"{what} is complex; expected a real numeric array")
    return np.asarray(arr, dtype=np.float64)


def check_epochs(X: Any, *, what: str = "X", min_times: int = 1) -> np.ndarray:
    """Validate epoched EEG and return it as float64.

    Parameters
    ----------
    X : array-like, shape (n_epochs, n_channels, n_times)
        Epochs. A single window ``(n_channels, n_times)`` is rejected with a hint to add an
        epoch axis (``X[np.newaxis]``).
    what : str
        Name used in error messages.
    min_times : int
        Minimum number of samples per epoch.

    Returns
    -------
    X : ndarray of float64, shape (n_epochs, n_channels, n_times)

    Raises
    ------
    DecoderError
        Wrong number of dimensions, an empty axis, too few samples, or NaN/Inf values.
    """
    arr = _as_float_array(X, what)
    if arr.ndim != 3:
        hint = " (a single window? use X[np.newaxis])" if arr.ndim == 2 else ""
        raise DecoderError(
            f"{what} has shape {arr.shape} ({arr.ndim}-D); expected 3-D "
            f"(n_epochs, n_channels, n_times){hint}"
        )
    if 0 in arr.shape:
        raise DecoderError(
            f"{what} is empty, shape {arr.shape}; expected at least one epoch, one channel and "
            "one sample"
        )
    if arr.shape[2] < min_times:
        raise DecoderError(
            f"{what} has {arr.shape[2]} samples per epoch; expected at least {min_times}"
        )
    check_finite(arr, what, ("epoch", "channel", "sample"))
    return arr


def check_features_3d(F: Any, *, what: str = "F") -> np.ndarray:
    """Validate a feature cube and return it as float64.

    Parameters
    ----------
    F : array-like, shape (n_epochs, n_channels, n_freqs)

    Returns
    -------
    F : ndarray of float64, shape (n_epochs, n_channels, n_freqs)
    """
    arr = _as_float_array(F, what)
    if arr.ndim != 3:
        raise DecoderError(
            f"{what} has shape {arr.shape} ({arr.ndim}-D); expected 3-D "
            "(n_epochs, n_channels, n_freqs) as produced by PSD or NodeStrength"
        )
    if 0 in arr.shape:
        raise DecoderError(f"{what} is empty, shape {arr.shape}")
    check_finite(arr, what, ("epoch", "channel", "frequency"))
    return arr


def check_labels(y: Any, n: int, *, min_classes: int = 2) -> np.ndarray:
    """Validate class labels.

    Parameters
    ----------
    y : array-like, shape (n_epochs,)
        One label per epoch.
    n : int
        Expected number of labels (``n_epochs`` of ``X``).
    min_classes : int
        Minimum number of distinct classes.

    Returns
    -------
    y : ndarray, shape (n_epochs,)
    """
    if y is None:
        raise DecoderError("y is None; expected one class label per epoch")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise DecoderError(f"y has shape {arr.shape}; expected 1-D (n_epochs,)")
    if arr.shape[0] != n:
        raise DecoderError(f"y has {arr.shape[0]} labels but X has {n} epochs; expected equal")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DecoderError(f"y contains {int((~np.isfinite(arr)).sum())} NaN/Inf label(s)")
    classes = np.unique(arr)
    if classes.size < min_classes:
        raise DecoderError(
            f"y has {classes.size} class(es) {classes.tolist()}; expected at least {min_classes}"
        )
    return arr


def check_sfreq(sfreq: Any) -> float:
    """Validate a sampling rate in Hz and return it as float."""
    try:
        value = float(sfreq)
    except (TypeError, ValueError) as exc:
        raise DecoderError(f"sfreq={sfreq!r}; expected a positive number (Hz)") from exc
    if not np.isfinite(value) or value <= 0:
        raise DecoderError(f"sfreq={sfreq!r}; expected a positive number (Hz)")
    return value


def check_band(fmin: Any, fmax: Any, sfreq: float) -> tuple[float, float]:
    """Validate a frequency band ``0 <= fmin < fmax <= sfreq / 2`` and return it as floats."""
    try:
        lo, hi = float(fmin), float(fmax)
    except (TypeError, ValueError) as exc:
        raise DecoderError(f"band ({fmin!r}, {fmax!r}); expected two numbers in Hz") from exc
    nyq = sfreq / 2.0
    if not (0.0 <= lo < hi <= nyq):
        raise DecoderError(
            f"band fmin={fmin!r}, fmax={fmax!r} Hz; expected 0 <= fmin < fmax <= Nyquist "
            f"({nyq:g} Hz at sfreq={sfreq:g})"
        )
    return lo, hi


def check_n_channels(X: np.ndarray, n_expected: int, what: str = "X") -> None:
    """Raise :class:`ChannelMismatchError` unless ``X`` has ``n_expected`` channels (axis 1)."""
    if X.shape[1] != n_expected:
        raise ChannelMismatchError(
            f"{what} has {X.shape[1]} channels but the estimator was fitted on {n_expected}; "
            "expected the same channels in the same order"
        )
