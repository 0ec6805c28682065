"""The Graz calibration state machine, driven by a fake clock (deterministic, no sleeping)."""
from __future__ import annotations

import math
from collections import Counter

import pytest

from neurodeck.acquisition.markers import CODES
from neurodeck.app.protocol import (
    CalibrationProtocol,
    EventLog,
    MarkerSink,
    Phase,
    ProtocolConfig,
    ProtocolError,
    SimulatorCueSink,
    run_blocking,
    trial_order,
)

CFG = ProtocolConfig(
    classes=("left_hand", "right_hand", "feet"),
    trials_per_class=4,
    fixation_s=2.0,
    cue_s=1.25,
    imagery_s=3.0,
    rest_min_s=1.5,
    rest_max_s=2.5,
    lead_in_s=1.0,
    beep=True,
    seed=7,
)


def run_to_end(proto, clock, step=None):
    """Jump the fake clock to each deadline and tick until done; returns the number of ticks."""
    n = 0
    while not proto.done:
        clock.t = proto.next_deadline if step is None else clock.t + step
        proto.tick()
        n += 1
        assert n < 10_000
    return n


def test_full_run_marker_sequence_and_durations(fake_clock):
    proto = CalibrationProtocol(CFG, clock=fake_clock)
    log = EventLog()
    proto.add_listener(log)
    t0 = fake_clock.t
    proto.start()
    assert proto.phase is Phase.REST and proto.next_deadline == t0 + 1.0
    run_to_end(proto, fake_clock)
    assert proto.phase is Phase.FINISHED
    names = log.marker_names()
    assert names[0] == "experiment_start" and names[-1] == "experiment_stop"
    # each trial: trial_start fixation beep <class> feedback_start trial_end
    body = names[1:-1]
    assert len(body) == 6 * CFG.n_trials
    for k in range(CFG.n_trials):
        t = body[6 * k: 6 * k + 6]
        assert t[:3] == ["trial_start", "fixation", "beep"]
        assert t[3] in CFG.classes
        assert t[4:] == ["feedback_start", "trial_end"]
    # phase durations, measured between events
    ev = log.events
    for a, b in zip(ev, ev[1:]):
        dt = b.time - a.time
        if a.phase is Phase.FIXATION:
            assert dt == pytest.approx(2.0)
        elif a.phase is Phase.CUE:
            assert dt == pytest.approx(1.25)
        elif a.phase is Phase.IMAGERY:
            assert dt == pytest.approx(3.0)
        elif a.phase is Phase.REST and a.trial > 0:
            assert 1.5 <= dt <= 2.5
    rests = [b.time - a.time for a, b in zip(ev, ev[1:]) if a.phase is Phase.REST and a.markers == ("trial_end",)]
    assert len(rests) == CFG.n_trials
    assert len({round(r, 6) for r in rests}) > 1, "inter-trial interval must be randomised"
    assert proto.progress == (12, 12)
    assert [r.index for r in proto.completed] == list(range(1, 13))
    # event codes are the documented GDF codes
    cue_codes = [e.codes[0] for e in ev if e.phase is Phase.CUE]
    assert set(cue_codes) == {769, 770, 771}


def test_balanced_randomised_order_and_seed():
    import numpy as np

    a = CalibrationProtocol(CFG).order
    b = CalibrationProtocol(CFG).order
    c = CalibrationProtocol(ProtocolConfig(**{**CFG.to_dict(), "seed": 8, "classes": CFG.classes})).order
    assert a == b  # same seed, same order
    assert a != c
    assert Counter(a) == {"left_hand": 4, "right_hand": 4, "feet": 4}
    # balanced in blocks: every prefix of length 3k holds k of each class
    for k in range(1, 5):
        assert Counter(a[: 3 * k]) == {c: k for c in CFG.classes}
    order = trial_order(["left_hand", "right_hand"], 50, np.random.default_rng(0))
    assert order[:10] != ["left_hand", "right_hand"] * 5  # not a fixed alternation


