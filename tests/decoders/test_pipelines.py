"""Named pipelines, DecoderConfig, the in-pipeline band-pass and the vectorised OAS covariance."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from pyriemann.classification import FgMDM
from pyriemann.estimation import Covariances

from neurodeck.decoders.epochs import (
    BandPass,
    bandpass_sos,
    extract_epochs,
    impulse_residual,
    n_samples,
    pick_indices,
)
from neurodeck.decoders.errors import DecoderError
from neurodeck.decoders.pipelines import (
    PIPELINES,
    DecoderConfig,
    FilterBankTangentSpace,
    filter_bank,
    make_pipeline,
    oas_covariances,
)

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "eegmmidb"
#: 16 sensorimotor channels: enough signal for real tests, small enough to keep them fast.
TEST_PICKS = ("FC3", "FC1", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
              "CP3", "CP1", "CPz", "CP2", "CP4")


@functools.lru_cache(maxsize=2)
def load_s001(picks: tuple[str, ...] | None = TEST_PICKS):
    """Padded raw windows of the bundled EEGMMIDB S001 runs 4/8/12 (microvolts).

    Returns X (45, n_ch, 481), y (45,) str, ch_names, sfreq, and per run (data, onsets, labels).
    """
    from neurodeck.acquisition.io import get_events, load_recording

    cfg = DecoderConfig(pipeline="ts-lr", picks=picks)
    Xs, ys, runs = [], [], []
    for path in sorted(ASSETS.glob("*.edf")):
        raw = load_recording(path)
        idx = pick_indices(raw.ch_names, cfg.picks)
        ch = [raw.ch_names[i] for i in idx]
        data = raw.get_data()[idx] * 1e6
        events, event_id = get_events(raw, cfg.event_mapping)
        names = {v: k for k, v in event_id.items()}
        onsets = events[:, 0] - raw.first_samp
        labels = np.array([names[c] for c in events[:, 2]])
        X, kept = extract_epochs(data, raw.info["sfreq"], onsets, cfg.tmin, cfg.tmax, cfg.pad)
        Xs.append(X)
        ys.append(labels[kept])
        runs.append((data, onsets, labels))
    return np.concatenate(Xs), np.concatenate(ys), ch, float(raw.info["sfreq"]), runs


def test_every_named_pipeline_builds_and_has_a_description():
    ch = list(TEST_PICKS)
    for name, desc in PIPELINES.items():
        pipe = make_pipeline(name, 160.0, ch)
        # the first step filters the raw padded window: the band-pass or the filter bank
        assert pipe.steps[0][0] in ("bandpass", "fbts"), name
        assert pipe.steps[0][1].pad == 1.0 and pipe.steps[0][1].passes == 2, name
        assert isinstance(desc, str) and len(desc) > 10


def test_two_causal_passes_have_the_magnitude_of_the_zero_phase_reference_filter():
    """|H|² of the 4th-order Butterworth == forward-backward (MNE/MOABB) magnitude, causally."""
    from scipy import signal

    sf = 160.0
    one, two = bandpass_sos(sf, 8, 32, 4, 1), bandpass_sos(sf, 8, 32, 4, 2)
    assert two.shape == (2 * one.shape[0], 6)
    _, h1 = signal.sosfreqz(one, worN=512, fs=sf)
    _, h2 = signal.sosfreqz(two, worN=512, fs=sf)
    np.testing.assert_allclose(np.abs(h2), np.abs(h1) ** 2, atol=1e-12)
    # the same as filtering an impulse forward and backward (zero phase), in magnitude
    x = np.zeros(4096)
    x[2048] = 1.0
    ff = np.abs(np.fft.rfft(signal.sosfiltfilt(one, x)))
    np.testing.assert_allclose(ff, np.abs(np.fft.rfft(signal.sosfilt(two, x))), atol=1e-9)
    with pytest.raises(DecoderError, match="passes must be a positive integer"):
        bandpass_sos(sf, 8, 32, 4, 0)


def test_every_default_filter_has_decayed_within_the_padding():
    """The output at the first kept sample hardly depends on the signal before the window."""
    sf = 160.0
    for name in PIPELINES:
        first = make_pipeline(name, sf, list(TEST_PICKS)).steps[0][1]
        n_pad = n_samples(first.pad, sf)
        if isinstance(first, BandPass):
            filters = [(first.l_freq, first.h_freq, first.order)]
        else:
            filters = [(*b, o) for b, o in zip(first.bands, first.orders, strict=True)]
        for lo, hi, order in filters:
            res = impulse_residual(bandpass_sos(sf, lo, hi, order, first.passes), n_pad)
            assert res < 1e-4, (name, lo, hi, order, res)
    # the check can fail: narrow 4th-order bands applied twice ring past 1 s
    assert impulse_residual(bandpass_sos(sf, 8, 12, 4, 2), 160) > 1e-3


def test_filter_bank_full_band_block_is_the_tangent_space_of_the_band_pass():
    X, y, ch, sf, _ = load_s001()
    assert filter_bank((8, 32)) == ((8.0, 12.0), (12.0, 16.0), (16.0, 20.0), (20.0, 24.0),
                                    (24.0, 28.0), (28.0, 32.0), (8.0, 32.0))
    pipe = make_pipeline("fbts-lr", sf, ch)
    fb = pipe.named_steps["fbts"]
    assert fb.orders == (2, 2, 2, 2, 2, 2, 4)
    F = fb.fit(X, y).transform(X)
    n = len(ch) * (len(ch) + 1) // 2
    assert F.shape == (len(X), 7 * n)
    ts = make_pipeline("ts-lda", sf, ch)[:-1].fit(X, y)  # band-pass -> OAS -> tangent space
    np.testing.assert_allclose(F[:, -n:], ts.transform(X), atol=1e-10)
    # the sub-bands carry different information than the full band
    assert not np.allclose(F[:, :n], F[:, -n:])
    with pytest.raises(DecoderError, match="one Butterworth order per band"):
        FilterBankTangentSpace(sf, bands=((8, 12), (12, 16)), orders=(2,)).fit(X, y)
    with pytest.raises(DecoderError, match="shape"):
        fb.transform(X[0])


def test_unknown_pipeline_and_bad_override_are_clear_errors():
    with pytest.raises(DecoderError, match="unknown pipeline 'nope'"):
        make_pipeline("nope", 160.0)
    with pytest.raises(DecoderError, match="bad override"):
        make_pipeline("ts-lr", 160.0, lr__not_a_param=3)
    with pytest.raises(DecoderError, match="sfreq"):
        make_pipeline("ts-lr", -1.0)


def test_config_validation_and_round_trip(tmp_path):
    cfg = DecoderConfig(pipeline="csp-lda", band=(8, 30), picks=["C3", "Cz", "C4"],
                        events={"T1": "left_hand", "T2": "right_hand"})
    assert cfg.band == (8.0, 30.0) and cfg.picks == ("C3", "Cz", "C4")
    assert cfg.labels == ["left_hand", "right_hand"]
    assert cfg.window_samples(160.0) == 160 + 321
    assert cfg.filter_passes == 2 and cfg.build(160.0).named_steps["bandpass"].passes == 2
    assert DecoderConfig(filter_passes=1).build(160.0).named_steps["bandpass"].passes == 1
    with pytest.raises(DecoderError, match="filter_passes"):
        DecoderConfig(filter_passes=0)
    for suffix in (".toml", ".json"):
        p = tmp_path / f"cfg{suffix}"
        cfg.save(p)
        assert DecoderConfig.load(p) == cfg
    with pytest.raises(DecoderError, match="pipeline 'x' unknown"):
        DecoderConfig(pipeline="x")
    with pytest.raises(DecoderError, match=r"tmax \(0.5\) must be greater than tmin \(1.0\)"):
        DecoderConfig(tmin=1.0, tmax=0.5)
    with pytest.raises(DecoderError, match="band"):
        DecoderConfig(band=(30, 8))
    with pytest.raises(DecoderError, match="at least 2"):
        DecoderConfig(events={"T1": "left"})
    with pytest.raises(DecoderError, match="window"):
        DecoderConfig(window=1.0)
    (tmp_path / "bad.json").write_text(json.dumps({"pipeline": "ts-lr", "colour": "red"}))
    with pytest.raises(DecoderError, match="unknown decoder config keys.*colour"):
        DecoderConfig.load(tmp_path / "bad.json")


def test_oas_covariances_equal_pyriemann():
    X = np.random.default_rng(0).standard_normal((7, 5, 200)) * 20 + 3
    np.testing.assert_allclose(oas_covariances(X), Covariances("oas").fit_transform(X), rtol=1e-12)


def test_bandpass_passes_the_band_and_rejects_outside():
    sf = 160.0
    t = np.arange(int(3 * sf)) / sf
    inband = np.sin(2 * np.pi * 15 * t)
    out = np.sin(2 * np.pi * 2 * t) + np.sin(2 * np.pi * 60 * t) + 100.0  # drift, line, DC
    X = np.stack([inband, out])[None]
    Y = BandPass(sf, 8, 32, pad=1.0).fit_transform(X)
    assert Y.shape == (1, 2, X.shape[2] - 160)
    assert np.std(Y[0, 0]) == pytest.approx(np.std(inband), rel=0.05)
    assert np.std(Y[0, 1]) < 0.05 * np.std(out - 100.0)
    with pytest.raises(DecoderError, match="too short"):
        BandPass(sf, pad=1.0).fit(X[..., :100])
    with pytest.raises(DecoderError, match="Nyquist"):
        BandPass(sf, 8, 90).fit_transform(X)


def test_windows_cut_from_the_recording_equal_training_epochs():
    """The online path (a padded window from the continuous signal) sees the epoch's samples."""
    X, y, ch, sf, runs = load_s001()
    data, onsets, _ = runs[0]
    cfg = DecoderConfig()
    start = onsets[0] + round(cfg.tmin * sf) - round(cfg.pad * sf)
    window = data[:, start:start + cfg.window_samples(sf)]
    np.testing.assert_array_equal(window, X[0])
    bp = BandPass(sf, *cfg.band, pad=cfg.pad)
    np.testing.assert_array_equal(bp.transform(window[None])[0], bp.transform(X[:1])[0])


