"""Model bundles: ONNX parity for every pipeline, JSON-only loading, clear sidecar errors."""
from __future__ import annotations

import json
import pickle
import shutil
import warnings

import numpy as np
import pytest

from neurodeck.decoders.errors import ModelBundleError
from neurodeck.decoders.onnx import MODEL_FILE, SIDECAR_FILE, load_bundle, save_bundle
from neurodeck.decoders.pipelines import PIPELINES, DecoderConfig
from tests.decoders.test_pipelines import load_s001

# small grids / fixed (order, lag) keep the test fast; the full searches run in `neurodeck evaluate`
FAST = {
    "acm-ts-svm-grid": {"search__param_grid": {"acm__order": [2, 3], "acm__lag": [1],
                                               "svm__estimator__C": [1.0]}},
    "acm-ts-svm": {"acm__order": 2, "acm__lag": 2, "svm__param_grid": {"estimator__C": [1.0]}},
    "acm-mdm": {"acm__order": 2, "acm__lag": 2},
}


class _Fitted(dict):
    """name -> (pipeline, config, bundle dir), each pipeline fitted on S001 (16 channels) when a
    test first asks for it: xdist spreads this module's tests over workers, and fitting every
    pipeline up front (~9 s CPU) was repeated on each worker that ran one of them."""

    def __init__(self, root):
        super().__init__()
        self.root = root

    def __missing__(self, name):
        X, y, ch, sf, _ = load_s001()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            cfg = DecoderConfig(pipeline=name, overrides=FAST.get(name, {}))
            pipe = cfg.build(sf, ch).fit(X, y)
            path = save_bundle(pipe, cfg, self.root / name, ch_names=ch, sfreq=sf,
                               X_check=X[:12], scores={"note": "test"})
        self[name] = (pipe, cfg, path)
        return self[name]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    return _Fitted(tmp_path_factory.mktemp("bundles"))


@pytest.mark.parametrize("name", list(PIPELINES))
def test_onnx_head_matches_scikit_learn(fitted, name):
    X, y, ch, sf, _ = load_s001()
    pipe, cfg, path = fitted[name]
    bundle = load_bundle(path)
    ref = pipe.predict_proba(X)
    got = bundle.predict_proba(X)
    assert got.shape == (len(X), 2)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    meta = bundle.meta
    assert meta["pipeline"] == name and meta["classes"] == ["left_hand", "right_hand"]
    assert meta["ch_names"] == ch and meta["sfreq"] == sf
    assert meta["window_samples"] == X.shape[2] and meta["band"] == [8.0, 32.0]
    assert meta["onnx_parity_max_abs"] <= 1e-5
    assert meta["training_scores"] == {"note": "test"}


def _calibrated_svm(X, y, ensemble=False):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import SVC

    return CalibratedClassifierCV(
        SVC(kernel="linear", C=0.3), method="sigmoid", ensemble=ensemble,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X, y)


def _run_onnx(model, X):
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["probabilities"], {"X": X})[0]


def test_calibrated_svm_head_is_a_linear_head_with_the_calibrated_probabilities():
    """Two classes: p1 = expit(-(a (w·x + b_svm) + b)) exported as MatMul/Add/Sigmoid."""
    from scipy.special import expit

    from neurodeck.decoders.onnx import head_to_onnx

    rng = np.random.default_rng(1)
    y = np.repeat(["left_hand", "right_hand"], 30)
    X = rng.standard_normal((60, 6)) + 0.8 * (y == "right_hand")[:, None] * np.linspace(1, -1, 6)
    head = _calibrated_svm(X, y)
    ref = head.predict_proba(X)
    model = head_to_onnx(head, 6)
    assert sorted({n.op_type for n in model.graph.node}) == ["Add", "Concat", "MatMul", "Neg", "Sigmoid"]
    got = _run_onnx(model, X)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    # the check above can tell a wrong conversion: a sign or a term off moves p by far more
    cal = head.calibrated_classifiers_[0]
    a, b = cal.calibrators[0].a_, cal.calibrators[0].b_
    d = cal.estimator.decision_function(X)
    assert a < -0.5 and abs(b) > 1e-3 and np.ptp(ref[:, 1]) > 0.5
    for wrong in (expit(a * d + b), expit(-(a * d - b)), expit(-a * d), expit(d)):
        assert np.max(np.abs(wrong - ref[:, 1])) > 1e-3


