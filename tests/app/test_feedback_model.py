"""Feedback model (Qt-free): smoothing, Graz bar, cursor task, cued-run scoring, DKF velocity."""
from __future__ import annotations

import math

import numpy as np
import pytest

from neurodeck.app.feedback_model import (
    CuedRunScorer,
    CursorConfig,
    CursorTask,
    OutputSmoother,
    VelocityDKF,
    bar_value,
    class_bars,
    class_directions,
    cue_velocity,
    velocity_from_probs,
)


def test_smoother_time_constant_and_invalid_hold():
    sm = OutputSmoother(tau_s=1.0)
    assert sm.update([0.0, 1.0], 0.0).tolist() == [0.0, 1.0]  # first value taken as is
    out = sm.update([1.0, 0.0], 1.0)  # one time constant later: 1 - e^-1 of the way
    a = 1 - math.exp(-1)
    assert out == pytest.approx([a, 1 - a])
    held = sm.update([np.nan, np.nan], 2.0)  # invalid decision holds the value
    assert held == pytest.approx([a, 1 - a])
    # the step size depends on dt, not on how many updates: two half-steps == one full step
    s1, s2 = OutputSmoother(0.5), OutputSmoother(0.5)
    s1.update([0.0], 0.0)
    s2.update([0.0], 0.0)
    s1.update([1.0], 0.2)
    r1 = s1.update([1.0], 0.4)
    r2 = s2.update([1.0], 0.4)
    assert r1[0] == pytest.approx(r2[0]) == pytest.approx(1 - math.exp(-0.8))
    assert OutputSmoother(0.0).update([0.3], 0.0)[0] == 0.3
    with pytest.raises(ValueError, match="tau_s"):
        OutputSmoother(-1)


def test_bar_value_and_velocity():
    labels = ["left_hand", "right_hand"]
    assert bar_value([0.8, 0.2], labels) == pytest.approx(-0.6)
    assert bar_value([0.1, 0.9], labels) == pytest.approx(0.8)
    assert bar_value([0.2, 0.3, 0.5], ["feet", "left_hand", "right_hand"],
                     negative="left_hand", positive="right_hand") == pytest.approx(0.2)
    assert math.isnan(bar_value([np.nan, np.nan], labels))
    with pytest.raises(ValueError, match="one per label"):
        bar_value([0.5], labels)
    # 2-D: towards each class's target by its evidence above chance (left 0.4 of the way)
    v = velocity_from_probs([0.1, 0.6, 0.3], ["feet", "left_hand", "right_hand"], dims=2)
    assert v == pytest.approx([-0.4, 0.0])
    v = velocity_from_probs([0.7, 0.2, 0.1], ["feet", "left_hand", "right_hand"], dims=2)
    assert v == pytest.approx([0.0, -0.55])  # feet: down, as its cue arrow
    assert velocity_from_probs([0.3, 0.7], labels, dims=2) == pytest.approx([0.4, 0.0])
    v = velocity_from_probs([0.2, 0.2, 0.6], ["a", "b", "c"], dims=2)  # c at 300 degrees
    assert v == pytest.approx(0.4 * np.array([0.5, -np.sqrt(3) / 2]))
    assert velocity_from_probs([0.25, 0.75], labels, dims=1) == pytest.approx([0.5])
    # 1-D with three classes: left and right hand by name, not the first two outputs
    assert velocity_from_probs([0.1, 0.6, 0.3], ["feet", "left_hand", "right_hand"],
                               dims=1) == pytest.approx([-0.3])


