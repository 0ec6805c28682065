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
    decimation_factor,
    epoch_length,
    n_samples,
)
from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)

#: The 13 sensorimotor channels used by the augmented-covariance pipelines (MOABB's ACM choice).
MOTOR_CHANNELS: tuple[str, ...] = (
    "FC3", "FCz", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3", "CPz", "CP4",
)

#: name -> :class:`PipelineSpec`, read from ``assets/pipelines/pipelines.toml`` (plus any user specs
#: added with :func:`add_pipeline_specs`).
PIPELINE_SPECS: dict[str, PipelineSpec] = {}
#: name -> one-line description (kept in step with :data:`PIPELINE_SPECS`).
PIPELINES: dict[str, str] = {}

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
    n_t = X.shape[2]
    Xc = X - X.mean(axis=2, keepdims=True)
    return oas_shrink(np.einsum("ect,edt->ecd", Xc, Xc, optimize=True) / n_t, n_t)


def oas_shrink(emp: np.ndarray, n_t: int) -> np.ndarray:
    """OAS shrinkage of empirical (centred, biased) covariances (the math of
    :func:`oas_covariances`, also used by the online decoder's incremental covariances).

    Parameters
    ----------
    emp : ndarray, shape (n_epochs, n_channels, n_channels)
    n_t : int
        Samples each covariance was estimated from.

    Returns
    -------
    covs : ndarray, shape (n_epochs, n_channels, n_channels)
    """
    if emp.shape[-1] == 1:
        return emp
    shrink, mu = oas_coefficients(emp, n_t)
    covs = (1.0 - shrink)[:, None, None] * emp
    diag = np.einsum("eii->ei", covs)  # a writable view of the diagonals
    diag += (shrink * mu)[:, None]
    return covs


def oas_coefficients(emp: np.ndarray, n_t: int) -> tuple[np.ndarray, np.ndarray]:
    """Shrinkage and target scale of :func:`oas_shrink`: ``(1 - shrink) * emp + shrink * mu * I``.

    Parameters
    ----------
    emp : ndarray, shape (n_epochs, n_channels, n_channels)
    n_t : int

    Returns
    -------
    shrink, mu : ndarray, shape (n_epochs,)
    """
    n_ch = emp.shape[-1]
    # einsum: no temporary of the batch's size (5x faster on a pseudo-online batch)
    alpha = np.einsum("eij,eij->e", emp, emp) / (n_ch * n_ch)
    mu = np.einsum("eii->e", emp) / n_ch
    if n_ch == 1:
        return np.zeros_like(mu), mu
    if len(emp) == 1:  # one window (the online engine, every hop): the same IEEE operations on
        a, m = float(alpha[0]), float(mu[0])  # Python floats, without ~10 array calls
        den = (n_t + 1) * (a - m**2 / n_ch)
        return np.array([1.0 if den == 0 else min((a + m**2) / den, 1.0)]), mu
    num = alpha + mu**2
    den = (n_t + 1) * (alpha - mu**2 / n_ch)
    zero = den == 0
    shrink = np.minimum(num / np.where(zero, 1.0, den), 1.0)
    shrink[zero] = 1.0
    return shrink, mu


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


def _motor_picks(ch_names: Sequence[str] | None,
                 channels: Sequence[str] = MOTOR_CHANNELS) -> list[str] | None:
    """The ``channels`` present in ``ch_names`` (None: no picking possible/needed)."""
    if ch_names is None:
        return None
    from neurodeck.decoders.epochs import normalize_name

    have = {normalize_name(c) for c in ch_names}
    picks = [c for c in channels if normalize_name(c) in have]
    if len(picks) < 3:  # not a 10-10 montage: use every channel
        return None
    return picks