def test_calibrated_svm_head_with_three_classes_goes_through_skl2onnx():
    from neurodeck.decoders.onnx import head_to_onnx

    rng = np.random.default_rng(2)
    y = np.repeat(["a", "b", "c"], 25)
    X = rng.standard_normal((75, 5))
    X[:, 0] += (y == "b") * 1.5
    X[:, 1] += (y == "c") * 1.5
    head = _calibrated_svm(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # our export path must not warn
        model = head_to_onnx(head, 5)
    np.testing.assert_allclose(_run_onnx(model, X), head.predict_proba(X), atol=1e-5, rtol=0)


def test_calibrated_head_with_an_ensemble_is_a_clear_error():
    from neurodeck.decoders.onnx import head_to_onnx

    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 20)
    X = rng.standard_normal((40, 4)) + y[:, None]
    with pytest.raises(ModelBundleError, match="3 calibrated classifiers: only ensemble=False"):
        head_to_onnx(_calibrated_svm(X, y, ensemble=True), 4)


def test_svm_bundles_export_the_calibrated_head_as_a_linear_graph(fitted):
    import onnx

    for name in ("ts-svm", "acm-ts-svm"):
        path = fitted[name][2]
        meta = json.loads((path / SIDECAR_FILE).read_text())
        assert meta["head"] == "CalibratedClassifierCV"
        ops = {n.op_type for n in onnx.load(str(path / MODEL_FILE)).graph.node}
        assert ops == {"Add", "Concat", "MatMul", "Neg", "Sigmoid"}


def test_sidecar_holds_the_learned_state_as_json(fitted):
    meta = json.loads((fitted["ts-lr"][2] / SIDECAR_FILE).read_text())
    ts = next(s for s in meta["feature_steps"] if s["class"].endswith("TangentSpace"))
    ref = ts["state"]["reference_"]
    assert ref["shape"] == [16, 16] and len(ref["__ndarray__"]) == 256
    psd = json.loads((fitted["psd-lda"][2] / SIDECAR_FILE).read_text())
    sel = next(s for s in psd["feature_steps"] if s["class"].endswith("FeatureSelector"))
    assert len(sel["state"]["selected_"]["__seq__"]) == 10
    assert sorted(p.name for p in fitted["mdm"][2].iterdir()) == [SIDECAR_FILE, MODEL_FILE]


def test_filter_bank_and_filter_passes_are_stored_and_old_bundles_keep_one_pass(fitted, tmp_path):
    X, *_ = load_s001()
    meta = json.loads((fitted["fbts-lr"][2] / SIDECAR_FILE).read_text())
    fb = meta["feature_steps"][0]
    assert fb["class"] == "neurodeck.decoders.pipelines.FilterBankTangentSpace"
    assert len(fb["state"]["tangent_spaces_"]["__seq__"]) == 7
    assert fb["params"]["passes"] == 2
    # a bundle written before 'passes' existed was filtered with one pass and must stay so
    src = fitted["ts-lr"][2]
    meta = json.loads((src / SIDECAR_FILE).read_text())
    bp = meta["feature_steps"][0]
    assert bp["class"] == "neurodeck.decoders.epochs.BandPass" and bp["params"].pop("passes") == 2
    dst = tmp_path / "old"
    shutil.copytree(src, dst)
    (dst / SIDECAR_FILE).write_text(json.dumps(meta))
    old = load_bundle(dst)
    assert old.features[0][1].passes == 1
    assert not np.allclose(old.predict_proba(X[:5]), load_bundle(src).predict_proba(X[:5]))