def test_class_bars_and_directions_of_the_n_class_bar():
    # evidence above chance: empty at chance, full when certain, the two-class bar exactly
    assert class_bars([1 / 3, 1 / 3, 1 / 3]) == pytest.approx([0, 0, 0])
    assert class_bars([0.0, 1.0, 0.0]) == pytest.approx([0, 1, 0])
    assert class_bars([0.2, 0.3, 0.5]) == pytest.approx([0, 0, 0.25])
    assert class_bars([0.1, 0.9])[1] == pytest.approx(bar_value([0.1, 0.9], ["a", "b"]))
    assert np.isnan(class_bars([np.nan, 0.5, 0.5])).all()
    with pytest.raises(ValueError, match="at least 2"):
        class_bars([1.0])
    # Graz directions by name (feet down, as the cue arrow), any other vocabulary evenly spaced
    assert class_directions(["feet", "left_hand", "right_hand"]).tolist() == [270, 180, 0]
    assert class_directions(["left_hand", "right_hand", "tongue", "feet"]).tolist() == \
        [180, 0, 90, 270]
    assert class_directions(["a", "b", "c"]) == pytest.approx([180, 60, 300])
    assert class_directions(["tongue", "rest", "feet"]) == pytest.approx([180, 60, 300])


def test_cursor_task_1d_hit_miss_timeout():
    cfg = CursorConfig(dims=1, speed=0.5, target_radius=0.1, target_distance=0.8, timeout_s=3.0)
    task = CursorTask(cfg)
    assert task.targets[:, 0].tolist() == [-0.8, 0.8]
    assert task.new_trial(1) == 1
    res = None
    steps = 0
    while res is None:
        res = task.step([1.0], 0.1)  # full speed right: 0.05 per step, reach 0.7 after 14 steps
        steps += 1
    assert res.outcome == "hit" and res.reached == 1
    assert steps == 14
    assert res.duration_s == pytest.approx(1.4)
    assert res.path_length == pytest.approx(0.7)
    task.new_trial(1)
    while (res := task.step([-2.0], 0.1)) is None:  # clipped to unit speed, goes to the wrong side
        pass
    assert res.outcome == "miss" and res.reached == 0
    task.new_trial(0)
    while (res := task.step([np.nan], 0.5)) is None:  # invalid decisions: still, time runs
        pass
    assert res.outcome == "timeout" and res.duration_s == pytest.approx(3.0)
    s = task.summary()
    assert (s["trials"], s["hits"], s["misses"], s["timeouts"]) == (3, 1, 1, 1)
    assert s["hit_rate"] == pytest.approx(1 / 3)
    assert s["mean_time_to_target_s"] == pytest.approx(1.4)


def test_cursor_task_2d_targets_and_config_checks():
    task = CursorTask(CursorConfig(dims=2, n_targets=4, speed=1.0, target_distance=0.7))
    np.testing.assert_allclose(task.targets, [[0.7, 0], [0, 0.7], [-0.7, 0], [0, -0.7]], atol=1e-12)
    task.new_trial(1)  # up
    while (res := task.step([0.0, 1.0], 0.05)) is None:
        pass
    assert res.outcome == "hit" and res.duration_s == pytest.approx(0.55)
    assert task.new_trial() == 2  # cycles to the next target
    # a target per class, where the N-class bar and the cues point (feet down)
    classes = ["feet", "left_hand", "right_hand"]
    cfg = CursorConfig(dims=2, target_distance=0.7, directions=tuple(class_directions(classes)))
    np.testing.assert_allclose(cfg.targets(), [[0, -0.7], [-0.7, 0], [0.7, 0]], atol=1e-12)
    task = CursorTask(cfg)
    task.new_trial(0)  # feet
    p_feet = [0.8, 0.1, 0.1]
    while (res := task.step(velocity_from_probs(p_feet, classes, dims=2), 0.1)) is None:
        pass
    assert res.outcome == "hit" and res.target == 0
    task.new_trial(1)
    task.step([-1.0, 0.0], 0.2)
    assert task.cancel() and not task.active and not task.cancel()  # not counted
    assert len(task.trials) == 1 and task.position.tolist() == [0.0, 0.0]
    Z = cue_velocity(["feet", None, "left_hand", "right_hand"], dims=2, classes=classes)
    np.testing.assert_allclose(Z, [[0, -1], [0, 0], [-1, 0], [1, 0]], atol=1e-12)
    assert cue_velocity(["left_hand", "feet", None], dims=1)[:, 0].tolist() == [-1, 0, 0]
    with pytest.raises(ValueError, match="directions"):
        CursorConfig(dims=1, directions=(0.0, 180.0))
    with pytest.raises(ValueError, match="dims"):
        CursorConfig(dims=3)
    with pytest.raises(ValueError, match="leaves the workspace"):
        CursorConfig(target_distance=0.95, target_radius=0.1)