# ------------------------------------------------------------------ pipelines as data (TOML specs)


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a step needs from the data and the decoder configuration (not from the spec)."""

    sfreq: float
    ch_names: list[str] | None
    band: tuple[float, float]
    pad: float
    seed: int
    filter_order: int
    filter_passes: int
    decim: int = 1  # the band-pass's decimation factor: steps after it see sfreq / decim

    @property
    def work_sfreq(self) -> float:
        """Rate of the windows after the band-pass (the working rate)."""
        return self.sfreq / self.decim


@dataclasses.dataclass(frozen=True)
class StepKind:
    """One allow-listed step kind that a pipeline spec may name.

    Parameters
    ----------
    name : str
        Default step name inside the scikit-learn pipeline.
    build : callable
        ``build(ctx, **params) -> estimator or None`` (None: the step does not apply to this
        data and is left out, e.g. motor picks without a 10-10 montage).
    params : mapping str -> str or None
        Spec keys the step accepts -> the scikit-learn parameter a grid over that key searches
        (None: the key is fixed when the step is built and cannot be a grid).
    head : bool
        A classifier that can end a pipeline (and be exported as the bundle's ONNX head).
    doc : str
        One line for ``--list-steps``.
    """

    name: str
    build: Any
    params: Mapping[str, str | None]
    head: bool = False
    doc: str = ""


def _motor_picks_step(ctx: BuildContext, channels: Sequence[str] = MOTOR_CHANNELS):
    picks = _motor_picks(ctx.ch_names, channels)
    return None if picks is None else PickChannels(ch_names=list(ctx.ch_names), picks=picks)


def _filter_bank_step(ctx: BuildContext, width: float = FILTER_BANK_WIDTH,
                      sub_order: int = FILTER_BANK_ORDER):
    bands = filter_bank(ctx.band, float(width))
    orders = tuple(ctx.filter_order if b == ctx.band else min(ctx.filter_order, int(sub_order))
                   for b in bands)
    return FilterBankTangentSpace(sfreq=ctx.sfreq, bands=bands, orders=orders,
                                  passes=ctx.filter_passes, pad=ctx.pad)


def _psd_step(ctx: BuildContext, **kw):
    from neurodeck.decoders.features.psd import PSD

    return PSD(sfreq=ctx.work_sfreq, fmin=ctx.band[0], fmax=ctx.band[1], **{"method": "welch", "log": True, **kw})


def _node_strength_step(ctx: BuildContext, **kw):
    from neurodeck.decoders.features.connectivity import NodeStrength

    return NodeStrength(sfreq=ctx.work_sfreq, fmin=ctx.band[0], fmax=ctx.band[1], **kw)


def _select_step(ctx: BuildContext, **kw):
    from neurodeck.decoders.selection import FeatureSelector

    return FeatureSelector(ch_names=_names(ctx.ch_names), **kw)


def _acm_step(ctx: BuildContext, **kw):  # noqa: ARG001
    from neurodeck.decoders.features.covariance import AugmentedCovariances

    return AugmentedCovariances(**{"estimator": "oas", **kw})


def _recentering(**kw):
    from neurodeck.decoders.transfer import Recentering

    return Recentering(**kw)


def _same(*keys: str) -> dict[str, str]:
    return {k: k for k in keys}


#: The allow-listed step kinds of pipeline specs (nothing else can be named in a spec).
STEPS: dict[str, StepKind] = {
    "bandpass": StepKind(
        "bandpass",
        lambda ctx: BandPass(sfreq=ctx.sfreq, l_freq=ctx.band[0], h_freq=ctx.band[1], pad=ctx.pad,
                             order=ctx.filter_order, passes=ctx.filter_passes, decim=ctx.decim),
        {}, doc="causal Butterworth band-pass of the padded window (band/filter from the config), "
        "decimated to the working rate when the band allows"),
    "motor_picks": StepKind("picks", _motor_picks_step, {"channels": None},
                            doc="keep the sensorimotor channels (left out without a 10-10 montage)"),
    "psd": StepKind("psd", _psd_step, _same("method", "log"), doc="Welch power spectrum (dB)"),
    "node_strength": StepKind("coh", _node_strength_step, _same("kind"),
                              doc="connectivity node strength (e.g. imaginary coherence)"),
    "select_r2": StepKind("select", _select_step, _same("n_features"),
                          doc="top-n features by R² (fitted in the training data)"),
    "oas_covariance": StepKind("cov", lambda ctx: OASCovariances(), {}, doc="OAS covariance"),
    "augmented_covariance": StepKind("acm", _acm_step, _same("order", "lag", "estimator"),
                                     doc="augmented (delay-embedded) covariance; order/lag int or 'auto'"),
    "recentering": StepKind(
        "recentering", lambda ctx, **kw: _recentering(**kw),
        {"adapt": None, "memory": None, "target_weight": None, "stretch": None, "rotate": None},
        doc="re-centre covariances by the subject's Riemannian mean (Zanini 2018); adapt = true: "
        "the reference follows the incoming windows online (memory 0: cumulative); target_weight "
        "= 'half': with sources, the user's own trials weigh as much as all the sources', 'auto': "
        "their weight chosen by cross-validation on them; stretch / rotate = true: Riemannian "
        "Procrustes (Rodrigues 2019) with sources and the user's labelled trials"),
    "csp": StepKind("csp", lambda ctx, **kw: CSP(**{"nfilter": 8, "log": True, **kw}),
                    _same("nfilter", "metric", "log"), doc="common spatial patterns"),
    "tangent_space": StepKind("ts", lambda ctx, **kw: TangentSpace(**{"metric": "riemann", **kw}),
                              _same("metric"), doc="Riemannian tangent space"),
    "fgda": StepKind("fgda", lambda ctx, **kw: FGDA(**{"metric": "riemann", **kw}), _same("metric"),
                     doc="geodesic filtering (Fisher geodesic discriminant analysis)"),
    "filter_bank_tangent_space": StepKind(
        "fbts", _filter_bank_step, {"width": None, "sub_order": None},
        doc="filter bank of the band (sub-bands of `width` Hz + the full band), tangent space per band"),
    "standard_scaler": StepKind("scale", lambda ctx: StandardScaler(), {}, doc="standardise features"),
    "lda": StepKind(
        "lda",
        lambda ctx, shrinkage=None: LinearDiscriminantAnalysis(
            **({"solver": "lsqr", "shrinkage": shrinkage} if shrinkage is not None else {})),
        {"shrinkage": None}, head=True, doc="linear discriminant analysis (shrinkage = 'auto': Ledoit-Wolf)"),
    "logistic_regression": StepKind(
        "lr", lambda ctx, **kw: LogisticRegression(**kw), _same("C", "max_iter"), head=True,
        doc="L2 logistic regression"),
    "linear_svm": StepKind(
        "svm", lambda ctx, C=1.0: calibrated_linear_svm(ctx.seed).set_params(estimator__C=C),
        {"C": "estimator__C"}, head=True, doc="linear SVM with sigmoid-calibrated probabilities"),
    "mdm": StepKind("mdm", lambda ctx, **kw: MDM(**{"metric": "riemann", **kw}), _same("metric"),
                    head=True, doc="minimum distance to the Riemannian class means"),
}

#: Steps that take the padded raw window (a pipeline starts with one of them).
_FIRST_STEPS = ("bandpass", "filter_bank_tangent_space")
_SCALAR = (bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class PipelineSpec:
    """A named pipeline as data: an ordered list of allow-listed steps with parameters.

    Parameters
    ----------
    name : str
    description : str
    steps : tuple of (kind, params)
        ``kind`` a key of :data:`STEPS`; ``params`` that kind's parameters (a list value is a
        grid searched in the training data), plus an optional ``name``.
    source : str
        Where the spec was read (for error messages).
    """

    name: str
    description: str
    steps: tuple[tuple[str, dict[str, Any]], ...]
    source: str = "<spec>"

    @classmethod
    def from_dict(cls, name: str, d: Any, source: str = "<spec>") -> PipelineSpec:
        """Validate one ``[name]`` table; errors name the file, pipeline, key and value."""
        where = f"{source}: pipeline {name!r}"
        if not isinstance(d, Mapping):
            raise DecoderError(f"{where} must be a table with 'description' and 'steps', got {d!r:.80}")
        unknown = set(d) - {"description", "steps"}
        if unknown:
            raise DecoderError(f"{where}: unknown keys {sorted(unknown)}; expected 'description' and 'steps'")
        desc = d.get("description", "")
        if not isinstance(desc, str):
            raise DecoderError(f"{where}: 'description' must be a string, got {desc!r}")
        raw_steps = d.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise DecoderError(f"{where}: 'steps' must be a non-empty list of step tables, got {raw_steps!r:.80}")
        steps, names = [], set()
        for i, st in enumerate(raw_steps):
            at = f"{where} steps[{i}]"
            if not isinstance(st, Mapping) or "step" not in st:
                raise DecoderError(f"{at} must be a table with a 'step' key, got {st!r:.80}")
            kind = st["step"]
            if kind not in STEPS:
                raise DecoderError(f"{at}: step {kind!r} is not allowed; expected one of {sorted(STEPS)}")
            spec_kind = STEPS[kind]
            params = {k: v for k, v in st.items() if k not in ("step", "name")}
            bad = set(params) - set(spec_kind.params)
            if bad:
                raise DecoderError(f"{at} ({kind}): unknown parameters {sorted(bad)}; expected some of "
                                   f"{sorted(spec_kind.params)}")
            for k, v in params.items():
                if isinstance(v, list):
                    if spec_kind.params[k] is None and k != "channels":
                        raise DecoderError(f"{at} ({kind}): {k} = {v!r} cannot be a grid (one value expected)")
                    if not v or not all(isinstance(x, _SCALAR) for x in v):
                        raise DecoderError(f"{at} ({kind}): {k} = {v!r}; expected a value or a non-empty list of values")
                elif not isinstance(v, _SCALAR):
                    raise DecoderError(f"{at} ({kind}): {k} = {v!r}; expected a number, string or boolean")
            step_name = st.get("name", spec_kind.name)
            if not isinstance(step_name, str) or not step_name or "__" in step_name:
                raise DecoderError(f"{at}: name {step_name!r} must be a non-empty string without '__'")
            if step_name in names:
                raise DecoderError(f"{at}: step name {step_name!r} used twice; give one a 'name'")
            names.add(step_name)
            steps.append((kind, {**params, "name": step_name}))
        if steps[0][0] not in _FIRST_STEPS:
            raise DecoderError(f"{where}: the first step must be one of {list(_FIRST_STEPS)} (it filters "
                               f"the padded raw window), got {steps[0][0]!r}")
        if not STEPS[steps[-1][0]].head:
            raise DecoderError(f"{where}: the last step must be a classifier, one of "
                               f"{sorted(k for k, v in STEPS.items() if v.head)}; got {steps[-1][0]!r}")
        for kind, _ in steps[:-1]:
            if STEPS[kind].head:
                raise DecoderError(f"{where}: classifier {kind!r} can only be the last step")
        return cls(name=str(name), description=desc, steps=tuple(steps), source=source)

    def build(self, ctx: BuildContext) -> Pipeline:
        """The unfitted scikit-learn pipeline for data described by ``ctx``."""
        built: list[tuple[str, Any]] = []
        grid: dict[tuple[str, str], list] = {}
        grid_at = None
        for kind, params in self.steps:
            step_name = params["name"]
            kw = {k: v for k, v in params.items() if k != "name"}
            fixed = {}
            for k, v in kw.items():
                if isinstance(v, list) and STEPS[kind].params[k] is not None:
                    grid[(step_name, STEPS[kind].params[k])] = list(v)
                    fixed[k] = v[0]
                    if grid_at is None:
                        grid_at = len(built)
                else:
                    fixed[k] = v
            try:
                est = STEPS[kind].build(ctx, **fixed)
            except (TypeError, ValueError, DecoderError) as exc:
                raise DecoderError(f"{self.source}: pipeline {self.name!r} step {step_name!r} ({kind}) "
                                   f"with {fixed!r}: {exc}") from exc
            if est is not None:
                built.append((step_name, est))
        if grid_at is not None:
            inner_cv = StratifiedKFold(3, shuffle=True, random_state=ctx.seed)
            searched = built[grid_at:]
            if len(searched) == 1:
                est = searched[0][1]
                param_grid = {p: v for (_, p), v in grid.items()}
                wrapped = (searched[0][0], est)
            else:
                est = Pipeline(searched)
                param_grid = {f"{n}__{p}": v for (n, p), v in grid.items()}
                wrapped = ("search", est)
            search = GridSearchCV(wrapped[1], param_grid, cv=inner_cv, scoring="roc_auc")
            built = built[:grid_at] + [(wrapped[0], search)]
        return Pipeline(built)


def parse_pipeline_specs(text: str, source: str = "<spec>") -> dict[str, PipelineSpec]:
    """Read pipeline specs from TOML text (one ``[name]`` table per pipeline)."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DecoderError(f"cannot parse pipeline specs {source}: {exc}") from exc
    if not d:
        raise DecoderError(f"{source} declares no pipeline (expected [name] tables with 'steps')")
    return {name: PipelineSpec.from_dict(name, table, source) for name, table in d.items()}