def test_progress_trial_k_of_n(fake_clock):
    proto = CalibrationProtocol(CFG, clock=fake_clock)
    proto.start()
    assert proto.trial == 0 and proto.progress == (0, 12)
    fake_clock.t = proto.next_deadline
    proto.tick()
    assert proto.phase is Phase.FIXATION and proto.trial == 1
    for _ in range(3):  # cue, imagery, rest
        fake_clock.t = proto.next_deadline
        proto.tick()
    assert proto.phase is Phase.REST and proto.progress == (1, 12) and proto.trial == 1


def test_pause_repeats_interrupted_trial_and_keeps_balance(fake_clock):
    proto = CalibrationProtocol(CFG, clock=fake_clock)
    log = EventLog()
    proto.add_listener(log)
    proto.start()
    # go to the cue of trial 2
    while not (proto.phase is Phase.CUE and proto.trial == 2):
        fake_clock.t = proto.next_deadline
        proto.tick()
    interrupted_class = proto.current_class
    fake_clock.advance(0.5)
    proto.pause()
    assert proto.phase is Phase.PAUSED and math.isinf(proto.next_deadline)
    # time passes while paused: nothing happens
    fake_clock.advance(100.0)
    assert proto.tick() == []
    assert proto.progress == (1, 12)
    proto.resume()
    assert proto.phase is Phase.REST
    assert proto.next_deadline == pytest.approx(fake_clock.t + CFG.rest_min_s)
    fake_clock.t = proto.next_deadline
    proto.tick()
    assert proto.phase is Phase.FIXATION and proto.trial == 2
    assert proto.current_class == interrupted_class
    run_to_end(proto, fake_clock)
    assert proto.phase is Phase.FINISHED
    assert proto.interrupted == 1
    assert Counter(r.class_name for r in proto.completed) == {"left_hand": 4, "right_hand": 4, "feet": 4}
    names = log.marker_names()
    i = names.index("pause")
    assert names[i - 1] == interrupted_class and names[i + 1] == "resume"
    assert names.count(interrupted_class) == 5  # the repeated cue
    with pytest.raises(ProtocolError, match="cannot resume"):
        proto.resume()


def test_abort_keeps_completed_trials(fake_clock):
    proto = CalibrationProtocol(CFG, clock=fake_clock)
    log = EventLog()
    proto.add_listener(log)
    proto.start()
    while proto.progress[0] < 3:
        fake_clock.t = proto.next_deadline
        proto.tick()
    fake_clock.t = proto.next_deadline  # into trial 4's fixation
    proto.tick()
    proto.abort()
    assert proto.phase is Phase.ABORTED and proto.done
    assert log.marker_names()[-2:] == ["abort", "experiment_stop"]
    assert proto.progress == (3, 12)
    fake_clock.advance(50)
    assert proto.tick() == []
    with pytest.raises(ProtocolError, match="cannot abort"):
        proto.abort()
    with pytest.raises(ProtocolError, match="cannot start"):
        proto.start()


def test_late_ticks_do_not_shorten_phases(fake_clock):
    proto = CalibrationProtocol(CFG, clock=fake_clock)
    log = EventLog()
    proto.add_listener(log)
    proto.start()
    run_to_end(proto, fake_clock, step=0.37)  # coarse, irregular ticks
    ev = log.events
    for a, b in zip(ev, ev[1:]):
        if a.phase is Phase.CUE:
            assert 1.25 <= b.time - a.time < 1.25 + 0.37 + 1e-9
        if a.phase is Phase.IMAGERY:
            assert 3.0 <= b.time - a.time < 3.0 + 0.37 + 1e-9
    assert proto.phase is Phase.FINISHED


def test_zero_length_phases_chain_in_one_tick(fake_clock):
    cfg = ProtocolConfig(classes=("left_hand", "rest"), trials_per_class=1, fixation_s=0.0,
                         cue_s=0.5, imagery_s=0.0, rest_min_s=0.0, rest_max_s=0.0, lead_in_s=0.0,
                         beep=False, seed=1)
    proto = CalibrationProtocol(cfg, clock=fake_clock)
    proto.start()
    events = proto.tick()
    assert [e.phase for e in events] == [Phase.FIXATION, Phase.CUE]
    fake_clock.advance(0.5)
    events = proto.tick()
    assert [e.phase for e in events] == [Phase.IMAGERY, Phase.REST, Phase.FIXATION, Phase.CUE]