def test_cued_run_scorer_accuracy_and_time_to_decision():
    """The shared rule (decoders.evaluation.score_trial), hand-computed on three trials."""
    labels = ["left_hand", "right_hand"]
    sfreq = 100.0  # a window ends one sample period (0.01 s) after its last sample's timestamp
    sc = CuedRunScorer(labels, {"T1": "left_hand", "T2": "right_hand"}, sfreq=sfreq, trial_s=4.0,
                       start_s=0.5)
    assert sc.class_of("T0") is None and sc.class_of("769") is None

    def decide(onset, rel_end, p_left):
        """A decision whose window ends ``rel_end`` s after the cue."""
        return sc.on_decision([p_left, 1 - p_left], onset + rel_end - 1 / sfreq)

    # trial 1: T1 (left) at t=10. The window ending at 0.49 s still holds pre-cue EEG; the one
    # ending at 0.5 s is the first of the trial. Running mean of p(left) over the trial's valid
    # decisions: 0.3 (right), 0.55 (left), 0.433 (right), 0.55, 0.62, 0.667 (left from here on):
    # correct, and the time to decision is the end of the 4th decision, 2.0 s. (A threshold rule
    # would have "decided" at 0.5 s, on p(right) = 0.7.)
    sc.on_marker("T1", 10.0)
    assert sc.current_label == "left_hand"
    assert decide(10.0, 0.49, 0.0) is None
    for rel, p_left in [(0.5, 0.3), (1.0, 0.8), (1.25, float("nan")), (1.5, 0.2), (2.0, 0.9),
                        (3.0, 0.9), (4.0, 0.9)]:
        assert decide(10.0, rel, p_left) is None
    assert sc.on_marker("T0", 12.1) is None  # a rest marker does not end a trial early
    ended = decide(10.0, 4.01, 0.0)  # past the trial: ends it, does not count
    assert ended is not None and ended.label == "left_hand" and sc.current_label is None
    # trial 2: T2 (right) but the decoder says left throughout: wrong, no time to decision
    sc.on_marker("T2", 20.0)
    for k in range(1, 9):
        decide(20.0, 0.5 * k, 0.6)
    assert sc.advance(23.99) is None  # a decision ending at 4.0 s may still come
    ended = sc.advance(24.5)
    assert ended is not None and ended.label == "right_hand"
    # trial 3: T2 with no decisions at all (stream stalled): not scored
    sc.on_marker("T2", 30.0)
    assert sc.finish().n_decisions == 0
    r1, r2, r3 = sc.results
    assert (r1.label, r1.predicted, r1.correct, r1.n_decisions) == ("left_hand", "left_hand", True, 6)
    assert r1.time_to_decision_s == pytest.approx(2.0)
    assert (r2.predicted, r2.correct, r2.time_to_decision_s, r2.n_decisions) == (
        "left_hand", False, None, 8)
    assert r3.n_decisions == 0 and r3.predicted is None and r3.time_to_decision_s is None
    s = sc.summary()
    assert (s.n_trials, s.n_correct, s.n_undecided, s.n_without_decisions) == (2, 1, 1, 1)
    assert s.line().endswith("1 trial without a decision, not scored")
    assert s.accuracy == pytest.approx(0.5) and s.chance == pytest.approx(0.5)
    assert s.median_time_to_decision_s == pytest.approx(2.0)
    assert "1/2 correct (50 %" in s.line() and "median time to decision 2.00 s" in s.line()
    with pytest.raises(ValueError, match="sfreq"):
        CuedRunScorer(labels, sfreq=0.0)
    with pytest.raises(ValueError, match="start_s"):
        CuedRunScorer(labels, sfreq=sfreq, start_s=-1.0)