def test_loading_never_unpickles(fitted, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a bundle must never be unpickled")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(np, "load", boom)
    X, *_ = load_s001()
    for name in ("fgmdm", "psd-lda", "acm-ts-svm"):
        assert load_bundle(fitted[name][2]).predict_proba(X[:2]).shape == (2, 2)


def _copy(fitted, name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(fitted[name][2], dst)
    return dst, json.loads((dst / SIDECAR_FILE).read_text())


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.pop("sfreq"), "missing key 'sfreq'"),
        (lambda m: m.update(sfreq="fast"), "key 'sfreq' has bad value 'fast'"),
        (lambda m: m.update(kind="pickle"), "'kind' is 'pickle'"),
        (lambda m: m.update(format="other"), "'format' is 'other'"),
        (lambda m: m.update(ch_names=[]), "'ch_names' must be a non-empty list"),
        (lambda m: m.update(band=[8, 500]), "'band' must be"),
        (lambda m: m["feature_steps"][1].update({"class": "os.system"}), "'os.system' is not an allowed"),
        (lambda m: m.update(n_features=7), "ONNX input 'X' has shape .* sidecar implies \\(n, 7\\)"),
        (lambda m: m.update(classes=["a", "b", "c"]), "outputs 2 values but the sidecar lists 3"),
    ],
)
def test_bad_sidecar_is_a_clear_error(fitted, tmp_path, edit, match):
    path, meta = _copy(fitted, "ts-lr", tmp_path)
    edit(meta)
    (path / SIDECAR_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match=match):
        load_bundle(path)


def test_missing_files_and_broken_json(fitted, tmp_path):
    with pytest.raises(ModelBundleError, match="not a directory"):
        load_bundle(tmp_path / "nope")
    path, _ = _copy(fitted, "mdm", tmp_path)
    (path / SIDECAR_FILE).write_text("{not json")
    with pytest.raises(ModelBundleError, match="not valid JSON"):
        load_bundle(path)
    (path / MODEL_FILE).unlink()
    with pytest.raises(ModelBundleError, match="has no model.onnx"):
        load_bundle(path)


def _raw_window_model(n_ch: int, n_t: int, n_classes: int = 2):
    """A small 'deep net' stand-in: log-variance per channel -> linear -> softmax (float32)."""
    from onnx import TensorProto, helper, numpy_helper

    W = np.linspace(-1, 1, n_ch * n_classes, dtype=np.float32).reshape(n_ch, n_classes)
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[2], keepdims=1),
        helper.make_node("Sub", ["x", "mean"], ["xc"]),
        helper.make_node("Mul", ["xc", "xc"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=[2], keepdims=0),
        helper.make_node("Log", ["var"], ["lv"]),
        helper.make_node("MatMul", ["lv", "W"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_ch, n_t])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [None, n_classes])],
        initializer=[numpy_helper.from_array(W, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model, W


def test_user_raw_window_onnx_model(tmp_path):
    import onnx

    from neurodeck.decoders.epochs import BandPass
    from neurodeck.decoders.online import OnlineDecoder

    X, y, ch, sf, _ = load_s001()
    n_t = X.shape[2] - 160
    model, W = _raw_window_model(len(ch), n_t)
    onnx.save(model, str(tmp_path / MODEL_FILE))
    meta = {"format": "neurodeck-model", "format_version": 1, "kind": "raw-window",
            "ch_names": ch, "sfreq": sf, "window_samples": X.shape[2], "pad_s": 1.0,
            "band": [8.0, 32.0], "classes": ["left_hand", "right_hand"], "unit": "microvolts"}
    (tmp_path / SIDECAR_FILE).write_text(json.dumps(meta))
    dec = OnlineDecoder(tmp_path)
    got = dec.decide_batch(X[:5])
    filt = BandPass(sf, 8, 32, pad=1.0).transform(X[:5])
    lv = np.log(filt.var(axis=2))
    logits = lv @ W
    ref = np.exp(logits - logits.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    np.testing.assert_allclose(dec.decide(X[0]), got[0])
    # a sidecar whose window does not match the network's input
    meta["window_samples"] = X.shape[2] + 10
    (tmp_path / SIDECAR_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match="ONNX input 'x' has shape"):
        load_bundle(tmp_path)