class FakeOutlet:
    def __init__(self):
        self.pushed = []

    def push(self, label, timestamp=None):
        self.pushed.append((label, timestamp))
        return timestamp


class FakeSimulator:
    def __init__(self):
        self.cues = []

    def cue(self, class_name, duration, *, mark=True):
        assert mark is False
        self.cues.append((class_name, duration))


def test_marker_and_simulator_sinks(fake_clock):
    outlet, sim = FakeOutlet(), FakeSimulator()
    proto = CalibrationProtocol(CFG, clock=fake_clock)
    proto.add_listener(MarkerSink(outlet))
    proto.add_listener(SimulatorCueSink(sim, CFG))
    proto.start()
    run_to_end(proto, fake_clock)
    labels = [lab for lab, _ in outlet.pushed]
    assert labels[0] == str(CODES["experiment_start"]) and labels[-1] == str(CODES["experiment_stop"])
    assert all(lab.isdigit() for lab in labels)
    assert len(labels) == 2 + 6 * 12
    assert [c for c, _ in sim.cues] == proto.order
    assert all(d == pytest.approx(1.25 + 3.0) for _, d in sim.cues)
    # marker timestamps are the event (clock) times, increasing
    ts = [t for _, t in outlet.pushed]
    assert ts == sorted(ts) and ts[0] == pytest.approx(1000.0)


def test_failing_listener_is_reported_not_fatal(fake_clock):
    proto = CalibrationProtocol(CFG, clock=fake_clock)
    errors = []

    def broken(event):
        if event.phase is Phase.CUE:
            raise RuntimeError("outlet gone")

    proto.add_listener(broken)
    proto.add_error_listener(errors.append)
    proto.start()
    run_to_end(proto, fake_clock)
    assert proto.phase is Phase.FINISHED
    assert len(errors) == 12 and "outlet gone" in str(errors[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"classes": ("left_hand",)}, "at least 2"),
        ({"classes": ("left_hand", "jump")}, "unknown"),
        ({"classes": ("left_hand", "left_hand")}, "duplicates"),
        ({"classes": "left_hand"}, "list of class names"),
        ({"trials_per_class": 0}, ">= 1"),
        ({"trials_per_class": 2.5}, "integer"),
        ({"cue_s": 0}, "cue_s"),
        ({"fixation_s": -1}, "fixation_s"),
        ({"imagery_s": float("nan")}, "imagery_s"),
        ({"rest_min_s": 3.0, "rest_max_s": 2.0}, "rest_max_s"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ProtocolError, match=match):
        ProtocolConfig(**kwargs)


def test_config_toml_roundtrip(tmp_path):
    path = CFG.save(tmp_path / "proto.toml")
    assert ProtocolConfig.load(path) == CFG
    cfg2 = ProtocolConfig(seed=None)
    assert ProtocolConfig.load(cfg2.save(tmp_path / "p2.toml")) == cfg2
    (tmp_path / "bad.toml").write_text("[protocol]\nclasses = ['left_hand']\n")
    with pytest.raises(ProtocolError, match="at least 2"):
        ProtocolConfig.load(tmp_path / "bad.toml")
    (tmp_path / "extra.toml").write_text("[protocol]\nspeed = 3\n")
    with pytest.raises(ProtocolError, match="unknown protocol settings"):
        ProtocolConfig.load(tmp_path / "extra.toml")
    with pytest.raises(ProtocolError, match="not found"):
        ProtocolConfig.load(tmp_path / "missing.toml")
    assert CFG.expected_duration_s() == pytest.approx(1.0 + 12 * (2 + 1.25 + 3 + 2.0))


