"""Continuous decoding: features per hop -> Kalman or Discriminative Kalman filter -> state.

A *continuous model bundle* is a directory, like a classifier bundle (:mod:`decoders.onnx`),
and never holds a pickle:

``model.json``
    ``"format": "neurodeck-continuous-model"``: pipeline (``dkf``, ``kf``, ``dkf-mlp``...),
    target names and units, the feature stage, the hop, the filter (state model ``A``, ``Gamma``,
    ``S`` and, for the KF, its linear observation model; for the DKF its parameters and
    standardisation), the backend of the DKF's ``f(x)``, ``Q(x)`` (``"onnx"`` or ``"numpy"``,
    whichever was faster when timed at save time, with the timings) and training scores.
``model.onnx`` (DKF only)
    The observation model ``x -> f(x), Q(x)`` in one graph (:mod:`decoders.dkf.export`).
``features/`` (classifier features only)
    A copy of the classifier bundle whose outputs are the features.

Features of one window (``FeatureStage``):

- ``"bandpower"``: log variance of the causally band-passed padded window, per chosen channel and
  band (the simulator's continuous mode encodes the velocity as mu/beta band power over C3/Cz/C4);
  names ``"C3:8-13"``; window in the bundle's unit (microvolts);
- ``"classifier"``: the outputs (probabilities) of a classifier bundle, today's cursor path;
- ``"table"``: precomputed features (e.g. the Flint data); such a bundle filters feature rows but
  cannot decode a stream.

:class:`ContinuousDecoder` is the online side (the engine's decoder interface): ``decide(window)``
steps the filter and returns the state followed by its posterior variances; ``skip()`` advances
the filter without an observation (an invalid window: predict, no update). ``decide_sequence`` is
the pseudo-online replay of a whole recording's windows and equals ``decide``/``skip`` window by
window.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.decoders.errors import DecoderError, ModelBundleError
from neurodeck.decoders.online import OnlineDecoder

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT",
    "PIPELINES",
    "FeatureStage",
    "stack_lags",
    "select_lags",
    "make_filter",
    "save_continuous_bundle",
    "is_continuous_bundle",
    "ContinuousDecoder",
]

FORMAT = "neurodeck-continuous-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
SIDECAR_FILE = "model.json"
FEATURES_DIR = "features"

#: Continuous pipelines: name -> (description, filter kind, DKF parameters).
PIPELINES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "dkf": ("Discriminative Kalman filter, Nadaraya-Watson f(x), Q(x)", "dkf", {"regressor": "nw"}),
    "dkf-nw": ("same as dkf", "dkf", {"regressor": "nw"}),
    "dkf-mlp": ("DKF, MLP f(x) (skl2onnx), NW Q(x) of out-of-fold residuals", "dkf",
                {"regressor": "mlp"}),
    "dkf-gp": ("DKF, Gaussian process f(x) and predictive variance Q(x)", "dkf",
               {"regressor": "gp"}),
    "dkf-robust": ("robust DKF (never divides by the training prior), NW", "dkf",
                   {"regressor": "nw", "robust": True}),
    "kf": ("Kalman filter, linear-Gaussian observation model", "kf", {}),
}


def make_filter(pipeline: str, **overrides: Any) -> Any:
    """An unfitted filter for a continuous pipeline name (see :data:`PIPELINES`)."""
    from neurodeck.decoders.dkf import DiscriminativeKalmanFilter, KalmanFilter

    if pipeline not in PIPELINES:
        raise DecoderError(
            f"unknown continuous pipeline {pipeline!r}; expected one of {sorted(PIPELINES)}"
        )
    _, kind, params = PIPELINES[pipeline]
    if kind == "kf":
        return KalmanFilter()
    return DiscriminativeKalmanFilter(**{**params, **overrides})


# ---------------------------------------------------------------------------------- features
@dataclass(frozen=True)
class FeatureStage:
    """How one window becomes one feature row.

    Parameters
    ----------
    kind : {"bandpower", "classifier", "table"}
    ch_names : tuple of str
        Channels of the window, in order (empty for ``"table"``).
    sfreq : float
        Sampling rate in Hz (0 for ``"table"``).
    window_s, pad_s : float
        Window length and the leading filter padding, seconds.
    bands : tuple of (float, float)
        Band-power bands in Hz.
    names : tuple of str
        Feature names.
    lags : tuple of int
        History: the filter's input at hop ``t`` is the feature rows of hops ``t - lag`` for each
        lag, concatenated (:func:`stack_lags`); ``(0,)``: the current row only.
    """

    kind: str
    ch_names: tuple[str, ...] = ()
    sfreq: float = 0.0
    window_s: float = 1.0
    pad_s: float = 1.0
    bands: tuple[tuple[float, float], ...] = ()
    names: tuple[str, ...] = ()
    lags: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        lags = self.lags
        if (not lags or lags[0] != 0 or any(int(v) != v for v in lags)
                or any(b <= a for a, b in zip(lags[:-1], lags[1:], strict=False))):
            raise DecoderError(f"lags {lags!r} invalid; expected increasing hop counts from 0, "
                               "e.g. (0, 1, 2, 3)")
        if self.kind not in ("bandpower", "classifier", "table"):
            raise DecoderError(
                f"feature kind {self.kind!r} invalid; expected 'bandpower', 'classifier' or 'table'"
            )
        if self.kind == "bandpower":
            if not self.ch_names or not self.bands:
                raise DecoderError("band-power features need channels and bands")
            for lo, hi in self.bands:
                if not 0 < lo < hi < self.sfreq / 2:
                    raise DecoderError(
                        f"band ({lo}, {hi}) Hz invalid; expected 0 < low < high < "
                        f"{self.sfreq / 2:g} Hz (Nyquist)"
                    )

    @classmethod
    def bandpower(cls, ch_names: Sequence[str], sfreq: float, bands: Sequence[Sequence[float]],
                  window_s: float = 1.0, pad_s: float = 1.0) -> FeatureStage:
        bands_t = tuple((float(lo), float(hi)) for lo, hi in bands)
        names = tuple(f"{ch}:{lo:g}-{hi:g}" for lo, hi in bands_t for ch in ch_names)
        return cls("bandpower", tuple(ch_names), float(sfreq), float(window_s), float(pad_s),
                   bands_t, names)

    @property
    def window_samples(self) -> int:
        from neurodeck.decoders.epochs import n_samples

        return n_samples(self.pad_s, self.sfreq) + n_samples(self.window_s, self.sfreq)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ch_names": list(self.ch_names), "sfreq": self.sfreq,
                "window_s": self.window_s, "pad_s": self.pad_s,
                "bands": [list(b) for b in self.bands], "names": list(self.names),
                "lags": [int(v) for v in self.lags]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureStage:
        try:
            return cls(str(d["kind"]), tuple(map(str, d.get("ch_names", ()))),
                       float(d.get("sfreq", 0.0)), float(d.get("window_s", 1.0)),
                       float(d.get("pad_s", 1.0)),
                       tuple((float(lo), float(hi)) for lo, hi in d.get("bands", ())),
                       tuple(map(str, d.get("names", ()))),
                       tuple(int(v) for v in d.get("lags", (0,))))
        except (KeyError, TypeError, ValueError, DecoderError) as exc:
            raise ModelBundleError(f"malformed 'features' entry {d!r:.200}: {exc}") from exc


def stack_lags(X: np.ndarray, lags: Sequence[int],
               valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate each feature row with the rows ``lags`` hops before it.

    Parameters
    ----------
    X : ndarray, shape (n_hops, n_features)
        Consecutive feature rows.
    lags : sequence of int
        Increasing, from 0. Before the first row, the first row is repeated (as online after a
        reset).
    valid : ndarray of bool, shape (n_hops,) or None

    Returns
    -------
    XL : ndarray, shape (n_hops, n_features * len(lags))
        Lag-major: ``XL[t] = [X[t - lags[0]], X[t - lags[1]], ...]``.
    ok : ndarray of bool, shape (n_hops,)
        Every row used is valid and finite.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    good = np.all(np.isfinite(X), axis=1)
    if valid is not None:
        good &= np.asarray(valid, dtype=bool)
    idx = [np.maximum(np.arange(n) - int(lag), 0) for lag in lags]
    return np.concatenate([X[i] for i in idx], axis=1), np.logical_and.reduce([good[i] for i in idx])


def select_lags(X: np.ndarray, Z: np.ndarray, valid: np.ndarray,
                candidates: Sequence[Sequence[int]] = ((0,), (0, 1, 2, 3)),
                n_folds: int = 5, gap: int = 5) -> tuple[tuple[int, ...], dict[str, float]]:
    """The feature history that a linear DKF predicts the state from best (blocked CV).

    For each candidate the lag-stacked, standardised rows of the *training* sequence go through
    :func:`~neurodeck.decoders.dkf.regression.linear_filter_cv`: a ridge ``f`` (penalty by
    blocked CV) predicted out of fold, a constant ``Q``, the filter run over each held-out block
    at the best ``Q`` scale; the candidate with the lowest filtered error (each target's divided
    by its variance) is returned. A cheap, linear proxy of the filters, which are fitted once,
    afterwards; it also compares the windows of ``--window auto``.

    Parameters
    ----------
    X : ndarray, shape (n_hops, n_features)
    Z : ndarray, shape (n_hops, n_states)
    valid : ndarray of bool, shape (n_hops,)
    candidates : sequence of lag tuples
    n_folds, gap : int

    Returns
    -------
    lags : tuple of int
    scores : dict
        ``"0,1,2,3"`` -> cross-validated normalised MSE.
    """
    from neurodeck.decoders.dkf.filters import Q_SCALES
    from neurodeck.decoders.dkf.regression import linear_filter_cv

    scores: dict[str, float] = {}
    for lags in candidates:
        XL, ok = stack_lags(X, lags, valid)
        ok &= np.all(np.isfinite(Z), axis=1)
        A, B = XL[ok], Z[ok]
        sd = A.std(axis=0)
        A = (A - A.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        nmse, _ = linear_filter_cv(A, B - B.mean(axis=0), np.array(Q_SCALES), n_folds, gap)
        scores[",".join(map(str, lags))] = nmse
    best = min(scores, key=scores.get)
    return tuple(int(v) for v in best.split(",")), scores


def band_power(windows: np.ndarray, stage: FeatureStage) -> np.ndarray:
    """Log band power of padded windows.

    Parameters
    ----------
    windows : ndarray, shape (n_windows, n_channels, n_times)
        Padded windows (``stage.window_samples`` samples), model channels in order.
    stage : FeatureStage
        ``kind="bandpower"``.

    Returns
    -------
    X : ndarray, shape (n_windows, n_bands * n_channels)
        ``log(var(band-passed window) + 1e-12)``, band-major (names in ``stage.names``).
    """
    from neurodeck.decoders.epochs import bandpass_sos, bandpass_windows, n_samples

    n_pad = n_samples(stage.pad_s, stage.sfreq)
    out = [np.log(bandpass_windows(windows, bandpass_sos(stage.sfreq, lo, hi), n_pad)
                  .var(axis=-1) + 1e-12) for lo, hi in stage.bands]
    return np.concatenate(out, axis=1)


# ---------------------------------------------------------------------------------- bundles
def _version() -> str:
    from neurodeck.decoders.onnx import _version as v

    return v()


def save_continuous_bundle(
    filt: Any,
    out: str | Path,
    *,
    pipeline: str,
    stage: FeatureStage,
    targets: Sequence[str],
    hop_s: float,
    target_unit: str = "",
    classifier: str | Path | None = None,
    X_timing: np.ndarray | None = None,
    scores: dict[str, Any] | None = None,
) -> Path:
    """Write a fitted filter and its feature stage as a continuous bundle (JSON [+ ONNX]).

    Parameters
    ----------
    filt : KalmanFilter or DiscriminativeKalmanFilter
        Fitted on feature rows of ``stage``.
    out : path
        Bundle directory (created).
    pipeline : str
    stage : FeatureStage
    targets : sequence of str
        State names (e.g. ``["vx", "vy"]``).
    hop_s : float
        Seconds between two feature rows in training (the filter's time step).
    target_unit : str
    classifier : path or None
        Classifier bundle directory (``stage.kind == "classifier"``), copied into the bundle.
    X_timing : ndarray, shape (n_rows, n_features) or None
        Feature rows on which numpy and ONNX steps are timed to choose the DKF backend.
    scores : dict or None
        Training information stored as is.

    Returns
    -------
    path : Path
    """
    from neurodeck.decoders.dkf import DiscriminativeKalmanFilter
    from neurodeck.decoders.dkf.export import kf_to_dict, select_backend

    out = Path(out)
    targets = [str(t) for t in targets]
    if len(targets) != filt.n_states_:
        raise DecoderError(f"{len(targets)} target names {targets} for {filt.n_states_} states")
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neurodeck_version": _version(),
        "kind": "continuous",
        "pipeline": pipeline,
        "targets": targets,
        "target_unit": target_unit,
        "outputs": [*targets, *(f"var_{t}" for t in targets)],
        "features": stage.to_dict(),
        "unit": "microvolts",
        "hop_s": float(hop_s),
        "scores": scores or {},
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if isinstance(filt, DiscriminativeKalmanFilter):
        model = filt.to_onnx()
        (out / MODEL_FILE).write_bytes(model.SerializeToString())
        meta["filter"] = filt.to_dict()
        meta["regressor"] = filt.regressor
        timing_rows = X_timing if X_timing is not None else np.zeros((1, filt.n_features_in_))
        choice = select_backend(filt, model, timing_rows, n=200)
        meta["backend"] = choice.pop("backend")
        meta["step_timing_us"] = choice
        filt.use_onnx(None)
    else:
        meta["filter"] = kf_to_dict(filt)
        meta["regressor"] = "linear"
        meta["backend"] = "numpy"
        (out / MODEL_FILE).unlink(missing_ok=True)
    if stage.kind == "classifier":
        if classifier is None:
            raise DecoderError("classifier features need the classifier bundle directory")
        dst = out / FEATURES_DIR
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir()
        for name in ("model.json", "model.onnx"):
            shutil.copy2(Path(classifier) / name, dst / name)
    (out / SIDECAR_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    logger.info("continuous bundle %s written to %s (backend %s)", pipeline, out, meta["backend"])
    return out


def is_continuous_bundle(path: str | Path) -> bool:
    """True if ``path`` is a directory whose sidecar says it is a continuous bundle."""
    side = Path(path) / SIDECAR_FILE
    try:
        return json.loads(side.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _load_filter(path: Path, meta: dict[str, Any]) -> Any:
    from neurodeck.decoders.dkf import DiscriminativeKalmanFilter
    from neurodeck.decoders.dkf.export import kf_from_dict

    state = meta.get("filter")
    if not isinstance(state, dict):
        raise ModelBundleError(f"{path / SIDECAR_FILE}: 'filter' must be an object")
    if state.get("kind") == "KalmanFilter":
        return kf_from_dict(state)
    filt = DiscriminativeKalmanFilter.from_dict(state)
    onnx_path = path / MODEL_FILE
    if not onnx_path.is_file():
        raise ModelBundleError(f"{onnx_path} is missing; a DKF bundle needs its ONNX f(x), Q(x)")
    backend = meta.get("backend", "onnx")
    if backend == "numpy":
        import onnx

        filt.use_numpy_twin(onnx.load(str(onnx_path)))
    elif backend == "onnx":
        filt.use_onnx(str(onnx_path), warmup=20)
    else:
        raise ModelBundleError(f"'backend' is {backend!r}; expected 'onnx' or 'numpy'")
    return filt


# ---------------------------------------------------------------------------------- online
class ContinuousDecoder:
    """Decode a continuous state from windows with a continuous bundle (engine interface).

    Parameters
    ----------
    path : path
        Bundle directory (:func:`save_continuous_bundle`).
    sfreq_tol : float
        Relative tolerance when comparing the stream's rate with the model's.

    Attributes
    ----------
    labels : list of str
        Outputs: the targets, then ``var_<target>`` (posterior variances).
    filter : KalmanFilter or DiscriminativeKalmanFilter
        The online filter (its state is this decoder's state).
    """

    def __init__(self, path: str | Path, sfreq_tol: float = 1e-3) -> None:
        path = Path(path)
        side = path / SIDECAR_FILE
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelBundleError(f"cannot read {side}: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelBundleError(f"{side}: not a continuous model bundle (format {FORMAT!r})")
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise ModelBundleError(f"{side}: format_version {meta.get('format_version')} is newer "
                                   f"than supported ({FORMAT_VERSION})")
        self.path = path
        self.meta = meta
        self.stage = FeatureStage.from_dict(meta.get("features") or {})
        self.filter = _load_filter(path, meta)
        self.classifier: OnlineDecoder | None = None
        if self.stage.kind == "classifier":
            self.classifier = OnlineDecoder(path / FEATURES_DIR)
        self.sfreq_tol = sfreq_tol
        self.picks_: np.ndarray | None = None
        self.channel_match_: Any = None  # decoders.channels.ChannelMatch once a stream is checked
        self._history: list[np.ndarray] = []  # the last max(lags) + 1 feature rows (lags)
        self.filter.reset()

    # the engine's decoder interface ------------------------------------------------------
    @property
    def bundle(self) -> ContinuousDecoder:
        """This decoder (``.meta`` like a classifier bundle's, for front ends)."""
        return self

    @property
    def labels(self) -> list[str]:
        return [str(v) for v in self.meta["outputs"]]

    @property
    def targets(self) -> list[str]:
        return [str(v) for v in self.meta["targets"]]

    @property
    def ch_names(self) -> list[str]:
        if self.classifier is not None:
            return self.classifier.ch_names
        return list(self.stage.ch_names)

    @property
    def sfreq(self) -> float:
        return self.classifier.sfreq if self.classifier is not None else self.stage.sfreq

    @property
    def window_samples(self) -> int:
        if self.stage.kind == "table":
            raise DecoderError("this bundle was trained on a feature table: it filters feature "
                               "rows (decide_features) but cannot decode a stream's windows")
        if self.classifier is not None:
            return self.classifier.window_samples
        return self.stage.window_samples

    @property
    def pad_samples(self) -> int:
        from neurodeck.decoders.epochs import n_samples

        if self.classifier is not None:
            return self.classifier.pad_samples
        return n_samples(self.stage.pad_s, self.sfreq)

    @property
    def unit(self) -> str:
        return self.classifier.unit if self.classifier is not None else "microvolts"

    @property
    def calibration_amplitude(self) -> float | None:
        return None if self.classifier is None else self.classifier.calibration_amplitude

    def check_stream(self, ch_names: Sequence[str], sfreq: float,
                     mapping: dict[str, str] | None = None) -> np.ndarray:
        """Stream row of each model channel (the rules of :meth:`OnlineDecoder.check_stream`).

        Raises
        ------
        ChannelMismatchError
            Missing channels or another rate; DecoderError for a feature-table bundle.
        """
        from neurodeck.decoders.channels import match_channels
        from neurodeck.decoders.errors import ChannelMismatchError

        _ = self.window_samples  # a table bundle says it cannot decode a stream
        if self.classifier is not None:
            self.picks_ = self.classifier.check_stream(ch_names, sfreq, mapping)
            self.channel_match_ = self.classifier.channel_match_
            return self.picks_
        if sfreq is None or abs(float(sfreq) - self.sfreq) > self.sfreq_tol * self.sfreq:
            raise ChannelMismatchError(f"stream rate {sfreq} Hz differs from the model's "
                                       f"{self.sfreq} Hz; resample or retrain")
        match = match_channels(self.ch_names, [str(c) for c in ch_names], mapping)
        if not match.ok:
            raise ChannelMismatchError(
                f"model channels missing from the stream: {list(match.missing)}; pass a channel "
                "mapping (model name -> stream name) if they are named differently")
        self.channel_match_ = match
        self.picks_ = np.asarray(list(match.picks), dtype=int)
        return self.picks_

    def stream_picks(self, ch_names: Sequence[str], sfreq: float) -> np.ndarray:
        """Alias of :meth:`check_stream` without mapping (what ``app.engine`` calls)."""
        return self.check_stream(ch_names, sfreq)

    # features and filtering --------------------------------------------------------------
    def features(self, windows: np.ndarray) -> np.ndarray:
        """Feature rows of padded windows (n_windows, n_channels, n_times) -> (n_windows, n_features)."""
        W = self._check_batch(windows)
        if self.classifier is not None:
            return self.classifier.decide_batch(W)
        return band_power(W, self.stage)

    def reset(self) -> None:
        """Restart the filter from its stationary prior (and forget the feature history)."""
        self.filter.reset()
        self._history = []

    def _stacked(self, x: np.ndarray | None) -> np.ndarray:
        """Push this hop's feature row (``None``: no usable window) and return the filter input."""
        lags = self.stage.lags
        if lags == (0,):
            return np.full(len(self.stage.names), np.nan) if x is None else x
        row = np.full(len(self.stage.names), np.nan) if x is None else x
        self._history = [*self._history[-lags[-1]:], row]
        h = self._history
        return np.concatenate([h[max(len(h) - 1 - lag, 0)] for lag in lags])

    def _output(self, z: np.ndarray) -> np.ndarray:
        return np.concatenate([z, np.diag(self.filter.Sigma_)])

    def decide_features(self, x: np.ndarray) -> np.ndarray:
        """One filter step on one feature row (n_features,); NaN/inf rows only predict."""
        x = self._stacked(np.asarray(x, dtype=np.float64).ravel())
        if not np.all(np.isfinite(x)):
            return self._output(self.filter.predict_step())
        return self._output(self.filter.step(x))

    def decide(self, window: np.ndarray) -> np.ndarray:
        """Step the filter with one window (n_channels, n_times).

        Returns
        -------
        values : ndarray, shape (2 * n_states,)
            Posterior mean of each target, then its posterior variance.
        """
        return self.decide_features(self.features(np.asarray(window)[None])[0])

    def skip(self) -> np.ndarray:
        """No usable window this hop: predict without update (state and variances)."""
        self._stacked(None)
        return self._output(self.filter.predict_step())

    def decide_sequence(self, X: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Pseudo-online: filter consecutive feature rows from the stationary prior.

        The filter's online state is reset first and left at the end of the sequence; the result
        equals ``decide_features``/``skip`` row by row (invalid or non-finite rows only predict).

        Parameters
        ----------
        X : ndarray, shape (n_hops, n_features)
        valid : ndarray of bool, shape (n_hops,) or None

        Returns
        -------
        values : ndarray, shape (n_hops, 2 * n_states)
        """
        X = np.asarray(X, dtype=np.float64)
        ok = np.all(np.isfinite(X), axis=1)
        if valid is not None:
            ok &= np.asarray(valid, dtype=bool)
        self.reset()
        return np.array([self.decide_features(x) if k else self.skip()
                         for x, k in zip(X, ok, strict=True)]).reshape(len(X), len(self.labels))

    def _check_batch(self, windows: np.ndarray) -> np.ndarray:
        W = np.asarray(windows, dtype=float)
        n_ch = len(self.ch_names)
        if W.ndim != 3 or W.shape[1] != n_ch or W.shape[2] != self.window_samples:
            raise DecoderError(
                f"windows must have shape (n, {n_ch}, {self.window_samples}) (model channels "
                f"{self.ch_names[:4]}..., padding + window at {self.sfreq:g} Hz), got {W.shape}"
            )
        return W