def test_extract_epochs_drops_epochs_outside_the_recording():
    data = np.arange(2 * 1000, dtype=float).reshape(2, 1000)
    X, kept = extract_epochs(data, 100.0, np.array([40, 500, 990]), 0.0, 1.0, pad=0.5)
    assert kept.tolist() == [1]
    assert X.shape == (1, 2, 50 + 101)
    assert X[0, 0, 0] == 450


def test_pick_indices_matches_dotted_names_and_reports_missing():
    names = ["C3..", "Cz..", "C4.."]
    assert pick_indices(names, ["c4", "C3"]).tolist() == [2, 0]
    with pytest.raises(DecoderError, match=r"\['Pz'\] not found"):
        pick_indices(names, ["Pz"])


def test_fgmdm_pipeline_equals_pyriemann_fgmdm():
    X, y, ch, sf, _ = load_s001()
    pipe = make_pipeline("fgmdm", sf, ch).fit(X, y)
    covs = pipe.named_steps["cov"].transform(pipe.named_steps["bandpass"].transform(X))
    ref = FgMDM().fit(covs, y)
    np.testing.assert_allclose(pipe.predict_proba(X), ref.predict_proba(covs), atol=1e-10)


def test_ts_lda_separates_left_and_right_on_real_eeg():
    """Held-out runs: train on runs 4 and 8, test on run 12 (S001 is a good performer)."""
    from sklearn.metrics import roc_auc_score

    X, y, ch, sf, _ = load_s001()
    pipe = make_pipeline("ts-lda", sf, ch).fit(X[:30], y[:30])
    auc = roc_auc_score(y[30:] == "right_hand", pipe.predict_proba(X[30:])[:, 1])
    assert auc > 0.75