def test_run_blocking_headless(fake_clock):
    proto = CalibrationProtocol(CFG, clock=fake_clock)
    log = EventLog()
    proto.add_listener(log)
    sleeps = []

    def sleep(dt):  # time passes only when the runner sleeps
        sleeps.append(dt)
        fake_clock.advance(max(dt, 1e-3))

    run_blocking(proto, poll_s=0.05, sleep=sleep)
    assert proto.phase is Phase.FINISHED and proto.progress == (12, 12)
    assert max(sleeps) <= 0.05
    ev = log.events
    for a, b in zip(ev, ev[1:]):
        if a.phase is Phase.IMAGERY:
            assert b.time - a.time == pytest.approx(3.0, abs=0.002)
    stop_after = iter([False] * 50 + [True])
    proto2 = CalibrationProtocol(CFG, clock=fake_clock)
    run_blocking(proto2, poll_s=0.05, sleep=sleep, should_stop=lambda: next(stop_after))
    assert proto2.phase is Phase.ABORTED


def test_signal_guard_pauses_takes_back_trials_without_data_and_resumes():
    from neurodeck.app.protocol import CalibrationProtocol, Phase, ProtocolConfig, SignalGuard

    cfg = ProtocolConfig(trials_per_class=2, fixation_s=1.0, cue_s=1.0, imagery_s=2.0,
                         rest_min_s=1.0, rest_max_s=1.0, lead_in_s=1.0, beep=False, seed=0)
    proto = CalibrationProtocol(cfg, clock=lambda: 0.0)
    guard = SignalGuard(proto)
    proto.start(0.0)
    t = 0.0
    while len(proto.completed) < 1:  # trial 1 ends at 5.0
        t += 0.25
        proto.tick(t)
    assert proto.completed[0].imagery_end == 5.0
    first = proto.completed[0].class_name
    assert guard.on_state("connected", t) is None  # nothing to do
    # the data stopped at 4.5 (inside trial 1's imagery); the stall is seen at 5.25
    assert guard.on_state("stalled", 5.25, last_data=4.5) == "paused"
    assert proto.phase is Phase.PAUSED and proto.completed == []
    assert [x.class_name for x in proto.interrupted_trials] == [first]
    assert proto.interrupted_trials[0].cue_time == 2.0
    assert guard.on_state("lost", 6.0) is None  # already paused; one outage
    assert len(guard.outages) == 1 and guard.outages[0][1] == 4.5
    assert guard.on_state("recovered", 9.0) == "resumed"
    assert proto.phase is Phase.REST and guard.outages[0][2] == 9.0
    # an operator pause is never resumed by the guard
    proto.pause(9.5)
    assert guard.on_state("stalled", 10.0) is None
    assert guard.on_state("connected", 11.0) is None and proto.phase is Phase.PAUSED
    proto.resume(12.0)
    while not proto.done:
        t = max(t, 12.0) + 0.25
        proto.tick(t)
    assert proto.progress == (4, 4)
    assert sorted(x.class_name for x in proto.completed) == sorted(proto.order)


@pytest.mark.parametrize("meas_date", [None, 1_700_000_000])
def test_drop_interrupted_leaves_out_the_cut_trials_only(meas_date):
    import datetime as dt

    import mne
    import numpy as np

    from neurodeck.acquisition.io import get_events
    from neurodeck.app.protocol import BAD_TRIAL, drop_interrupted

    info = mne.create_info(["C3", "C4"], 100.0, "eeg")
    raw = mne.io.RawArray(np.zeros((2, 1000)), info, first_samp=250, verbose="error")
    if meas_date is not None:
        raw.set_meas_date(dt.datetime.fromtimestamp(meas_date, dt.UTC))
    t0 = raw.first_time if meas_date is not None else 0.0
    raw.set_annotations(mne.Annotations(
        [t0 + 1.0, t0 + 3.0, t0 + 3.0, t0 + 6.0],
        [0, 0, 0, 0], ["left_hand", "right_hand", BAD_TRIAL, "left_hand"],
        orig_time=raw.info["meas_date"]))
    events, _ = get_events(raw, {"left_hand": "left_hand", "right_hand": "right_hand"})
    assert len(events) == 3
    kept = drop_interrupted(raw, events)
    assert (kept[:, 0] - raw.first_samp).tolist() == [100, 600]
