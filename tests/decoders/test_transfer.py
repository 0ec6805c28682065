"""Re-centering (Zanini 2018), its causal online adaptation, and the evaluation protocols."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pyriemann.geometry.distance import distance_riemann
from pyriemann.geometry.mean import mean_riemann

from neurodeck.decoders.errors import DecoderError
from neurodeck.decoders.evaluation import (
    chronological_split,
    evaluate_chronological,
    evaluate_loso,
)
from neurodeck.decoders.pipelines import DecoderConfig, make_pipeline
from neurodeck.decoders.transfer import Recentering, recenter, running_reference

SF = 160.0


def _spd(rng, n, c=4, scale=1.0):
    A = rng.standard_normal((n, c, 3 * c))
    return scale * A @ A.transpose(0, 2, 1) / (3 * c) + 0.1 * np.eye(c)


def test_each_group_is_recentred_to_the_identity_and_the_target_reference_is_kept():
    rng = np.random.default_rng(0)
    C = np.concatenate([_spd(rng, 30), _spd(rng, 20, scale=5.0)])
    groups = np.repeat(["a", "b"], [30, 20])
    rc = Recentering(adapt=False)
    out = rc.fit_transform(C, groups=groups, target="b")
    for g in ("a", "b"):
        np.testing.assert_allclose(mean_riemann(out[groups == g]), np.eye(4), atol=1e-6)
    np.testing.assert_allclose(rc.reference_, mean_riemann(C[30:]), atol=1e-10)
    assert rc.n_seen_ == 20
    # no target: the reference is empty until the first window (population model)
    rc = Recentering().fit(C, groups=groups)
    assert rc.n_seen_ == 0 and np.array_equal(rc.reference_, np.eye(4))
    np.testing.assert_allclose(recenter(C[:3], np.eye(4)), C[:3])


def test_running_reference_is_causal_and_converges_to_the_riemannian_mean():
    rng = np.random.default_rng(1)
    C = _spd(rng, 400)
    refs, M, n = running_reference(C, None, 0)
    np.testing.assert_array_equal(refs[0], C[0])  # an empty reference starts at the first window
    assert n == 400
    assert distance_riemann(M, mean_riemann(C)) < 0.05 < distance_riemann(C[0], mean_riemann(C))
    # causal: the reference after window i does not depend on later windows
    refs2, _, _ = running_reference(np.concatenate([C[:10], _spd(rng, 5)]), None, 0)
    np.testing.assert_allclose(refs2[:10], refs[:10], atol=1e-12)
    # with memory the weight never drops below 1/memory
    _, Mm, _ = running_reference(np.concatenate([C, 9 * C[:200]]), None, 0, memory=50)
    assert distance_riemann(Mm, mean_riemann(9 * C[:200])) < distance_riemann(M, mean_riemann(9 * C[:200])) / 4
    with pytest.raises(DecoderError, match="memory=-1; expected an integer >= 0"):
        Recentering(memory=-1).fit(C)


def test_adapt_transform_gives_the_same_outputs_one_window_at_a_time_and_in_batches():
    rng = np.random.default_rng(2)
    C, W = _spd(rng, 40), _spd(rng, 25, scale=3.0)
    a = Recentering(adapt=True).fit(C)
    b = Recentering(adapt=True).fit(C)
    batch = a.adapt_transform(W)
    single = np.concatenate([b.adapt_transform(w[None]) for w in W])
    np.testing.assert_allclose(single, batch, atol=1e-12)
    assert a.n_seen_ == 65 and a.drift() > 0.1
    # and it is not the static transform: the reference moved towards the new windows
    assert np.abs(batch - Recentering(adapt=False).fit(C).transform(W)).max() > 0.1
    # transform never changes the state
    ref = a.reference_.copy()
    a.transform(W)
    np.testing.assert_array_equal(a.reference_, ref)


def _subjects(n_subjects=4, n_trials=40, n_ch=6, seed=0):
    """Synthetic subjects: the class doubles the amplitude of one of two sources; each subject
    sees them through its own SPD mixing matrix and amplitude."""
    from scipy.linalg import expm

    rng = np.random.default_rng(seed)
    n_t = int(SF * 3)  # 1 s pad + 2 s window
    out = []
    for _ in range(n_subjects):
        B = rng.standard_normal((n_ch, n_ch))
        A = expm(0.5 * (B + B.T) / 2)
        y = rng.permutation(np.repeat(["left", "right"], n_trials // 2))
        S = rng.standard_normal((n_trials, n_ch, n_t))
        S[y == "left", 0] *= 2.0
        S[y == "right", 1] *= 2.0
        out.append((np.einsum("ij,njt->nit", A, S) * rng.uniform(1, 10), y))
    return out


def test_other_subjects_decode_a_new_one_without_labels():
    subj = _subjects()
    ch = [f"E{i}" for i in range(6)]
    aligned = make_pipeline("default", SF, ch)
    X, y = subj[0]
    res = evaluate_chronological(X, y, {"default": aligned}, [0, 5], sources=subj[1:], dataset="s0")
    score = {(r.pipeline, r.calib_trials): r for r in res}
    assert score["default", 0].score > 0.9 and score["default", 0].accuracy > 0.8
    r = score["default", 5]
    assert (r.protocol, r.n_train, r.n_test, r.metric) == ("chronological", 130, r.n_test, "roc_auc")
    assert r.n_test == 40 - 1 - max(np.flatnonzero(y == c)[4] for c in ("left", "right"))
    loso = evaluate_loso({f"s{i}": d for i, d in enumerate(subj)}, {"default": aligned}, [0])
    assert [r.dataset for r in loso] == ["s0", "s1", "s2", "s3"]
    assert all(r.protocol == "loso" and r.n_train == 120 for r in loso)
    assert np.mean([r.score for r in loso]) > 0.9
    with pytest.raises(DecoderError, match="K = 0 calibration trials needs sources"):
        evaluate_chronological(X, y, {"default": aligned}, [0])


def test_target_weight_half_gives_the_users_trials_the_weight_of_all_the_sources(tmp_path):
    """fit_pooled with target_weight='half' == the same pipeline fitted with sample weights
    n_sources / n_target on the target's trials; without target trials nothing is weighted."""
    from sklearn.base import clone

    from neurodeck.decoders.transfer import fit_pooled

    subj = _subjects(n_subjects=3)
    ch = [f"E{i}" for i in range(6)]
    pipe = make_pipeline("default", SF, ch, recentering__target_weight="half")
    parts = [subj[1], subj[2], (subj[0][0][:10], subj[0][1][:10])]
    got = fit_pooled(clone(pipe), parts, target=2)
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    groups = np.repeat([0, 1, 2], [40, 40, 10])
    w = np.where(groups == 2, 80 / 10, 1.0)
    want = clone(pipe).fit(X, y, recentering__groups=groups, recentering__target=2, lr__sample_weight=w)
    np.testing.assert_allclose(got[-1].coef_, want[-1].coef_, rtol=1e-6)
    plain = fit_pooled(make_pipeline("default", SF, ch), parts, target=2)
    assert np.abs(plain[-1].coef_ - got[-1].coef_).max() > 1e-3
    # K = 0 (no target trials): identical to every trial weighing the same
    pop = fit_pooled(clone(pipe), parts[:2])
    np.testing.assert_allclose(pop[-1].coef_, fit_pooled(make_pipeline("default", SF, ch), parts[:2])[-1].coef_)
    # the shipped pipeline is this rule, and a bundle keeps it (decoding is default's)
    from neurodeck.decoders.onnx import load_bundle, save_bundle

    shipped = fit_pooled(make_pipeline("rc-ts-lr-half", SF, ch), parts, target=2)
    np.testing.assert_allclose(shipped[-1].coef_, got[-1].coef_)
    cfg = DecoderConfig(pipeline="rc-ts-lr-half", tmin=0.5, tmax=2.5 - 1 / SF)
    path = save_bundle(shipped, cfg, tmp_path / "half", ch_names=ch, sfreq=SF, X_check=parts[2][0][:8])
    bundle = load_bundle(path)
    assert bundle.adaptive_steps[0].target_weight == "half"
    np.testing.assert_allclose(bundle.predict_proba(subj[0][0]), shipped.predict_proba(subj[0][0]), atol=1e-5)
    with pytest.raises(DecoderError, match="target_weight='both'; expected one of"):
        fit_pooled(make_pipeline("default", SF, ch, recentering__target_weight="both"), parts, target=2)