def test_svm_pipelines_use_a_calibrated_svm_without_deprecation_warnings():
    """scikit-learn 1.9 deprecated SVC(probability=True); the heads are CalibratedClassifierCV."""
    import warnings

    from scipy.special import expit
    from sklearn.calibration import CalibratedClassifierCV

    X, y, ch, sf, _ = load_s001()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        pipe = make_pipeline("ts-svm", sf, ch).fit(X, y)
    search = pipe.named_steps["svm"]
    assert search.best_params_["estimator__C"] in (0.1, 1.0, 10.0)
    head = search.best_estimator_
    assert isinstance(head, CalibratedClassifierCV)
    assert (head.method, head.ensemble, len(head.calibrated_classifiers_)) == ("sigmoid", False, 1)
    # p(right) is the fitted sigmoid of the (single, refitted) linear SVM's decision
    cal = head.calibrated_classifiers_[0]
    d = cal.estimator.decision_function(pipe[:-1].transform(X))
    a, b = cal.calibrators[0].a_, cal.calibrators[0].b_
    np.testing.assert_allclose(pipe.predict_proba(X)[:, 1], expit(-(a * d + b)), atol=1e-12)
    acm = make_pipeline("acm-ts-svm-grid", sf, ch).named_steps["search"]
    assert acm.param_grid["svm__estimator__C"] == [0.1, 1.0]
    acm.estimator.set_params(svm__estimator__C=0.5)  # a valid parameter path
    # the default ACM route: (order, lag) from the training data, only C searched
    fast = make_pipeline("acm-ts-svm", sf, ch)
    assert (fast.named_steps["acm"].order, fast.named_steps["acm"].lag) == ("auto", "auto")
    assert fast.named_steps["svm"].param_grid == {"estimator__C": [0.1, 1.0]}


