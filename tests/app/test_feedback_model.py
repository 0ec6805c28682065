"""Feedback model (Qt-free): smoothing, Graz bar, cursor task, cued-run scoring, DKF velocity."""
from __future__ import annotations

import math

import numpy as np
import pytest

from app.feedback_model import (
    CuedRunScorer,
    CursorConfig,
    CursorTask,
    OutputSmoother,
    VelocityDKF,
    bar_value,
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
    v = velocity_from_probs([0.1, 0.6, 0.3], ["feet", "left_hand", "right_hand"], dims=2)
    assert v == pytest.approx([-0.3, 0.1])
    assert velocity_from_probs([0.25, 0.75], labels, dims=1) == pytest.approx([0.5])


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
    with pytest.raises(ValueError, match="dims"):
        CursorConfig(dims=3)
    with pytest.raises(ValueError, match="leaves the workspace"):
        CursorConfig(target_distance=0.95, target_radius=0.1)


def test_cued_run_scorer_accuracy_and_time_to_decision():
    labels = ["left_hand", "right_hand"]
    sc = CuedRunScorer(labels, {"T1": "left_hand", "T2": "right_hand"}, trial_s=4.0,
                       start_s=0.5, threshold=0.7, tau_s=0.0)
    assert sc.class_of("T0") is None and sc.class_of("769") is None
    # trial 1: T1 (left) at t=10, decisions every 0.5 s; left prob crosses 0.7 at t=11.5
    sc.on_marker("T1", 10.0)
    for k, p_left in enumerate([0.9, 0.6, 0.65, 0.8, 0.9, 0.9, 0.9, 0.9]):
        sc.on_decision([p_left, 1 - p_left], 10.0 + 0.5 * k)  # first one (t=10.0) is before start
    sc.on_marker("T0", 14.2)  # rest markers don't end a trial early
    # trial 2: T2 (right) but the decoder says left throughout; never reaches the threshold
    sc.on_marker("T2", 20.0)
    for k in range(1, 8):
        sc.on_decision([0.6, 0.4], 20.0 + 0.5 * k)
    ended = sc.advance(24.5)
    assert ended is not None and ended.label == "right_hand"
    # trial 3: T2 with no decisions at all (stream stalled): not scored
    sc.on_marker("T2", 30.0)
    sc.finish()
    r1, r2, r3 = sc.results
    assert (r1.label, r1.predicted, r1.correct, r1.decided) == ("left_hand", "left_hand", True, "left_hand")
    assert r1.time_to_decision_s == pytest.approx(1.5)
    assert r1.n_decisions == 7
    assert (r2.predicted, r2.correct, r2.time_to_decision_s) == ("left_hand", False, None)
    assert r3.n_decisions == 0 and r3.predicted is None
    s = sc.summary()
    assert (s.n_trials, s.n_correct, s.n_undecided) == (2, 1, 1)
    assert s.accuracy == pytest.approx(0.5) and s.chance == pytest.approx(0.5)
    assert s.mean_time_to_decision_s == pytest.approx(1.5)
    assert "1/2 correct (50 %" in s.line()


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
