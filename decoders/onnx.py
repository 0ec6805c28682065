"""Model bundles: an ONNX head plus a JSON sidecar, never a pickle.

A bundle is a directory with two files:

``model.onnx``
    The head of the pipeline, run by onnxruntime: input ``"X"`` (float64 features, shape
    ``(n_windows, n_features)``), output ``"probabilities"`` ``(n_windows, n_classes)``.
    Logistic regression and SVM heads are converted with skl2onnx; LDA and MDM heads are small
    hand-built graphs (``sigmoid``/``softmax`` of the linear decision for LDA, because skl2onnx's
    LDA converter does not reproduce scikit-learn >= 1.8's ``predict_proba``; ``softmax(-d²)`` of
    the Riemannian distances for MDM, the distances being computed by the feature stage). A
    two-class sigmoid-calibrated linear SVM (``CalibratedClassifierCV(SVC(kernel="linear"),
    ensemble=False)``, the ``ts-svm`` head) is a linear head too:
    ``p1 = expit(-(a * (w·x + b_svm) + b))``; with more classes skl2onnx's converter is used.
    For ``"kind": "raw-window"`` bundles the ONNX model is the user's (e.g. a deep net) and takes
    the band-passed window ``(n_windows, n_channels, n_times)`` in float32.

``model.json``
    The sidecar: format version, neurodeck version, kind, pipeline name, channels, sampling rate,
    unit, window length and filter padding, band, decoder config, classes, the **feature stage**
    (every step before the head: its class from an allow-list, its parameters and its learned
    state as JSON arrays — tangent-space reference, CSP filters, class means, selected features...),
    training scores, the ONNX parity measured at save time and the creation time.

Loading (:func:`load_bundle`) reads JSON and ONNX only: the feature steps are rebuilt by calling
the allow-listed classes with the stored parameters and setting the stored arrays, so the online
feature stage runs *the same code* as training. Any malformed key raises
:class:`~decoders.errors.ModelBundleError` naming the key and the bad value.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from neurodeck.decoders.calibration import STATISTIC, amplitude_scale
from neurodeck.decoders.errors import ModelBundleError

logger = logging.getLogger(__name__)

FORMAT = "neurodeck-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
SIDECAR_FILE = "model.json"
PARITY_TOL = 1e-5

#: Classes that a sidecar may name as feature steps (nothing else is ever instantiated).
ALLOWED_STEPS: frozenset[str] = frozenset(
    {
        "neurodeck.decoders.epochs.BandPass",
        "neurodeck.decoders.epochs.PickChannels",
        "neurodeck.decoders.features.psd.PSD",
        "neurodeck.decoders.features.connectivity.NodeStrength",
        "neurodeck.decoders.features.covariance.AugmentedCovariances",
        "neurodeck.decoders.selection.FeatureSelector",
        "neurodeck.decoders.onnx.RiemannDistances",
        "neurodeck.decoders.pipelines.OASCovariances",
        "neurodeck.decoders.pipelines.FilterBankTangentSpace",
        "neurodeck.decoders.transfer.Recentering",
        "pyriemann.estimation.Covariances",
        "pyriemann.spatialfilters.CSP",
        "pyriemann.tangentspace.TangentSpace",
        "pyriemann.tangentspace.FGDA",
        "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
        "sklearn.preprocessing._data.StandardScaler",
    }
)


class RiemannDistances(TransformerMixin, BaseEstimator):
    """Distances of SPD matrices to class means (the feature stage of an MDM head).

    Uses :func:`pyriemann.utils.distance.distance`, the function ``MDM`` uses, so the ONNX head
    ``softmax(-d²)`` reproduces ``MDM.predict_proba``.

    Parameters
    ----------
    metric : str
        pyriemann distance metric.

    Attributes
    ----------
    covmeans_ : ndarray, shape (n_classes, n_channels, n_channels)
    """

    def __init__(self, metric: str = "riemann") -> None:
        self.metric = metric

    def fit(self, X, y=None):  # noqa: ARG002
        raise ModelBundleError("RiemannDistances is built from a fitted MDM, not fitted")

    def transform(self, X):
        """X : ndarray, shape (n, c, c) -> distances, shape (n, n_classes)."""
        from pyriemann.geometry.distance import distance

        return np.concatenate([distance(X, m, self.metric) for m in self.covmeans_], axis=1)


# ---------------------------------------------------------------- JSON encoding of estimator state


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int | float):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "US":
            return {"__ndarray__": value.tolist(), "dtype": "str", "shape": list(value.shape)}
        if value.dtype.kind in "biuf":
            return {
                "__ndarray__": value.ravel().tolist(),
                "dtype": str(value.dtype),
                "shape": list(value.shape),
            }
        raise ModelBundleError(f"cannot store {where}: array of dtype {value.dtype}")
    if isinstance(value, list | tuple):
        return {"__seq__": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)],
                "tuple": isinstance(value, tuple)}
    if isinstance(value, dict):
        return {"__dict__": {str(k): _encode(v, f"{where}.{k}") for k, v in value.items()}}
    if isinstance(value, BaseEstimator):
        return {"__estimator__": encode_estimator(value, where)}
    raise ModelBundleError(f"cannot store {where}: unsupported value of type {type(value).__name__}")


def _decode(value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        dtype = value.get("dtype")
        shape = value.get("shape")
        if not isinstance(shape, list):
            raise ModelBundleError(f"{where}: array without a 'shape' list: {shape!r}")
        if dtype == "str":
            arr = np.array(value["__ndarray__"], dtype=str)
            return arr.reshape(shape) if arr.size else arr
        try:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(dtype)).reshape(shape)
        except (TypeError, ValueError) as exc:
            raise ModelBundleError(f"{where}: bad array (dtype {dtype!r}, shape {shape!r}): {exc}") from exc
    if "__seq__" in value:
        items = [_decode(v, f"{where}[{i}]") for i, v in enumerate(value["__seq__"])]
        return tuple(items) if value.get("tuple") else items
    if "__dict__" in value:
        return {k: _decode(v, f"{where}.{k}") for k, v in value["__dict__"].items()}
    if "__estimator__" in value:
        return decode_estimator(value["__estimator__"], where)
    raise ModelBundleError(f"{where}: unknown encoded value with keys {sorted(value)}")


def encode_estimator(est: BaseEstimator, where: str = "step") -> dict[str, Any]:
    """Parameters and learned state of a fitted estimator as JSON-able data.

    Raises
    ------
    ModelBundleError
        If the class is not in :data:`ALLOWED_STEPS` or a value cannot be stored.
    """
    name = _qualname(est)
    if name not in ALLOWED_STEPS:
        raise ModelBundleError(f"{where}: {name} is not an allowed feature step ({sorted(ALLOWED_STEPS)})")
    params = est.get_params(deep=False)
    state = {k: v for k, v in vars(est).items() if k not in params}
    return {
        "class": name,
        "params": {k: _encode(v, f"{where}.{k}") for k, v in params.items()},
        "state": {k: _encode(v, f"{where}.{k}") for k, v in state.items()},
    }


def decode_estimator(d: Any, where: str = "step") -> BaseEstimator:
    """Rebuild an allow-listed estimator from :func:`encode_estimator` data (no unpickling)."""
    if not isinstance(d, dict) or not {"class", "params", "state"} <= set(d):
        raise ModelBundleError(f"{where}: expected an object with 'class', 'params', 'state', got {d!r:.200}")
    name = d["class"]
    if isinstance(name, str) and name.startswith("decoders."):
        name = f"neurodeck.{name}"  # bundles saved before the package was named neurodeck
    if name not in ALLOWED_STEPS:
        raise ModelBundleError(f"{where}.class: {name!r} is not an allowed feature step")
    module, _, qual = name.rpartition(".")
    cls = getattr(importlib.import_module(module), qual)
    params = {k: _decode(v, f"{where}.params.{k}") for k, v in d["params"].items()}
    try:
        est = cls(**params)
    except TypeError as exc:
        raise ModelBundleError(f"{where}.params: {exc}") from exc
    for k, v in d["state"].items():
        if not (isinstance(k, str) and k.isidentifier() and not k.startswith("__")):
            raise ModelBundleError(f"{where}.state: key {k!r} invalid; expected an attribute name "
                                   "(no dunder names such as '__class__')")
        setattr(est, k, _decode(v, f"{where}.state.{k}"))
    return est


# ------------------------------------------------------------------------------- ONNX heads


def _unwrap(est: Any) -> Any:
    """The fitted estimator inside a GridSearchCV (or the estimator itself)."""
    return getattr(est, "best_estimator_", est)


def split_pipeline(pipeline: Any) -> tuple[list[tuple[str, BaseEstimator]], Any]:
    """Flatten a fitted pipeline into (feature steps, head estimator).

    Grid searches are replaced by their refitted best estimator; an MDM head becomes a
    :class:`RiemannDistances` feature step plus an MDM head.
    """
    from sklearn.pipeline import Pipeline

    pipeline = _unwrap(pipeline)
    if not isinstance(pipeline, Pipeline):
        raise ModelBundleError(f"expected a fitted scikit-learn Pipeline, got {type(pipeline).__name__}")
    steps: list[tuple[str, Any]] = []

    def flatten(p, prefix=""):
        for name, est in p.steps:
            est = _unwrap(est)
            if isinstance(est, Pipeline):
                flatten(est, f"{prefix}{name}.")
            else:
                steps.append((f"{prefix}{name}", est))

    flatten(pipeline)
    *features, (head_name, head) = steps
    from pyriemann.classification import MDM

    if isinstance(head, MDM):
        dist = RiemannDistances(metric=head._metric_dist if hasattr(head, "_metric_dist") else head.metric)
        dist.covmeans_ = np.asarray(head.covmeans_)
        features.append((f"{head_name}.distances", dist))
    return features, head


def _linear_head_onnx(coef: np.ndarray, intercept: np.ndarray, n_features: int, negsq: bool = False):
    """ONNX graph: probabilities from a linear decision (or from -d² for MDM)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    if negsq:
        n_classes = n_features
        nodes += [helper.make_node("Mul", ["X", "X"], ["sq"]), helper.make_node("Neg", ["sq"], ["dec"])]
        nodes.append(helper.make_node("Softmax", ["dec"], ["probabilities"], axis=1))
    else:
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(intercept, dtype=np.float64))
        inits += [numpy_helper.from_array(coef.T.copy(), "W"), numpy_helper.from_array(intercept, "b")]
        nodes += [helper.make_node("MatMul", ["X", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["dec"])]
        if coef.shape[0] == 1:
            n_classes = 2
            nodes += [
                helper.make_node("Sigmoid", ["dec"], ["p1"]),
                helper.make_node("Neg", ["p1"], ["np1"]),
                helper.make_node("Add", ["np1", "one"], ["p0"]),
                helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1),
            ]
            inits.append(numpy_helper.from_array(np.array([1.0]), "one"))
        else:
            n_classes = coef.shape[0]
            nodes.append(helper.make_node("Softmax", ["dec"], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes,
        "neurodeck_head",
        [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, n_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, n_classes])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="neurodeck")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _calibrated_head_onnx(head: Any, n_features: int):
    """ONNX model of a fitted ``CalibratedClassifierCV`` head (``ensemble=False``).

    Two classes, sigmoid calibration of a linear decision ``d = w·x + b_svm`` (linear SVM, or any
    estimator with ``coef_`` / ``intercept_``): scikit-learn's ``_SigmoidCalibration`` gives
    ``p1 = expit(-(a * d + b))`` and ``p0 = 1 - p1``, i.e. a linear head with coefficients
    ``-a w`` and intercept ``-(a b_svm + b)``. Anything else goes through skl2onnx's converter.
    """
    cal = getattr(head, "calibrated_classifiers_", None)
    if not cal or len(cal) != 1:
        n = "no" if not cal else len(cal)
        raise ModelBundleError(
            f"CalibratedClassifierCV head with {n} calibrated classifiers: only ensemble=False "
            "(one classifier refitted on all the data) can be exported"
        )
    est, calibrators = cal[0].estimator, cal[0].calibrators
    classes = np.asarray(head.classes_)
    coef = getattr(est, "coef_", None)  # None for a non-linear SVC (its coef_ raises)
    if coef is not None:
        coef = np.asarray(coef.toarray() if hasattr(coef, "toarray") else coef, dtype=np.float64)
    if (
        len(classes) == 2
        and head.method == "sigmoid"
        and len(calibrators) == 1
        and coef is not None
        and coef.shape == (1, n_features)
        and hasattr(calibrators[0], "a_")
        and hasattr(calibrators[0], "b_")
    ):
        a, b = float(calibrators[0].a_), float(calibrators[0].b_)
        b_svm = float(np.ravel(est.intercept_)[0])
        return _linear_head_onnx(-a * coef, np.array([-(a * b_svm + b)]), n_features)
    try:
        return _skl2onnx_head(head, n_features)
    except Exception as exc:  # skl2onnx raises many exception types
        raise ModelBundleError(
            f"no ONNX export for a CalibratedClassifierCV head over {type(est).__name__} with "
            f"{len(classes)} classes and method={head.method!r}: skl2onnx failed ({exc})"
        ) from exc