# ------------------------------------------------------------------ pipelines as data (TOML specs)

#: 5-fold ROC-AUC per fold on the bundled S001 (16 motor channels) of the pipelines as they were
#: built by the if/elif chain before the specs (commit a95b47e), seed 42.
CHAIN_FOLD_SCORES = {
    "psd-lda": [0.1, 0.25, 0.0, 0.25, 0.5],
    "coh-lda": [0.2, 0.9, 0.4, 0.5, 0.75],
    "csp-lda": [0.9, 1.0, 0.9, 0.6, 1.0],
    "mdm": [0.85, 0.9, 1.0, 0.65, 0.85],
    "fgmdm": [1.0, 1.0, 0.85, 0.7, 1.0],
    "ts-lr": [0.95, 0.95, 1.0, 0.65, 1.0],
    "ts-svm": [1.0, 1.0, 0.85, 0.8, 1.0],
    "ts-lda": [1.0, 1.0, 0.85, 0.7, 1.0],
    "fbts-lr": [0.75, 0.8, 0.8, 0.8, 0.8],
}


@pytest.mark.slow  # 9 pipelines x 5 folds on real EEG: ~10 s of CPU; the CI's second step
def test_pipelines_built_from_the_shipped_specs_score_as_the_if_elif_chain_did():
    from neurodeck.decoders.evaluation import cross_validate_pipelines

    X, y, ch, sf, _ = load_s001()
    pipes = {n: make_pipeline(n, sf, ch) for n in CHAIN_FOLD_SCORES}
    res = cross_validate_pipelines(X, y, pipes, cv=5, seed=42)
    for r in res:
        np.testing.assert_allclose(r.fold_scores, CHAIN_FOLD_SCORES[r.pipeline], atol=1e-12,
                                   err_msg=r.pipeline)


