"""Named decoding pipelines and the decoder configuration.

Every pipeline is a scikit-learn :class:`~sklearn.pipeline.Pipeline` that takes **padded raw
windows** ``(n_windows, n_channels, n_pad + n_times)`` in microvolts and starts with
:class:`decoders.epochs.BandPass` (see :mod:`decoders.epochs` for why the band-pass lives inside
the pipeline: offline epochs and online windows then go through the very same function).

Build one with :func:`make_pipeline`; :data:`PIPELINES` lists the names with a one-line
description. :class:`DecoderConfig` holds everything needed to cut windows out of a recording
(band, epoch times, picks, events, pipeline name, window) and is stored as TOML or JSON.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pyriemann.classification import MDM
from pyriemann.spatialfilters import CSP
from pyriemann.tangentspace import FGDA, TangentSpace
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from neurodeck.decoders.epochs import (
    BandPass,
    PickChannels,
    bandpass_sos,
    bandpass_windows,
    epoch_length,
    n_samples,
)
from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)

#: The 13 sensorimotor channels used by the augmented-covariance pipelines (MOABB's ACM choice).
MOTOR_CHANNELS: tuple[str, ...] = (
    "FC3", "FCz", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3", "CPz", "CP4",
)

#: name -> one-line description.
PIPELINES: dict[str, str] = {
    "psd-lda": "Welch PSD (dB) -> top-10 (channel, frequency) features by R² (fit in the fold) "
    "-> shrinkage LDA (HappyFeat style)",
    "coh-lda": "imaginary-coherence node strength -> top-10 features by R² -> shrinkage LDA",
    "csp-lda": "OAS covariance -> CSP (8 filters, log-variance) -> LDA",
    "mdm": "OAS covariance -> minimum distance to Riemannian mean (softmax of -d²)",
    "fgmdm": "OAS covariance -> geodesic filtering (FGDA) -> MDM",
    "ts-lr": "OAS covariance -> tangent space -> logistic regression (C=1)",
    "ts-svm": "OAS covariance -> tangent space -> linear SVM (sigmoid-calibrated), C by inner "
    "3-fold grid search",
    "ts-lda": "OAS covariance -> tangent space -> Ledoit-Wolf shrinkage LDA (our default)",
    "acm-ts-svm": "augmented covariance on 13 motor channels -> tangent space -> linear SVM "
    "(sigmoid-calibrated); "
    "(order, lag, C) by inner 3-fold grid search",
    "acm-mdm": "augmented covariance on 13 motor channels, (order, lag) from the data "
    "(mutual information / false nearest neighbours) -> MDM",
    "fbts-lr": "filter bank (4 Hz sub-bands of the band + the full band), OAS covariance -> "
    "tangent space per band, concatenated, standardised -> L2 logistic regression, C by inner "
    "3-fold grid search",
}

#: Sub-band width of the filter-bank pipelines, in Hz.
FILTER_BANK_WIDTH = 4.0
#: Butterworth order of the narrow sub-bands of the filter-bank pipelines.
FILTER_BANK_ORDER = 2


def filter_bank(band: tuple[float, float], width: float = FILTER_BANK_WIDTH) -> tuple[tuple[float, float], ...]:
    """Contiguous sub-bands of ``width`` Hz covering ``band``, followed by ``band`` itself.

    >>> filter_bank((8, 32))
    ((8.0, 12.0), (12.0, 16.0), (16.0, 20.0), (20.0, 24.0), (24.0, 28.0), (28.0, 32.0), (8.0, 32.0))
    """
    lo, hi = float(band[0]), float(band[1])
    n = max(1, int(round((hi - lo) / width)))
    edges = np.linspace(lo, hi, n + 1)
    subs = tuple((float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True))
    return subs + ((lo, hi),) if n > 1 else subs

#: The reference (MOABB-like) name for each of our pipelines that has one.
REFERENCE_AUC: dict[str, tuple[float, tuple[float, float, float]]] = {
    "fgmdm": (0.86, (0.90, 1.00, 0.68)),
    "ts-svm": (0.82, (0.91, 0.96, 0.60)),
    "ts-lr": (0.77, (0.85, 0.94, 0.53)),
    "acm-ts-svm": (0.77, (0.96, 1.00, 0.34)),
    "csp-lda": (0.68, (0.65, 0.91, 0.48)),
    "mdm": (0.64, (0.70, 0.83, 0.40)),
}

ACM_ORDERS = (2, 3, 4, 5, 6)
#: Inverse regularisation strengths searched (inside the training folds) by ``fbts-lr``.
FBTS_C_GRID = (0.001, 0.01, 0.1, 1.0)
ACM_LAGS = (1, 2, 3, 4)


def oas_covariances(X: np.ndarray) -> np.ndarray:
    """Oracle Approximating Shrinkage covariance of each epoch, vectorised.

    The same estimate as ``pyriemann.estimation.Covariances(estimator="oas")`` (scikit-learn's
    ``oas`` on each epoch, centred), computed for all epochs at once: the online decoder and the
    pseudo-online replay call it on every window, so it must be fast.

    Parameters
    ----------
    X : ndarray, shape (n_epochs, n_channels, n_times)

    Returns
    -------
    covs : ndarray, shape (n_epochs, n_channels, n_channels)
    """
    X = np.asarray(X, dtype=float)
    n_epochs, n_ch, n_t = X.shape
    Xc = X - X.mean(axis=2, keepdims=True)
    emp = np.einsum("ect,edt->ecd", Xc, Xc, optimize=True) / n_t
    if n_ch == 1:
        return emp
    alpha = np.mean(emp**2, axis=(1, 2))
    mu = np.trace(emp, axis1=1, axis2=2) / n_ch
    num = alpha + mu**2
    den = (n_t + 1) * (alpha - mu**2 / n_ch)
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(den == 0, 1.0, np.minimum(num / np.where(den == 0, 1.0, den), 1.0))
    covs = (1.0 - shrink)[:, None, None] * emp
    covs[:, np.arange(n_ch), np.arange(n_ch)] += (shrink * mu)[:, None]
    return covs


class OASCovariances(TransformerMixin, BaseEstimator):
    """OAS shrinkage covariance per epoch (vectorised :func:`oas_covariances`).

    Input ``(n_epochs, n_channels, n_times)``, output ``(n_epochs, n_channels, n_channels)``.
    """

    def fit(self, X, y=None):  # noqa: ARG002
        self._check(X)
        return self

    @staticmethod
    def _check(X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 3 or X.shape[2] < 2:
            raise DecoderError(f"expected X of shape (n_epochs, n_channels, n_times >= 2), got {X.shape}")
        return X

    def transform(self, X):
        return oas_covariances(self._check(X))


class FilterBankTangentSpace(TransformerMixin, BaseEstimator):
    """Filter bank of causal band-passes -> OAS covariance -> tangent space, concatenated.

    Takes the **padded raw windows** (it replaces :class:`~decoders.epochs.BandPass` as the first
    step): each sub-band is filtered with the same causal filter as ``BandPass`` (padding dropped
    afterwards), so online windows and offline epochs stay identical.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    bands : sequence of (float, float)
        Pass bands in Hz.
    orders : sequence of int
        Butterworth order of each band's band-pass (same length as ``bands``).
    passes : int
        Causal passes of each Butterworth (see :func:`decoders.epochs.bandpass_sos`).
    pad : float
        Seconds of filter padding at the start of each window.
    metric : str
        Metric of the tangent-space reference point (pyriemann).

    Attributes
    ----------
    tangent_spaces_ : list of pyriemann.tangentspace.TangentSpace
        One fitted tangent space per band.

    Input ``(n_windows, n_channels, n_pad + n_times)``; output
    ``(n_windows, n_bands * n_channels * (n_channels + 1) / 2)``.
    """

    def __init__(self, sfreq: float = 160.0, bands=((8.0, 32.0),), orders=(4,),
                 passes: int = 2, pad: float = 1.0, metric: str = "riemann") -> None:
        self.sfreq = sfreq
        self.bands = bands
        self.orders = orders
        self.passes = passes
        self.pad = pad
        self.metric = metric

    def _covs(self, X) -> list[np.ndarray]:
        X = np.asarray(X, dtype=float)
        if X.ndim != 3:
            raise DecoderError(
                f"FilterBankTangentSpace expects X of shape (n_windows, n_channels, n_times), got {X.shape}"
            )
        if self.bands is None or len(self.bands) == 0:
            raise DecoderError(f"bands must list at least one (low, high) band, got {self.bands!r}")
        n_pad = n_samples(self.pad, self.sfreq)
        if X.shape[-1] <= n_pad + 1:
            raise DecoderError(
                f"windows of {X.shape[-1]} samples are too short for a {self.pad} s filter padding"
            )
        if self.orders is None or len(self.orders) != len(self.bands):
            raise DecoderError(
                f"orders {self.orders!r} must give one Butterworth order per band ({len(self.bands)})"
            )
        out = []
        for band, order in zip(self.bands, self.orders, strict=True):
            if len(band) != 2:
                raise DecoderError(f"each band must be (low, high) Hz, got {band!r}")
            sos = bandpass_sos(self.sfreq, float(band[0]), float(band[1]), int(order), self.passes)
            out.append(oas_covariances(bandpass_windows(X, sos, n_pad)))
        return out

    def fit(self, X, y=None):  # noqa: ARG002
        self.tangent_spaces_ = [
            TangentSpace(metric=self.metric).fit(C) for C in self._covs(X)
        ]
        return self

    def transform(self, X):
        covs = self._covs(X)
        if len(covs) != len(self.tangent_spaces_):
            raise DecoderError(
                f"fitted with {len(self.tangent_spaces_)} bands, now given {len(covs)}"
            )
        return np.concatenate(
            [ts.transform(C) for ts, C in zip(self.tangent_spaces_, covs, strict=True)], axis=1
        )


#: Folds of the out-of-fold decisions to which the SVM heads' sigmoid is fitted.
SVM_CALIBRATION_FOLDS = 3


def calibrated_linear_svm(seed: int = 42) -> CalibratedClassifierCV:
    """Linear SVM with Platt-scaled probabilities (the head of ``ts-svm`` and ``acm-ts-svm``).

    scikit-learn 1.9 deprecated ``SVC(probability=True)``; this is its recommended replacement.
    With ``ensemble=False`` one SVM is refitted on all the training data and one sigmoid
    ``p = expit(-(a * d + b))`` is fitted to its decisions ``d`` predicted out of fold, so the
    head stays a linear decision followed by a sigmoid (exported to ONNX as such, see
    :func:`decoders.onnx.head_to_onnx`). The folds are shuffled, stratified and seeded; 3 of
    them (libsvm's internal Platt scaling used 5) so that small sessions still train: the
    calibration raises as soon as a class has fewer trials than folds in the training part of
    an inner grid-search fold. The SVM's C is ``estimator__C``.

    Parameters
    ----------
    seed : int
        Seed of the calibration folds.

    Returns
    -------
    CalibratedClassifierCV
        Unfitted.
    """
    return CalibratedClassifierCV(
        SVC(kernel="linear"),
        method="sigmoid",
        ensemble=False,
        cv=StratifiedKFold(SVM_CALIBRATION_FOLDS, shuffle=True, random_state=seed),
    )


def _motor_picks(ch_names: Sequence[str] | None) -> list[str] | None:
    """The motor channels present in ``ch_names`` (None: no picking possible/needed)."""
    if ch_names is None:
        return None
    from neurodeck.decoders.epochs import normalize_name

    have = {normalize_name(c) for c in ch_names}
    picks = [c for c in MOTOR_CHANNELS if normalize_name(c) in have]
    if len(picks) < 3:  # not a 10-10 montage: use every channel
        return None
    return picks


def make_pipeline(
    name: str,
    sfreq: float,
    ch_names: Sequence[str] | None = None,
    *,
    band: tuple[float, float] = (8.0, 32.0),
    pad: float = 1.0,
    seed: int = 42,
    filter_order: int = 4,
    filter_passes: int = 2,
    **overrides: Any,
) -> Pipeline:
    """Build the named pipeline (unfitted).

    Parameters
    ----------
    name : str
        One of :data:`PIPELINES`.
    sfreq : float
        Sampling rate of the windows in Hz.
    ch_names : sequence of str or None
        Channel names of the windows (needed for R² feature names and for the motor-channel
        picks of the ``acm-*`` pipelines).
    band : (float, float)
        Band-pass in Hz (the :class:`BandPass` step and the spectral features).
    pad : float
        Seconds of filter padding at the start of each window.
    seed : int
        Seed of every random choice inside the pipeline (inner CV shuffles, SVM Platt scaling).
    filter_order, filter_passes : int
        Butterworth order and number of causal passes of the band-pass (and of every band of
        the filter-bank pipelines). Two passes of the 4th-order Butterworth have the magnitude
        response of the zero-phase (forward-backward) filter of the reference.
    **overrides
        ``step__param=value`` pairs passed to :meth:`Pipeline.set_params`.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Input ``(n_windows, n_channels, n_pad + n_times)``; ``predict_proba`` gives
        ``(n_windows, n_classes)``.
    """
    if name not in PIPELINES:
        raise DecoderError(f"unknown pipeline {name!r}; expected one of {sorted(PIPELINES)}")
    if sfreq is None or not np.isfinite(sfreq) or sfreq <= 0:
        raise DecoderError(f"sfreq must be a positive number of Hz, got {sfreq!r}")
    l_freq, h_freq = (float(b) for b in band)
    steps: list[tuple[str, Any]] = [
        ("bandpass", BandPass(sfreq=float(sfreq), l_freq=l_freq, h_freq=h_freq, pad=pad,
                              order=int(filter_order), passes=int(filter_passes)))
    ]
    inner_cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    cov = ("cov", OASCovariances())
    if name == "psd-lda":
        from neurodeck.decoders.features.psd import PSD
        from neurodeck.decoders.selection import FeatureSelector

        steps += [
            ("psd", PSD(sfreq=float(sfreq), fmin=l_freq, fmax=h_freq, method="welch", log=True)),
            ("select", FeatureSelector(ch_names=_names(ch_names), n_features=10)),
            ("lda", LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")),
        ]
    elif name == "coh-lda":
        from neurodeck.decoders.features.connectivity import NodeStrength
        from neurodeck.decoders.selection import FeatureSelector

        steps += [
            ("coh", NodeStrength(sfreq=float(sfreq), fmin=l_freq, fmax=h_freq, kind="imcoh")),
            ("select", FeatureSelector(ch_names=_names(ch_names), n_features=10)),
            ("lda", LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")),
        ]
    elif name == "csp-lda":
        steps += [cov, ("csp", CSP(nfilter=8, log=True)), ("lda", LinearDiscriminantAnalysis())]
    elif name == "mdm":
        steps += [cov, ("mdm", MDM(metric="riemann"))]
    elif name == "fgmdm":
        # pyriemann's FgMDM is exactly FGDA followed by MDM; spelled out so that every learned
        # state is a plain step (serialisable to JSON for the model bundle).
        steps += [cov, ("fgda", FGDA(metric="riemann")), ("mdm", MDM(metric="riemann"))]
    elif name == "ts-lr":
        steps += [cov, ("ts", TangentSpace(metric="riemann")), ("lr", LogisticRegression())]
    elif name == "ts-svm":
        svm = GridSearchCV(
            calibrated_linear_svm(seed),
            {"estimator__C": [0.1, 1.0, 10.0]},
            cv=inner_cv,
            scoring="roc_auc",
        )
        steps += [cov, ("ts", TangentSpace(metric="riemann")), ("svm", svm)]
    elif name == "ts-lda":
        steps += [
            cov,
            ("ts", TangentSpace(metric="riemann")),
            ("lda", LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")),
        ]
    elif name in ("acm-ts-svm", "acm-mdm"):
        from neurodeck.decoders.features.covariance import AugmentedCovariances

        picks = _motor_picks(ch_names)
        if picks is not None:
            steps.append(("picks", PickChannels(ch_names=list(ch_names), picks=picks)))
        if name == "acm-mdm":
            steps += [
                ("acm", AugmentedCovariances(order="auto", lag="auto", estimator="oas")),
                ("mdm", MDM(metric="riemann")),
            ]
        else:
            inner = Pipeline(
                [
                    ("acm", AugmentedCovariances(order=4, lag=2, estimator="oas")),
                    ("ts", TangentSpace(metric="riemann")),
                    ("svm", calibrated_linear_svm(seed)),
                ]
            )
            grid = GridSearchCV(
                inner,
                {
                    "acm__order": list(ACM_ORDERS),
                    "acm__lag": list(ACM_LAGS),
                    "svm__estimator__C": [0.1, 1.0],
                },
                cv=inner_cv,
                scoring="roc_auc",
            )
            steps.append(("search", grid))
    elif name == "fbts-lr":
        bands = filter_bank((l_freq, h_freq))
        # narrow sub-bands ring longer: their order is lowered so that the impulse response has
        # decayed within the padding (4 Hz wide, 2 passes: residual energy after 1 s is ~1e-2 at
        # order 4, ~2e-5 at order 2); the full band keeps the pipeline's band-pass.
        orders = tuple(
            int(filter_order) if b == (l_freq, h_freq) else min(int(filter_order), FILTER_BANK_ORDER)
            for b in bands
        )
        fb = FilterBankTangentSpace(sfreq=float(sfreq), bands=bands, orders=orders,
                                    passes=int(filter_passes), pad=pad)
        lr = GridSearchCV(
            LogisticRegression(max_iter=1000),
            {"C": list(FBTS_C_GRID)},
            cv=inner_cv,
            scoring="roc_auc",
        )
        # the filter bank filters the raw padded windows itself: no separate band-pass step.
        # Features are standardised so that the L2 penalty treats the bands' blocks alike.
        steps = [("fbts", fb), ("scale", StandardScaler()), ("lr", lr)]
    pipe = Pipeline(steps)
    if overrides:
        try:
            pipe.set_params(**overrides)
        except ValueError as exc:
            raise DecoderError(f"bad override for pipeline {name!r}: {exc}") from exc
    return pipe


def _names(ch_names: Sequence[str] | None) -> list[str] | None:
    return None if ch_names is None else [str(c).rstrip(".") for c in ch_names]


def _pairs(mapping: Mapping[str, Any] | Sequence[Sequence[Any]] | None) -> tuple:
    if mapping is None:
        return ()
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    out = []
    for item in items:
        if len(item) != 2:
            raise DecoderError(f"expected (key, value) pairs, got {item!r}")
        out.append((str(item[0]), item[1]))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """Everything needed to turn a recording into windows for a pipeline.

    Parameters
    ----------
    pipeline : str
        Name in :data:`PIPELINES`.
    band : (float, float)
        Band-pass in Hz.
    tmin, tmax : float
        Epoch start / end after the cue in seconds (``tmax`` included, MNE's convention).
    picks : tuple of str or None
        Channels given to the pipeline, in this order (None: every EEG channel of the data).
    events : tuple of (str, str)
        Annotation -> class label, e.g. ``(("T1", "left_hand"), ("T2", "right_hand"))``; a dict
        is accepted and converted.
    pad : float
        Seconds of filter padding in front of each window (see :mod:`decoders.epochs`).
    window : float or None
        Online window length in seconds without the padding (None: ``tmax - tmin``). Must equal
        the epoch length when set: the features are fitted on windows of that length.
    filter_order : int
        Butterworth order of the band-pass.
    filter_passes : int
        Causal passes of the Butterworth (2: the magnitude response of the reference's
        zero-phase forward-backward filter; see :func:`decoders.epochs.bandpass_sos`).
    overrides : tuple of (str, value)
        ``step__param`` overrides passed to :func:`make_pipeline`.
    """

    pipeline: str = "ts-lda"
    band: tuple[float, float] = (8.0, 32.0)
    tmin: float = 0.5
    tmax: float = 2.5
    picks: tuple[str, ...] | None = None
    events: tuple[tuple[str, str], ...] = (("T1", "left_hand"), ("T2", "right_hand"))
    pad: float = 1.0
    window: float | None = None
    filter_order: int = 4
    filter_passes: int = 2
    overrides: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.pipeline not in PIPELINES:
            raise DecoderError(
                f"pipeline {self.pipeline!r} unknown; expected one of {sorted(PIPELINES)}"
            )
        band = tuple(float(b) for b in self.band)
        if len(band) != 2 or not 0 <= band[0] < band[1]:
            raise DecoderError(f"band must be (low, high) Hz with 0 <= low < high, got {self.band!r}")
        set_(self, "band", band)
        if not float(self.tmax) > float(self.tmin):
            raise DecoderError(f"tmax ({self.tmax}) must be greater than tmin ({self.tmin})")
        set_(self, "tmin", float(self.tmin))
        set_(self, "tmax", float(self.tmax))
        if self.picks is not None:
            if isinstance(self.picks, str) or not len(self.picks):
                raise DecoderError(f"picks must be a non-empty list of channel names, got {self.picks!r}")
            set_(self, "picks", tuple(str(p) for p in self.picks))
        events = tuple((k, str(v)) for k, v in _pairs(self.events))
        if len(events) < 2:
            raise DecoderError(f"events must map at least 2 annotations to classes, got {self.events!r}")
        set_(self, "events", events)
        if not float(self.pad) >= 0:
            raise DecoderError(f"pad must be >= 0 seconds, got {self.pad!r}")
        set_(self, "pad", float(self.pad))
        if self.window is not None:
            if abs(float(self.window) - (self.tmax - self.tmin)) > 1e-9:
                raise DecoderError(
                    f"window ({self.window} s) must equal tmax - tmin ({self.tmax - self.tmin} s): "
                    "features are fitted on windows of the epoch length"
                )
            set_(self, "window", float(self.window))
        if int(self.filter_order) < 1:
            raise DecoderError(f"filter_order must be >= 1, got {self.filter_order!r}")
        if int(self.filter_passes) < 1:
            raise DecoderError(f"filter_passes must be >= 1, got {self.filter_passes!r}")
        set_(self, "overrides", _pairs(self.overrides))

    @property
    def event_mapping(self) -> dict[str, str]:
        """Annotation description -> class label."""
        return dict(self.events)

    @property
    def labels(self) -> list[str]:
        """Class labels in sorted order (the order of ``predict_proba`` columns)."""
        return sorted(set(self.event_mapping.values()))

    def window_seconds(self) -> float:
        return self.tmax - self.tmin

    def window_samples(self, sfreq: float) -> int:
        """Samples of a padded window at ``sfreq`` (what the online decoder needs)."""
        return n_samples(self.pad, sfreq) + epoch_length(self.tmin, self.tmax, sfreq)

    def build(self, sfreq: float, ch_names: Sequence[str] | None = None, seed: int = 42) -> Pipeline:
        """The unfitted pipeline for data at ``sfreq`` with channels ``ch_names``."""
        return make_pipeline(
            self.pipeline, sfreq, ch_names, band=self.band, pad=self.pad, seed=seed,
            filter_order=int(self.filter_order), filter_passes=int(self.filter_passes),
            **dict(self.overrides),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "band": list(self.band),
            "tmin": self.tmin,
            "tmax": self.tmax,
            "picks": None if self.picks is None else list(self.picks),
            "events": dict(self.events),
            "pad": self.pad,
            "window": self.window,
            "filter_order": self.filter_order,
            "filter_passes": self.filter_passes,
            "overrides": dict(self.overrides),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecoderConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise DecoderError(f"unknown decoder config keys {sorted(unknown)}; expected {sorted(known)}")
        kw = dict(d)
        try:
            if "band" in kw:
                kw["band"] = tuple(kw["band"])
            return cls(**kw)
        except DecoderError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # a value of the wrong type (e.g. band = 8, events = "T1") fails deep in validation:
            # say which config and what each key expects instead of showing a traceback
            raise DecoderError(
                f"decoder config {dict(d)!r} is invalid ({type(exc).__name__}: {exc}); expected "
                "pipeline = a name, band = [low, high] Hz, tmin/tmax/pad/window = seconds, "
                "events = {annotation = class}, picks = [channel names] or none, "
                "filter_order/filter_passes = integers"
            ) from exc

    def save(self, path: str | Path) -> None:
        """Write as TOML (``.toml``) or JSON (any other suffix)."""
        path = Path(path)
        d = {k: v for k, v in self.to_dict().items() if v is not None}
        if path.suffix == ".toml":
            import tomli_w

            path.write_text(tomli_w.dumps(d))
        else:
            path.write_text(json.dumps(d, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> DecoderConfig:
        path = Path(path)
        text = path.read_text()
        try:
            d = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise DecoderError(f"cannot parse decoder config {path}: {exc}") from exc
        return cls.from_dict(d)