def test_chronological_split_calibrates_on_the_first_k_of_each_class():
    y = np.array(list("aabababbbaab"))
    calib, test = chronological_split(y, 2)
    assert calib.tolist() == [0, 1, 2, 4] and test.tolist() == list(range(5, 12))
    calib, test = chronological_split(y, 0)
    assert calib.tolist() == [] and test.tolist() == list(range(12))
    with pytest.raises(DecoderError, match="class 'a' has 6 trials: none left to test after 6"):
        chronological_split(y, 6)
    with pytest.raises(DecoderError, match="integer >= 0, got -1"):
        chronological_split(y, -1)


def test_pseudo_online_equals_live_for_the_adaptive_decoder(tmp_path):
    """decide_batch over all windows (pseudo-online) == decide() window by window (live)."""
    from neurodeck.decoders.online import OnlineDecoder
    from neurodeck.decoders.onnx import save_bundle

    subj = _subjects(n_subjects=3)
    ch = [f"E{i}" for i in range(6)]
    from neurodeck.decoders.transfer import fit_pooled

    pipe = fit_pooled(make_pipeline("default", SF, ch), subj[1:])  # population model, K = 0
    cfg = DecoderConfig(pipeline="default", tmin=0.5, tmax=2.5 - 1 / SF)
    path = save_bundle(pipe, cfg, tmp_path / "m", ch_names=ch, sfreq=SF, X_check=subj[1][0][:8])
    meta = json.loads((path / "model.json").read_text())
    rc = next(s for s in meta["feature_steps"] if s["class"].endswith("Recentering"))
    assert rc["params"] == {"adapt": True, "memory": 0, "target_weight": "trial", "stretch": False,
                           "rotate": False} and rc["state"]["n_seen_"] == 0
    assert rc["state"]["exponent_"] == 1.0 and rc["state"]["target_share_"] is None
    X = subj[0][0]
    batch = OnlineDecoder(path).decide_batch(X)
    one_by_one = OnlineDecoder(path)
    one = np.array([one_by_one.decide(w) for w in X])
    np.testing.assert_allclose(one, batch, atol=1e-10)
    assert one_by_one.bundle.adaptive_steps[0].n_seen_ == len(X)
    # the adaptation matters: a decoder without it decides differently
    assert np.abs(load_static(path).predict_proba(X) - batch).max() > 0.05
    # a continuous recording: the live stream state (what app.engine feeds hop by hop) gives
    # the pseudo-online replay's decisions, adaptation included
    data = np.concatenate(list(X[:6, :, int(SF):]), axis=1)  # (6 ch, 12 s)
    hop = 16
    ends, replay = OnlineDecoder(path).replay(data, hop)
    live = OnlineDecoder(path)
    stream = live.open_stream(hop)
    W = live.window_samples
    stream.reset(data[:, :ends[0]], ends[0])
    got = [stream.decide()]
    for e in ends[1:]:
        stream.push(data[:, e - hop:e])
        got.append(stream.decide())
    np.testing.assert_allclose(np.array(got), replay, atol=1e-8)
    assert live.bundle.adaptive_steps[0].n_seen_ == len(ends) > 80 and W == ends[0]
    # the reference moves window by window: asked for threads, the replay still decides the
    # batches one after the other, in order (else the adaptation would see them out of order)
    one_at_a_time = OnlineDecoder(path).replay(data, hop, batch=8)[1]
    threaded = OnlineDecoder(path)
    np.testing.assert_array_equal(threaded.replay(data, hop, batch=8, threads=3)[1], one_at_a_time)
    assert threaded.bundle.adaptive_steps[0].n_seen_ == len(ends)