def load_pipeline_specs(path: str | Path) -> dict[str, PipelineSpec]:
    """Read and validate a pipeline spec file (TOML; the format of ``assets/pipelines``)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DecoderError(f"cannot read pipeline file {path}: {exc.strerror or exc}") from exc
    return parse_pipeline_specs(text, str(path))


def add_pipeline_specs(path: str | Path) -> list[str]:
    """Register the pipelines of a user spec file (``--pipeline-file``); returns their names.

    A user pipeline may not reuse a shipped name (the shipped pipelines are the references).
    """
    specs = load_pipeline_specs(path)
    clash = sorted(set(specs) & set(_SHIPPED))
    if clash:
        raise DecoderError(f"{path}: pipelines {clash} are shipped with neurodeck; choose other names")
    PIPELINE_SPECS.update(specs)
    PIPELINES.update({n: s.description for n, s in specs.items()})
    return list(specs)


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
    decimate: bool = True,
    **overrides: Any,
) -> Pipeline:
    """Build the named pipeline (unfitted) from its spec.

    Parameters
    ----------
    name : str
        One of :data:`PIPELINES` (shipped in ``assets/pipelines/pipelines.toml`` or added with
        :func:`add_pipeline_specs`).
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
    decimate : bool
        Let the band-pass decimate to the working rate (>= 4x the band's upper edge, an integer
        factor: :func:`decoders.epochs.decimation_factor`; e.g. 8-32 Hz at 2048 Hz: 128 Hz).
        The filter bank of ``fbts-*`` always works at the input rate.
    **overrides
        ``step__param=value`` pairs passed to :meth:`Pipeline.set_params`.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Input ``(n_windows, n_channels, n_pad + n_times)``; ``predict_proba`` gives
        ``(n_windows, n_classes)``.
    """
    if name not in PIPELINE_SPECS:
        raise DecoderError(f"unknown pipeline {name!r}; expected one of {sorted(PIPELINES)}")
    if sfreq is None or not np.isfinite(sfreq) or sfreq <= 0:
        raise DecoderError(f"sfreq must be a positive number of Hz, got {sfreq!r}")
    ctx = BuildContext(sfreq=float(sfreq), ch_names=None if ch_names is None else list(ch_names),
                       band=(float(band[0]), float(band[1])), pad=float(pad), seed=int(seed),
                       filter_order=int(filter_order), filter_passes=int(filter_passes),
                       decim=decimation_factor(float(sfreq), float(band[1])) if decimate else 1)
    pipe = PIPELINE_SPECS[name].build(ctx)
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
    decimate : bool
        Decimate to the working rate after the anti-alias low-pass when the band allows
        (:func:`decoders.epochs.decimation_factor`; False: features at the recording's rate).
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
    decimate: bool = True
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
        if not isinstance(self.decimate, bool):
            raise DecoderError(f"decimate must be true or false, got {self.decimate!r}")
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
            decimate=self.decimate, **dict(self.overrides),
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
            "decimate": self.decimate,
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
                "filter_order/filter_passes = integers, decimate = true/false"
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


def _load_shipped() -> dict[str, PipelineSpec]:
    from importlib.resources import files

    res = files("neurodeck.assets") / "pipelines" / "pipelines.toml"
    return parse_pipeline_specs(res.read_text(), "assets/pipelines/pipelines.toml")


#: The pipelines shipped with neurodeck (read once at import).
_SHIPPED: dict[str, PipelineSpec] = _load_shipped()
PIPELINE_SPECS.update(_SHIPPED)
PIPELINES.update({n: s.description for n, s in _SHIPPED.items()})