def _skl2onnx_head(head: Any, n_features: int):
    """skl2onnx conversion of a fitted classifier head (double input ``X``, plain ``probabilities``)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    with warnings.catch_warnings():
        # skl2onnx's SVC converter reads SVC.probA_/probB_, deprecated in scikit-learn 1.9
        warnings.simplefilter("ignore", FutureWarning)
        return convert_sklearn(
            head,
            initial_types=[("X", DoubleTensorType([None, n_features]))],
            options={id(head): {"zipmap": False}},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )


def head_to_onnx(head: Any, n_features: int):
    """ONNX model of a fitted head: input ``X`` (double, (n, n_features)), output ``probabilities``."""
    from pyriemann.classification import MDM
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    if isinstance(head, MDM):
        return _linear_head_onnx(None, None, n_features, negsq=True)
    if isinstance(head, LinearDiscriminantAnalysis):
        return _linear_head_onnx(head.coef_, head.intercept_, n_features)
    if isinstance(head, CalibratedClassifierCV):
        return _calibrated_head_onnx(head, n_features)
    if isinstance(head, LogisticRegression | SVC):
        return _skl2onnx_head(head, n_features)
    raise ModelBundleError(f"no ONNX export for a {type(head).__name__} head")


# ------------------------------------------------------------------------------- the bundle


@dataclass
class ModelBundle:
    """A loaded model: feature stage (numpy) + onnxruntime head.

    Attributes
    ----------
    path : Path
    meta : dict
        The validated sidecar.
    features : list of (str, estimator)
        Rebuilt feature steps (empty for raw-window bundles except the band-pass).
    session : onnxruntime.InferenceSession
        Created once at load and warmed up.
    """

    path: Path
    meta: dict
    features: list
    session: Any
    input_name: str
    output_name: str
    input_dtype: Any

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def ch_names(self) -> list[str]:
        return list(self.meta["ch_names"])

    @property
    def sfreq(self) -> float:
        return float(self.meta["sfreq"])

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.meta["classes"]]

    @property
    def window_samples(self) -> int:
        return int(self.meta["window_samples"])

    @property
    def pad_samples(self) -> int:
        """Leading samples of each window that only settle the band-pass (0 if none)."""
        from neurodeck.decoders.epochs import n_samples

        return n_samples(float(self.meta.get("pad_s", 0.0)), self.sfreq)

    def transform(self, X: np.ndarray, *, adapt: bool = False) -> np.ndarray:
        """Feature stage: padded windows (n, n_channels, n_times) -> head input.

        ``adapt=True`` (the online decoder): adaptive steps update their state causally with
        the windows, in order (see :func:`decoders.transfer.transform_steps`).
        """
        from neurodeck.decoders.transfer import transform_steps

        X = transform_steps(self.features, X, adapt=adapt)
        if self.kind == "pipeline":
            X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        return np.ascontiguousarray(X, dtype=self.input_dtype)

    def run_head(self, F: np.ndarray) -> np.ndarray:
        """onnxruntime head: features -> outputs (n, n_outputs) as float64."""
        out = self.session.run([self.output_name], {self.input_name: F})[0]
        return np.asarray(out, dtype=np.float64).reshape(len(F), -1)

    def predict_proba(self, X: np.ndarray, *, adapt: bool = False) -> np.ndarray:
        return self.run_head(self.transform(X, adapt=adapt))

    @property
    def adaptive_steps(self) -> list:
        """Feature steps whose state follows the incoming windows (e.g. online re-centering)."""
        return [s for _, s in self.features if getattr(s, "adapt", False) is True
                and hasattr(s, "adapt_transform")]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("neurodeck")
    except Exception:  # noqa: BLE001
        return "unknown"


def save_bundle(
    pipeline: Any,
    config: Any,
    path: str | Path,
    *,
    ch_names: Sequence[str],
    sfreq: float,
    X_check: np.ndarray | None = None,
    scores: dict | None = None,
    unit: str = "microvolts",
) -> Path:
    """Write a fitted pipeline as a bundle directory (``model.onnx`` + ``model.json``).

    Parameters
    ----------
    pipeline : sklearn Pipeline (fitted)
        A pipeline from :func:`decoders.pipelines.make_pipeline` (or any pipeline made of
        allow-listed feature steps and an LDA / LR / SVC / calibrated-SVC / MDM head).
    config : DecoderConfig
    path : str or Path
        Directory to create (may exist; its model files are overwritten).
    ch_names : sequence of str
        Channels of the windows the pipeline takes, in order.
    sfreq : float
    X_check : ndarray, shape (n, n_channels, n_times), optional
        Windows on which the ONNX head is checked against ``pipeline.predict_proba`` (raises if
        the difference exceeds 1e-5; the measured maximum is stored in the sidecar).
    scores : dict, optional
        Training / cross-validation scores to record.
    unit : str
        Unit of the windows (the online engine converts a stream to it). The sidecar also keeps
        the amplitude of ``X_check`` (:func:`decoders.calibration.amplitude_scale`): a live stream
        of unknown unit is compared with it.
    """
    import onnx

    from neurodeck.decoders.epochs import BandPass

    path = Path(path)
    features, head = split_pipeline(pipeline)
    encoded = [{"name": n, **encode_estimator(est, n)} for n, est in features]
    classes = [c.item() if isinstance(c, np.generic) else c for c in np.asarray(head.classes_)]
    window_samples = config.window_samples(sfreq)
    if X_check is None:
        raise ModelBundleError("X_check (a few training windows) is needed to size and check the head")
    X_check = np.asarray(X_check, dtype=float)
    if X_check.shape[1:] != (len(ch_names), window_samples):
        raise ModelBundleError(
            f"X_check windows have shape {X_check.shape[1:]}, expected ({len(ch_names)}, {window_samples})"
        )
    F = X_check
    for _, est in features:
        F = est.transform(F)
    F = np.asarray(F, dtype=np.float64).reshape(len(F), -1)
    model = head_to_onnx(head, F.shape[1])
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path / MODEL_FILE))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neurodeck_version": _version(),
        "kind": "pipeline",
        "pipeline": config.pipeline,
        "ch_names": [str(c) for c in ch_names],
        "sfreq": float(sfreq),
        "unit": unit,
        "window_samples": int(window_samples),
        "window_s": config.window_seconds(),
        "pad_s": config.pad,
        "band": list(config.band),
        # the rate the features work at (the band-pass's decimation; absent in older bundles)
        "working_sfreq": float(sfreq) / next((est.q for _, est in features
                                               if isinstance(est, BandPass)), 1),
        "config": config.to_dict(),
        "classes": [str(c) for c in classes],
        "outputs": "probabilities",
        "n_features": int(F.shape[1]),
        "head": type(head).__name__,
        "feature_steps": encoded,
        "training_scores": scores or {},
        "calibration": {"amplitude": amplitude_scale(X_check), "statistic": STATISTIC,
                        "n_windows": len(X_check)},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    (path / SIDECAR_FILE).write_text(json.dumps(meta, indent=1))
    bundle = load_bundle(path)
    ref = np.asarray(pipeline.predict_proba(X_check))
    got = bundle.predict_proba(X_check)
    err = float(np.max(np.abs(ref - got)))
    if err > PARITY_TOL:
        raise ModelBundleError(f"ONNX head differs from scikit-learn by {err:.2e} (> {PARITY_TOL})")
    meta["onnx_parity_max_abs"] = err
    (path / SIDECAR_FILE).write_text(json.dumps(meta, indent=1))
    logger.info("saved %s bundle to %s (ONNX parity %.1e)", config.pipeline, path, err)
    return path


def _session_options(ort):
    """One thread, no spinning: a head is a few small ops per window. The default intra-op pool
    (one thread per core, spinning after each run) cost 150 us wall per 10 us run on this 2-core
    machine and kept a second core busy that the acquisition thread needs."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return so