def load_static(path):
    from neurodeck.decoders.onnx import load_bundle

    return load_bundle(path)


def test_shipped_population_model_decodes_the_bundled_new_user_without_calibration():
    """assets/population: 12 EEGMMIDB subjects, not S001; S001 (bundled) is the new user."""
    from pathlib import Path

    from sklearn.metrics import roc_auc_score

    from neurodeck.decoders.online import OnlineDecoder
    from tests.decoders.test_pipelines import load_s001

    path = Path(__file__).resolve().parents[2] / "assets" / "population" / "eegmmidb-default"
    dec = OnlineDecoder(path)
    meta = dec.bundle.meta
    assert meta["pipeline"] == "default" and meta["training_scores"]["population"] is True
    assert len(meta["training_scores"]["datasets"]) == 12
    assert not any(d.startswith("S001") for d in meta["training_scores"]["datasets"])
    (rc,) = dec.bundle.adaptive_steps
    assert rc.n_seen_ == 0
    X, y, ch, _, _ = load_s001(None)
    p = dec.decide_batch(X[:, [ch.index(c) for c in dec.ch_names]])  # trials in time order
    # the leave-one-subject-out K = 0 score of S001 in docs/accuracy.md
    assert roc_auc_score(y == "right_hand", p[:, 1]) == pytest.approx(0.794, abs=0.005)
    assert rc.n_seen_ == 45 and rc.drift() > 1.0


