"""Feature selection on channel x frequency maps: signed R² and explicit user selections.

:func:`r2_map` scores every (channel, frequency) feature of a spectral feature cube (PSD or node
strength) by the signed squared point-biserial correlation with the class; :class:`FeatureSelector`
keeps the user's selection (``"C4:13-16"``, see :func:`parse_selection`) or the top-N features by
``|R²|`` (HappyFeat's "best electrodes at their best frequencies").
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurodeck.decoders._checks import check_features_3d, check_labels
from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)

__all__ = ["FeatureSelector", "parse_selection", "r2_map", "top_features"]


def r2_map(F: np.ndarray, y: Any, *, positive: Any = None) -> np.ndarray:
    """Signed R² (squared point-biserial correlation) of each feature with a binary class.

    ``R²[c, f] = sign(m1 - m0) * r[c, f]**2`` where ``r`` is the Pearson correlation between
    ``F[:, c, f]`` and the indicator ``y == class1``, ``m1``/``m0`` the class means. ``class1`` is
    the larger of the two labels (``np.unique(y)[1]``), or ``positive`` if given. A positive value
    means the feature is larger for ``class1``. Constant features get 0.

    Parameters
    ----------
    F : ndarray, shape (n_epochs, n_channels, n_freqs)
        Features (e.g. PSD in dB).
    y : array-like, shape (n_epochs,)
        Labels; exactly two classes, unless ``positive`` is given.
    positive : label or None
        With more than two classes, score ``positive`` against the rest (one-vs-rest). Without
        it, more than two classes raise :class:`DecoderError`.

    Returns
    -------
    r2 : ndarray, shape (n_channels, n_freqs)
        Values in [-1, 1].
    """
    F = check_features_3d(F)
    y = check_labels(y, F.shape[0])
    classes = np.unique(y)
    if positive is None:
        if classes.size != 2:
            raise DecoderError(
                f"r2_map needs exactly 2 classes, got {classes.size}: {classes.tolist()}; pass "
                "positive=<label> for a one-vs-rest map"
            )
        target = y == classes[1]
    else:
        if positive not in set(classes.tolist()):
            raise DecoderError(f"positive={positive!r} is not a label of y {classes.tolist()}")
        target = y == positive
    t = target.astype(float)
    tc = t - t.mean()
    Fc = F - F.mean(axis=0)
    cov = np.einsum("e,ecf->cf", tc, Fc)
    sf = np.sqrt(np.einsum("ecf,ecf->cf", Fc, Fc))
    st = np.sqrt(tc @ tc)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(sf > 0, cov / (np.where(sf > 0, sf, 1.0) * st), 0.0)
    # sign(r) == sign(m1 - m0)
    return np.sign(r) * r**2


def top_features(r2: np.ndarray, n_features: int) -> list[tuple[int, int]]:
    """The ``n_features`` (channel, frequency) indices with the largest ``|r2|``, best first.

    Parameters
    ----------
    r2 : ndarray, shape (n_channels, n_freqs)
    n_features : int

    Returns
    -------
    selected : list of (int, int)
        Ties are broken by channel then frequency index (stable).
    """
    r2 = np.asarray(r2)
    order = np.argsort(-np.abs(r2).ravel(), kind="stable")[: int(n_features)]
    rows, cols = np.unravel_index(order, r2.shape)
    return [(int(c), int(f)) for c, f in zip(rows, cols)]


def _norm_name(name: str) -> str:
    return str(name).strip().rstrip(".").casefold()


def _match_channel(token: str, ch_names: Sequence[str], item: str) -> int:
    names = [str(c) for c in ch_names]
    if token in names:
        return names.index(token)
    norm = [_norm_name(c) for c in names]
    key = _norm_name(token)
    if key in norm:
        return norm.index(key)
    raise DecoderError(
        f"unknown channel {token!r} in selection item {item!r}; valid channels: "
        f"{', '.join(names)}"
    )


_NUM = r"[0-9]+(?:\.[0-9]*)?"
_FREQ_RE = re.compile(rf"^\s*({_NUM})\s*(?:-\s*({_NUM})\s*)?$")


def _describe_freqs(freqs: np.ndarray | None, n_freqs: int) -> str:
    if freqs is None:
        return f"frequency indices 0..{n_freqs - 1}"
    if freqs.size > 1:
        step = np.diff(freqs)
        if np.allclose(step, step[0]):
            return f"{freqs[0]:g}..{freqs[-1]:g} Hz in steps of {step[0]:g} Hz"
    return "frequencies " + ", ".join(f"{f:g}" for f in freqs) + " Hz"


def _match_freqs(
    token: str, freqs: np.ndarray | None, n_freqs: int, item: str
) -> list[int]:
    m = _FREQ_RE.match(token)
    if not m:
        raise DecoderError(
            f"bad frequency {token!r} in selection item {item!r}; expected a number like '13' "
            "or a range like '13-16'"
        )
    lo = float(m.group(1))
    hi = float(m.group(2)) if m.group(2) is not None else None
    grid = np.arange(n_freqs, dtype=float) if freqs is None else freqs
    step = float(np.min(np.diff(grid))) if grid.size > 1 else 1.0
    tol = 1e-6 * max(1.0, abs(lo))
    if hi is None:
        i = int(np.argmin(np.abs(grid - lo)))
        if abs(grid[i] - lo) > step / 2 + tol:
            raise DecoderError(
                f"frequency {token!r} in selection item {item!r} is not available; valid: "
                f"{_describe_freqs(freqs, n_freqs)}"
            )
        return [i]
    if hi < lo:
        raise DecoderError(f"frequency range {token!r} in {item!r} is reversed; expected low-high")
    idx = np.flatnonzero((grid >= lo - tol) & (grid <= hi + tol)).tolist()
    if not idx:
        raise DecoderError(
            f"frequency range {token!r} in selection item {item!r} holds no bin; valid: "
            f"{_describe_freqs(freqs, n_freqs)}"
        )
    return [int(i) for i in idx]


def parse_selection(
    spec: str | Sequence[str],
    ch_names: Sequence[str],
    freqs: Sequence[float] | np.ndarray | None = None,
    *,
    n_freqs: int | None = None,
) -> list[tuple[int, int]]:
    """Parse a user feature selection into (channel index, frequency index) pairs.

    Grammar: items separated by commas or semicolons (or given as a list), each
    ``CHANNEL:FREQ`` or ``CHANNEL:LOW-HIGH`` (inclusive, Hz; or bin indices when ``freqs`` is
    None), e.g. ``"C4:13"``, ``"C4:13-16"``, ``"C3:10,C4:12-14"``. A bare ``CHANNEL`` selects
    all its frequencies. Channel names match exactly, else case-insensitively ignoring trailing
    dots (EEGMMIDB's ``"C3.."`` matches ``C3``). A single frequency matches the nearest bin within
    half a bin. Duplicates are dropped, order kept.

    Parameters
    ----------
    spec : str or list of str
        The selection.
    ch_names : sequence of str, length n_channels
        Channel names, in the order of the feature cube's channel axis.
    freqs : array-like, shape (n_freqs,), or None
        Frequencies of the feature cube's last axis in Hz; None: use bin indices (then
        ``n_freqs`` is required to validate them).
    n_freqs : int or None
        Number of frequency bins when ``freqs`` is None.

    Returns
    -------
    selected : list of (int, int)

    Raises
    ------
    DecoderError
        Unknown channel or unavailable frequency (the message lists the valid ones), bad syntax,
        empty selection.
    """
    freqs_arr = None if freqs is None else np.asarray(freqs, dtype=float).ravel()
    if freqs_arr is not None:
        n_freqs = freqs_arr.size
    if n_freqs is None or n_freqs < 1:
        raise DecoderError("parse_selection needs freqs or n_freqs to validate frequencies")
    if isinstance(spec, str):
        items = [s for s in re.split(r"[,;]", spec)]
    else:
        items = []
        for s in spec:
            items.extend(re.split(r"[,;]", str(s)))
    items = [s.strip() for s in items if s.strip()]
    if not items:
        raise DecoderError(f"empty feature selection {spec!r}; expected e.g. 'C4:13-16'")
    out: list[tuple[int, int]] = []
    for item in items:
        if ":" in item:
            ch_tok, f_tok = item.split(":", 1)
            ch = _match_channel(ch_tok.strip(), ch_names, item)
            fi = _match_freqs(f_tok, freqs_arr, n_freqs, item)
        else:
            ch = _match_channel(item, ch_names, item)
            fi = list(range(n_freqs))
        for f in fi:
            if (ch, f) not in out:
                out.append((ch, f))
    return out


class FeatureSelector(TransformerMixin, BaseEstimator):
    """Select (channel, frequency) features from a feature cube by R² or by the user's choice.

    Parameters
    ----------
    ch_names : sequence of str or None
        Channel names in the order of the cube's channel axis; None: ``"0", "1", ...``.
    freqs : array-like of float or None
        Frequencies of the cube's last axis (e.g. the previous step's ``freqs_``); None: the
        selection refers to bin indices.
    n_features : int
        Number of features kept when ``selection`` is None (top ``|R²|``; capped at the number
        of features available).
    selection : str, list of str or None
        Explicit selection (see :func:`parse_selection`), used instead of the R² ranking.

    Attributes
    ----------
    r2_ : ndarray, shape (n_channels, n_freqs)
        Signed R² map of the training data (computed even when ``selection`` is given, for
        display). With more than two classes: per feature, the one-vs-rest R² of largest
        magnitude.
    selected_ : list of (int, int)
        Selected (channel index, frequency index) pairs, in output column order.
    classes_ : ndarray
        Labels seen in fit; ``r2_`` is positive where the feature is larger for ``classes_[1]``.
    feature_names_ : list of str
        ``"C4:13Hz"``-style name of each output column.
    """

    def __init__(
        self,
        ch_names: Sequence[str] | None = None,
        freqs: Sequence[float] | None = None,
        n_features: int = 10,
        selection: str | Sequence[str] | None = None,
    ) -> None:
        self.ch_names = ch_names
        self.freqs = freqs
        self.n_features = n_features
        self.selection = selection

    def _names(self, n_ch: int) -> list[str]:
        if self.ch_names is None:
            return [str(i) for i in range(n_ch)]
        names = [str(c) for c in self.ch_names]
        if len(names) != n_ch:
            raise DecoderError(
                f"ch_names has {len(names)} names but F has {n_ch} channels; expected one name "
                "per channel"
            )
        return names

    def fit(self, F: Any, y: Any) -> FeatureSelector:
        """Compute the R² map and choose the features.

        Parameters
        ----------
        F : array-like, shape (n_epochs, n_channels, n_freqs)
        y : array-like, shape (n_epochs,)
            Two classes; with more, ``r2_`` holds per feature the one-vs-rest R² of largest
            magnitude over the classes.

        Returns
        -------
        self : FeatureSelector
        """
        F = check_features_3d(F)
        y = check_labels(y, F.shape[0])
        names = self._names(F.shape[1])
        freqs = None
        if self.freqs is not None:
            freqs = np.asarray(self.freqs, dtype=float).ravel()
            if freqs.size != F.shape[2]:
                raise DecoderError(
                    f"freqs has {freqs.size} values but F has {F.shape[2]} frequency bins; "
                    "pass the previous step's freqs_"
                )
        classes = np.unique(y)
        if classes.size == 2:
            r2 = r2_map(F, y)
        else:  # one-vs-rest maps; keep, per feature, the class with the largest |R²|
            maps = np.stack([r2_map(F, y, positive=c) for c in classes.tolist()])
            best = np.argmax(np.abs(maps), axis=0)
            r2 = np.take_along_axis(maps, best[None], axis=0)[0]
        if self.selection is not None:
            selected = parse_selection(self.selection, names, freqs, n_freqs=F.shape[2])
        else:
            n = self.n_features
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise DecoderError(f"n_features={n!r}; expected a positive integer")
            total = F.shape[1] * F.shape[2]
            if n > total:
                logger.warning("n_features=%d > %d features available; keeping all", n, total)
            selected = top_features(r2, min(int(n), total))
        self.r2_ = r2
        self.classes_ = classes
        self.selected_ = selected
        self.n_channels_ = F.shape[1]
        self.n_freqs_ = F.shape[2]
        self.feature_names_ = [
            f"{names[c]}:{freqs[f]:g}Hz" if freqs is not None else f"{names[c]}:{f}"
            for c, f in selected
        ]
        return self

    def transform(self, F: Any) -> np.ndarray:
        """Keep the selected features.

        Parameters
        ----------
        F : array-like, shape (n_epochs, n_channels, n_freqs)

        Returns
        -------
        Fs : ndarray, shape (n_epochs, n_selected)
            Columns in the order of ``selected_``.
        """
        check_is_fitted(self, "selected_")
        F = check_features_3d(F)
        if F.shape[1:] != (self.n_channels_, self.n_freqs_):
            raise DecoderError(
                f"F has {F.shape[1]} channels x {F.shape[2]} frequencies; expected "
                f"{self.n_channels_} x {self.n_freqs_} as in fit"
            )
        ch = np.array([c for c, _ in self.selected_], dtype=int)
        fr = np.array([f for _, f in self.selected_], dtype=int)
        return F[:, ch, fr]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns, e.g. ``["C4:13Hz", ...]``."""
        check_is_fitted(self, "selected_")
        return np.asarray(self.feature_names_, dtype=object)