def test_specs_declare_grids_and_the_steps_they_search():
    from sklearn.model_selection import GridSearchCV

    from neurodeck.decoders.pipelines import PIPELINE_SPECS

    assert set(PIPELINE_SPECS) == set(PIPELINES) and "default" in PIPELINES
    ch = ["FC3", "FCz", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3", "CPz", "CP4", "O1"]
    svm = make_pipeline("ts-svm", 160.0, ch).named_steps["svm"]
    assert isinstance(svm, GridSearchCV) and svm.param_grid == {"estimator__C": [0.1, 1.0, 10.0]}
    acm = make_pipeline("acm-ts-svm-grid", 160.0, ch)
    assert [n for n, _ in acm.steps] == ["bandpass", "picks", "search"]
    assert acm.named_steps["picks"].picks == list(ch[:-1])
    assert set(acm.named_steps["search"].param_grid) == {"acm__order", "acm__lag", "svm__estimator__C"}
    # without a 10-10 montage the motor picks step is left out
    assert "picks" not in make_pipeline("acm-mdm", 160.0, [f"E{i}" for i in range(8)]).named_steps


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[p]\nsteps = []", "'steps' must be a non-empty list"),
        ("[p]\nsteps = [{step = 'bandpass'}, {step = 'pickle'}]", "step 'pickle' is not allowed"),
        ("[p]\nsteps = [{step = 'bandpass'}, {step = 'oas_covariance'}, {step = 'tangent_space', "
         "metrc = 'riemann'}, {step = 'lda'}]", r"steps\[2\] \(tangent_space\): unknown parameters \['metrc'\]"),
        ("[p]\nsteps = [{step = 'oas_covariance'}, {step = 'mdm'}]", "first step must be one of"),
        ("[p]\nsteps = [{step = 'bandpass'}, {step = 'oas_covariance'}]", "last step must be a classifier"),
        ("[p]\nsteps = [{step = 'bandpass'}, {step = 'oas_covariance'}, {step = 'mdm'}, {step = 'lda'}]",
         "classifier 'mdm' can only be the last step"),
        ("[p]\nsteps = [{step = 'bandpass'}, {step = 'lda', shrinkage = ['auto', 0.1]}]",
         r"shrinkage = \['auto', 0.1\] cannot be a grid"),
        ("[p]\nsteps = [{step = 'bandpass'}, {step = 'logistic_regression', C = []}]",
         "C = \\[\\]; expected a value or a non-empty list"),
        ("[p]\nsteps = [{step = 'bandpass'}, {step = 'logistic_regression', C = {a = 1}}]",
         "expected a number, string or boolean"),
        ("[p]\nstep = [{step = 'bandpass'}]", r"unknown keys \['step'\]"),
        ("[p]\nsteps = [{step = 'bandpass', name = 'x'}, {step = 'lda', name = 'x'}]", "used twice"),
        ("p = 1", "must be a table"),
        ("[p\n", "cannot parse pipeline specs"),
    ],
)
def test_bad_pipeline_specs_name_the_key_and_value(toml, message):
    from neurodeck.decoders.pipelines import parse_pipeline_specs

    with pytest.raises(DecoderError, match=message):
        parse_pipeline_specs(toml, "user.toml")


def test_a_user_spec_builds_a_pipeline_with_its_grid(tmp_path):
    from sklearn.model_selection import GridSearchCV

    from neurodeck.decoders.pipelines import PIPELINE_SPECS, add_pipeline_specs

    path = tmp_path / "mine.toml"
    path.write_text('[user-ts-lr]\ndescription = "TS + LR, C searched"\nsteps = [\n'
                    '  {step = "bandpass"}, {step = "oas_covariance"},\n'
                    '  {step = "tangent_space", metric = "riemann"},\n'
                    '  {step = "logistic_regression", C = [0.1, 1.0], name = "head"},\n]\n')
    try:
        assert add_pipeline_specs(path) == ["user-ts-lr"]
        pipe = make_pipeline("user-ts-lr", 160.0, list(TEST_PICKS))
        assert [n for n, _ in pipe.steps] == ["bandpass", "cov", "ts", "head"]
        assert isinstance(pipe[-1], GridSearchCV) and pipe[-1].param_grid == {"C": [0.1, 1.0]}
        assert DecoderConfig(pipeline="user-ts-lr").pipeline == "user-ts-lr"
        shipped = tmp_path / "shipped.toml"
        shipped.write_text('[ts-lr]\nsteps = [{step = "bandpass"}, {step = "lda"}]\n')
        with pytest.raises(DecoderError, match=r"\['ts-lr'\] are shipped with neurodeck"):
            add_pipeline_specs(shipped)
    finally:
        PIPELINE_SPECS.pop("user-ts-lr", None)
        PIPELINES.pop("user-ts-lr", None)