_REQUIRED = {
    "format": str,
    "format_version": int,
    "kind": str,
    "ch_names": list,
    "sfreq": (int, float),
    "window_samples": int,
    "classes": list,
}


def _validate(meta: Any, path: Path) -> dict:
    src = path / SIDECAR_FILE
    if not isinstance(meta, dict):
        raise ModelBundleError(f"{src}: expected a JSON object, got {type(meta).__name__}")
    for key, typ in _REQUIRED.items():
        if key not in meta:
            raise ModelBundleError(f"{src}: missing key {key!r}")
        if not isinstance(meta[key], typ) or isinstance(meta[key], bool):
            raise ModelBundleError(f"{src}: key {key!r} has bad value {meta[key]!r}; expected {typ}")
    if meta["format"] != FORMAT:
        raise ModelBundleError(f"{src}: 'format' is {meta['format']!r}, expected {FORMAT!r}")
    if meta["format_version"] > FORMAT_VERSION:
        raise ModelBundleError(
            f"{src}: 'format_version' {meta['format_version']} is newer than supported ({FORMAT_VERSION})"
        )
    if meta["kind"] not in ("pipeline", "raw-window"):
        raise ModelBundleError(f"{src}: 'kind' is {meta['kind']!r}, expected 'pipeline' or 'raw-window'")
    if not meta["ch_names"] or not all(isinstance(c, str) for c in meta["ch_names"]):
        raise ModelBundleError(f"{src}: 'ch_names' must be a non-empty list of strings, got {meta['ch_names']!r:.200}")
    if len(set(meta["ch_names"])) != len(meta["ch_names"]):
        raise ModelBundleError(f"{src}: 'ch_names' has duplicates")
    if not 0 < meta["sfreq"] <= 1e6:  # also NaN and Infinity (json reads both)
        raise ModelBundleError(f"{src}: 'sfreq' must be > 0 and <= 1e6 Hz, got {meta['sfreq']!r}")
    if meta["window_samples"] < 2:
        raise ModelBundleError(f"{src}: 'window_samples' must be >= 2, got {meta['window_samples']!r}")
    if meta["kind"] == "pipeline":
        if not isinstance(meta.get("feature_steps"), list):
            raise ModelBundleError(f"{src}: 'feature_steps' must be a list, got {meta.get('feature_steps')!r:.100}")
        if not isinstance(meta.get("n_features"), int):
            raise ModelBundleError(f"{src}: 'n_features' must be an int, got {meta.get('n_features')!r}")
    band = meta.get("band")
    if band is not None and not (
        isinstance(band, list) and len(band) == 2 and all(isinstance(b, int | float) for b in band)
        and 0 < band[0] < band[1] < meta["sfreq"] / 2
    ):
        raise ModelBundleError(f"{src}: 'band' must be [low, high] Hz below Nyquist or null, got {band!r}")
    if not meta["classes"] and meta.get("outputs", "probabilities") == "probabilities":
        raise ModelBundleError(f"{src}: 'classes' must list the output labels")
    return meta