def _rotated_subjects(n_subjects=5, n_trials=40, n_ch=6, seed=3):
    """Synthetic subjects whose channels are mixed by a random rotation each: after
    re-centering they still differ by that rotation, which pooling alone cannot undo."""
    from scipy.stats import ortho_group

    rng = np.random.default_rng(seed)
    n_t = int(SF * 3)
    out = []
    for _ in range(n_subjects):
        Q = ortho_group.rvs(n_ch, random_state=rng)
        y = rng.permutation(np.repeat(["left", "right"], n_trials // 2))
        S = rng.standard_normal((n_trials, n_ch, n_t))
        S[y == "left", 0] *= 2.0
        S[y == "right", 1] *= 2.0
        out.append((np.einsum("ij,njt->nit", Q, S) * rng.uniform(1, 10), y))
    return out


def test_riemannian_procrustes_stretches_and_rotates_the_sources_onto_the_user():
    """Rodrigues 2019 as options of Recentering: unit dispersion per subject, the sources'
    class means rotated onto the user's; the user is stretched, never rotated, when decoding."""
    from pyriemann.geometry.base import powm

    from neurodeck.decoders.pipelines import OASCovariances
    from neurodeck.decoders.transfer import dispersion

    subj = _rotated_subjects()
    ch = [f"E{i}" for i in range(6)]
    cov = make_pipeline("default", SF, ch)[:2]
    C = [cov.fit_transform(X) for X, _ in subj]  # per-trial steps: no state
    assert isinstance(cov[1], OASCovariances)
    calib = np.concatenate([np.flatnonzero(subj[2][1] == c)[:5] for c in ("left", "right")])
    X = np.concatenate([*C[:2], *C[3:], C[2][calib]])
    y = np.concatenate([*(s[1] for i, s in enumerate(subj) if i != 2), subj[2][1][calib]])
    groups = np.repeat([0, 1, 3, 4, 2], [40, 40, 40, 40, 10])
    plain = Recentering().fit_transform(X, y, groups=groups, target=2)
    rc = Recentering(stretch=True, rotate=True)
    out = rc.fit_transform(X, y, groups=groups, target=2)
    for g in (0, 1, 2, 3, 4):
        assert dispersion(out[groups == g]) == pytest.approx(1.0, rel=1e-6)
    assert rc.exponent_ == pytest.approx(1 / np.sqrt(dispersion(plain[groups == 2])))

    def gap(R):  # distance of every source's class means to the user's
        tm = {c: mean_riemann(R[(groups == 2) & (y == c)]) for c in ("left", "right")}
        return sum(distance_riemann(mean_riemann(R[(groups == g) & (y == c)]), tm[c])
                   for g in (0, 1, 3, 4) for c in ("left", "right"))

    stretched_only = Recentering(stretch=True).fit_transform(X, y, groups=groups, target=2)
    assert gap(out) < 0.5 * gap(stretched_only)
    # decoding: the user's windows are whitened by the user's reference and stretched
    np.testing.assert_allclose(rc.transform(C[2][:4]), powm(recenter(C[2][:4], rc.reference_), rc.exponent_),
                               atol=1e-10)
    # no labelled trial of the user (K = 0) or one subject alone: re-centering only
    pop = Recentering(stretch=True, rotate=True).fit_transform(X[:160], y[:160], groups=groups[:160])
    np.testing.assert_allclose(pop, Recentering().fit_transform(X[:160], groups=groups[:160]))
    one = Recentering(stretch=True, rotate=True)
    np.testing.assert_allclose(one.fit_transform(C[0], subj[0][1]), Recentering().fit_transform(C[0]))
    assert one.exponent_ == 1.0
    with pytest.raises(DecoderError, match="rotate='yes'; expected true or false"):
        Recentering(rotate="yes").fit(X)


def test_procrustes_and_fine_tuning_beat_pooling_when_subjects_differ_by_a_rotation(tmp_path):
    """Target s2 of the rotated subjects, K = 5: plain pooling (default) is near chance; the
    shipped rc-ts-lr-rpa and rc-ts-lr-ft recover; with K = 0 both are exactly default."""
    from neurodeck.decoders.onnx import load_bundle, save_bundle
    from neurodeck.decoders.transfer import fit_pooled

    subj = _rotated_subjects()
    ch = [f"E{i}" for i in range(6)]
    X, y = subj[2]
    src = [s for i, s in enumerate(subj) if i != 2]
    pipes = {n: make_pipeline(n, SF, ch) for n in ("default", "rc-ts-lr-rpa", "rc-ts-lr-ft")}
    res = {(r.pipeline, r.calib_trials): r for r in
           evaluate_chronological(X, y, pipes, [0, 5], sources=src, dataset="s2")}
    assert res["default", 5].score < 0.65
    assert res["rc-ts-lr-rpa", 5].score > 0.95 and res["rc-ts-lr-ft", 5].score > 0.95
    for n in ("rc-ts-lr-rpa", "rc-ts-lr-ft"):
        assert res[n, 0].score == res["default", 0].score
        assert res[n, 0].accuracy == res["default", 0].accuracy
    # the bundle keeps the user's stretch, and decodes as the fitted pipeline
    calib = np.concatenate([np.flatnonzero(y == c)[:5] for c in ("left", "right")])
    rpa = fit_pooled(make_pipeline("rc-ts-lr-rpa", SF, ch), [*src, (X[calib], y[calib])], target=4)
    assert rpa.named_steps["recentering"].exponent_ != 1.0
    cfg = DecoderConfig(pipeline="rc-ts-lr-rpa", tmin=0.5, tmax=2.5 - 1 / SF)
    path = save_bundle(rpa, cfg, tmp_path / "rpa", ch_names=ch, sfreq=SF, X_check=X[:8])
    bundle = load_bundle(path)
    assert bundle.adaptive_steps[0].exponent_ == rpa.named_steps["recentering"].exponent_
    np.testing.assert_allclose(bundle.predict_proba(X[20:]), rpa.predict_proba(X[20:]), atol=1e-5)
    # online, the stretch follows the adapting reference: the decoder == the pipeline's adaptive rule
    import copy

    from neurodeck.decoders.online import OnlineDecoder
    from neurodeck.decoders.transfer import predict_proba_adaptive

    want = predict_proba_adaptive(copy.deepcopy(rpa), X[20:])
    np.testing.assert_allclose(OnlineDecoder(path).decide_batch(X[20:]), want, atol=1e-5)
    assert np.abs(want - rpa.predict_proba(X[20:])).max() > 1e-3  # adaptation moved it
    unstretched = copy.deepcopy(rpa)
    unstretched.named_steps["recentering"].exponent_ = 1.0
    assert np.abs(predict_proba_adaptive(unstretched, X[20:]) - want).max() > 1e-3  # stretch applied


def test_auto_target_weight_is_chosen_on_the_users_calibration_trials_only():
    """choose_target_share: sources that contradict the user -> the user's trials get the
    largest share; sources that agree -> every trial the same (ties keep the prior). fit_pooled
    with target_weight='auto' fits the head with the chosen share."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression

    from neurodeck.decoders.transfer import choose_target_share, fit_pooled, target_weights

    rng = np.random.default_rng(0)
    ys = np.repeat(["a", "b"], 200)
    yt = np.tile(["a", "b"], 10)
    Fs = rng.standard_normal((400, 3)) + np.where(ys == "a", 1.0, -1.0)[:, None] * [2, 0, 0]
    agree = rng.standard_normal((20, 3)) + np.where(yt == "a", 1.0, -1.0)[:, None] * [2, 0, 0]
    flipped = rng.standard_normal((20, 3)) + np.where(yt == "a", -1.0, 1.0)[:, None] * [2, 0, 0]
    is_t = np.repeat([False, True], [400, 20])
    y = np.concatenate([ys, yt])
    assert choose_target_share(LogisticRegression(), np.vstack([Fs, agree]), y, is_t) is None
    assert choose_target_share(LogisticRegression(), np.vstack([Fs, flipped]), y, is_t) == 0.75
    w = target_weights(is_t, 0.25)
    assert w[is_t].sum() / w.sum() == pytest.approx(0.25) and (w[~is_t] == 1).all()
    np.testing.assert_array_equal(target_weights(is_t, None), np.ones(420))

    subj = _rotated_subjects(n_subjects=3)
    ch = [f"E{i}" for i in range(6)]
    parts = [subj[0], subj[1], (subj[2][0][:10], subj[2][1][:10])]
    ft = fit_pooled(make_pipeline("rc-ts-lr-ft", SF, ch), parts, target=2)
    rc = ft.named_steps["recentering"]
    assert rc.target_share_ in (None, 0.1, 0.25, 0.5, 0.75)
    Xp, yp = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    groups = np.repeat([0, 1, 2], [40, 40, 10])
    F = make_pipeline("default", SF, ch)[:-1].fit_transform(Xp, yp, recentering__groups=groups,
                                                            recentering__target=2)
    ref = clone(ft[-1]).fit(F, yp, sample_weight=target_weights(groups == 2, rc.target_share_))
    np.testing.assert_allclose(ft[-1].coef_, ref.coef_, rtol=1e-6)
    # K = 0: default exactly
    pop = fit_pooled(make_pipeline("rc-ts-lr-ft", SF, ch), parts[:2])
    np.testing.assert_allclose(pop[-1].coef_, fit_pooled(make_pipeline("default", SF, ch), parts[:2])[-1].coef_)
    assert pop.named_steps["recentering"].target_share_ is None