def test_cued_run_scorer_gives_the_offline_scores_on_the_same_decisions(asset_edfs, bundle_dir):
    """Replay a pseudo-online result through the live scorer: same correct and time to decision.

    The decisions get LSL-like times (an arbitrary clock offset, last-sample timestamps) and the
    cue markers the time of their sample, as the Online page and the demo window feed them.
    """
    from neurodeck.acquisition.io import get_events, load_recording
    from neurodeck.decoders.epochs import pick_indices
    from neurodeck.decoders.evaluation import pseudo_online
    from neurodeck.decoders.online import OnlineDecoder

    dec = OnlineDecoder(bundle_dir)
    raw = load_recording(next(p for p in asset_edfs if p.name == "S001R12.edf"))
    sfreq = float(raw.info["sfreq"])
    data = raw.get_data(picks=pick_indices(raw.ch_names, dec.ch_names).tolist()) * 1e6
    events, event_id = get_events(raw, {"T1": "left_hand", "T2": "right_hand"})
    names = {code: name for name, code in event_id.items()}
    onsets = events[:, 0] - raw.first_samp
    cues = [names[c] for c in events[:, 2]]
    res = pseudo_online(dec, data, sfreq, (onsets, cues), step_s=0.0625, trial_s=4.0)
    n_pad = int(round(float(dec.bundle.meta.get("pad_s", 0.0)) * sfreq))
    assert n_pad > 0  # the signal part, not the padded window, must reach past the cue
    sc = CuedRunScorer(res.labels, sfreq=sfreq, trial_s=4.0,
                       start_s=(dec.window_samples - n_pad) / sfreq)
    t0 = 86_412.318  # an LSL clock reading
    items = [(o / sfreq, 0, lab) for o, lab in zip(onsets, cues, strict=True)]
    items += [((e - 1) / sfreq, 1, row) for e, row in zip(res.ends, res.outputs, strict=True)]
    for t, kind, x in sorted(items, key=lambda it: (it[0], it[1])):
        if kind == 0:
            sc.on_marker(x, t0 + t)
        else:
            sc.on_decision(x, t0 + t)
    sc.finish()
    assert len(sc.results) == len(res.trial_correct) == 15
    live_correct = np.array([r.correct for r in sc.results])
    live_ttd = np.array([np.nan if r.time_to_decision_s is None else r.time_to_decision_s
                         for r in sc.results])
    np.testing.assert_array_equal(live_correct, res.trial_correct)
    assert 0 < live_correct.sum() < 15  # both outcomes occur: the comparison means something
    np.testing.assert_array_equal(np.isfinite(live_ttd), np.isfinite(res.time_to_decision))
    np.testing.assert_allclose(live_ttd, res.time_to_decision, rtol=0, atol=1e-6)
    assert len(np.unique(np.round(live_ttd[live_correct], 4))) > 1
    s = sc.summary()
    assert s.n_correct == int(res.trial_correct.sum())
    assert s.median_time_to_decision_s == pytest.approx(res.summary()["median_time_to_decision_s"])


def test_velocity_dkf_tracks_intended_velocity():
    rng = np.random.default_rng(0)
    # cue sequence: blocks of left / rest / right, 40 steps each, repeated
    cues = (["left_hand"] * 40 + [None] * 40 + ["right_hand"] * 40) * 4
    Z = cue_velocity(cues)
    assert Z.shape == (480, 1) and set(Z[:, 0]) == {-1.0, 0.0, 1.0}
    # noisy classifier output: p(right) centred on (z + 1) / 2
    p_right = np.clip((Z[:, 0] + 1) / 2 + 0.25 * rng.standard_normal(len(Z)), 0, 1)
    X = np.stack([1 - p_right, p_right], axis=1)
    dkf = VelocityDKF(random_state=0).fit(X, Z)
    dkf.reset()
    est = np.array([dkf.step(x)[0] for x in X])
    raw = X[:, 1] - X[:, 0]
    err_dkf = np.mean((est - Z[:, 0]) ** 2)
    err_raw = np.mean((raw - Z[:, 0]) ** 2)
    assert err_dkf < 0.7 * err_raw, (err_dkf, err_raw)
    assert np.isnan(dkf.step([np.nan, np.nan])).all()