def load_bundle(path: str | Path, *, warmup: bool = True) -> ModelBundle:
    """Load a bundle directory (JSON + ONNX only; nothing is unpickled).

    Raises
    ------
    ModelBundleError
        Missing files, malformed sidecar (naming the key and value), or ONNX inputs/outputs that
        do not match the sidecar.
    """
    import onnxruntime as ort

    from neurodeck.decoders.epochs import BandPass

    path = Path(path)
    if not path.is_dir():
        raise ModelBundleError(f"model bundle {path} is not a directory")
    for fname in (SIDECAR_FILE, MODEL_FILE):
        if not (path / fname).is_file():
            raise ModelBundleError(f"model bundle {path} has no {fname}")
    try:
        meta = json.loads((path / SIDECAR_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelBundleError(f"{path / SIDECAR_FILE}: not valid JSON: {exc}") from exc
    meta = _validate(meta, path)
    n_ch, n_t = len(meta["ch_names"]), meta["window_samples"]
    try:
        session = ort.InferenceSession(str(path / MODEL_FILE), _session_options(ort),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelBundleError(f"{path / MODEL_FILE}: onnxruntime cannot load it: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelBundleError(f"{path / MODEL_FILE}: expected 1 input, the model has {[i.name for i in inputs]}")
    inp = inputs[0]
    outputs = [o.name for o in session.get_outputs()]
    out_name = meta.get("output_name") or ("probabilities" if "probabilities" in outputs else outputs[-1])
    if out_name not in outputs:
        raise ModelBundleError(f"{path / SIDECAR_FILE}: 'output_name' {out_name!r} not in ONNX outputs {outputs}")
    dtype = {"tensor(double)": np.float64, "tensor(float)": np.float32}.get(inp.type)
    if dtype is None:
        raise ModelBundleError(f"{path / MODEL_FILE}: input type {inp.type} unsupported (float or double)")
    if meta["kind"] == "pipeline":
        features = [
            (str(s.get("name", f"step{i}")) if isinstance(s, dict) else f"step{i}",
             decode_estimator(s, f"feature_steps[{i}]"))
            for i, s in enumerate(meta["feature_steps"])
        ]
        expected = [meta["n_features"]]
        got = list(inp.shape[1:])
    else:
        features = []
        pad = float(meta.get("pad_s", 0.0))
        if meta.get("band") is not None:
            # bundles written before 'filter_passes' existed were filtered with one pass
            features.append(("bandpass", BandPass(meta["sfreq"], meta["band"][0], meta["band"][1],
                                                   int(meta.get("filter_order", 4)), pad,
                                                   int(meta.get("filter_passes", 1)))))
        n_t = n_t - int(round(pad * meta["sfreq"])) if meta.get("band") is not None else n_t
        expected = [n_ch, n_t]
        got = list(inp.shape[1:])
    if len(got) != len(expected) or any(isinstance(g, int) and g != e for g, e in zip(got, expected)):
        raise ModelBundleError(
            f"{path / MODEL_FILE}: ONNX input {inp.name!r} has shape {inp.shape}, but the sidecar "
            f"implies (n, {', '.join(map(str, expected))})"
        )
    bundle = ModelBundle(path, meta, features, session, inp.name, out_name, dtype)
    if warmup:
        try:
            out = bundle.predict_proba(np.zeros((1, n_ch, meta["window_samples"])) + 1e-3 *
                                       np.random.default_rng(0).standard_normal((1, n_ch, meta["window_samples"])))
        except Exception as exc:  # noqa: BLE001
            raise ModelBundleError(f"model bundle {path}: warm-up inference failed: {exc}") from exc
        if meta.get("outputs", "probabilities") == "probabilities" and out.shape[1] != len(meta["classes"]):
            raise ModelBundleError(
                f"{path / MODEL_FILE}: the model outputs {out.shape[1]} values but the sidecar "
                f"lists {len(meta['classes'])} classes {meta['classes']}"
            )
    return bundle
