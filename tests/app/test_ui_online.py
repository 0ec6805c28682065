"""Online page: a saved bundle decodes a Player replaying a real EEGMMIDB run (loopback LSL);
three-class feedback in a cued run on the live simulator; a continuous (DKF) bundle drives the
cursor on the simulator's continuous mode."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QPoint, QPointF, Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QFileDialog  # noqa: E402

from neurodeck.app.protocol import Phase, ProtocolConfig  # noqa: E402
from neurodeck.app.session import Session  # noqa: E402
from neurodeck.app.ui.online_page import OnlinePage  # noqa: E402
from neurodeck.app.ui.qt_models import AppContext  # noqa: E402
from tests.app.test_continuous_cli import write_recording  # noqa: E402

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def page(qtbot):
    before = set(threading.enumerate())
    ctx = AppContext()
    p = OnlinePage(ctx)
    qtbot.addWidget(p)
    p.resize(1300, 850)
    p.show()
    yield p
    p.shutdown()
    assert p.engine is None and not p.jobs.busy
    if getattr(ctx, "participant_screen", None) is not None:
        ctx.participant_screen.close()
    ctx.shutdown()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()
            and not isinstance(t, threading._DummyThread)
            and t.name.startswith(("neurodeck", "player", "inlet", "recorder", "simulator"))
            and "cleanup" not in t.name]  # liblsl resolvers are dropped on a fire-and-forget thread
    assert not left, left


def _browse(page, qtbot, monkeypatch, folder) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(folder)))
    browse = next(b for b in page.findChildren(type(page.load_button))
                  if b.text().startswith("Browse"))
    with qtbot.waitSignal(page.model_loaded, timeout=60000):
        qtbot.mouseClick(browse, LEFT)


def _replay(page, qtbot, edf, speed):
    sm = page.context.streams
    with qtbot.waitSignal(sm.connection_changed, timeout=20000):
        sm.start_player(edf, speed=speed, loop=False)
    assert sm.marker_inlet is not None


def test_online_run_decodes_scores_publishes_and_records(page, qtbot, asset_edfs, bundle_dir,
                                                         session_root):
    import pylsl

    errors = []
    page.context.error_reported.connect(errors.append)
    session = Session.create(session_root, "S001", "online")
    page.context.set_session(session)
    with qtbot.waitSignal(page.model_loaded, timeout=30000):
        assert page.load_model(bundle_dir)
    assert page.decoder.labels == ["left_hand", "right_hand"]
    assert "csp-lda" in page.model_info.text()
    assert not page.start_button.isEnabled()  # no stream yet
    run12 = next(p for p in asset_edfs if p.name == "S001R12.edf")
    _replay(page, qtbot, run12, speed=4.0)
    assert page.start_button.isEnabled()
    with qtbot.waitSignal(page.run_started, timeout=10000):
        assert page.start()
    assert page.busy_reason().startswith("online decoding")
    # an independent LSL inlet receives the published decisions
    infos = pylsl.resolve_byprop("name", page.out_name, timeout=10.0)
    assert infos, "decision stream not found"
    outside = pylsl.StreamInlet(infos[0])
    outside.open_stream(timeout=5.0)
    # three cued trials scored live (a cue every ~8.3 s of file time; x4 speed)
    qtbot.waitUntil(lambda: page.scorer.summary().n_trials >= 3, timeout=45000)
    qtbot.waitUntil(lambda: page.recorder is not None, timeout=10000)
    qtbot.wait(300)
    received = []
    for _ in range(50):
        chunk, ts = outside.pull_chunk(timeout=0.2)
        received += chunk
        if len(received) >= 10:
            break
    assert len(received) >= 10
    arr = np.asarray(received)
    assert arr.shape[1] == 3  # p(left), p(right), valid
    valid = arr[:, 2] == 1
    assert valid.any()
    np.testing.assert_allclose(arr[valid, :2].sum(axis=1), 1.0, atol=1e-5)
    page.stop()
    assert page.engine is None and page.badge.state == "stopped"
    st = page.last_stats
    # decisions still queued for the GUI when the run stopped are dropped, none is invented
    assert st.decisions >= len(page.decisions) >= 50
    assert page.n_valid >= 40
    # the live score is consistent with the table and the per-trial results
    s = page.scorer.summary()
    scored = [r for r in page.scorer.results if r.n_decisions > 0]
    assert s.n_trials == len(scored) >= 3
    assert s.n_correct == sum(r.correct for r in scored)
    assert page.trials_table.rowCount() == len(page.scorer.results)
    assert f"{s.n_correct}/{s.n_trials} correct" in page.summary_label.text()
    assert {r.label for r in scored} <= {"left_hand", "right_hand"}
    for r in scored:
        assert r.time_to_decision_s is None or 2.0 <= r.time_to_decision_s <= 4.0
    assert "latency p50" in page.stats_label.text()
    # the Graz bar shows the smoothed p(right) - p(left) of the last valid decision
    last = page._history[-1][1]
    assert page.graz.value == pytest.approx(last[1] - last[0])
    # the run was recorded into the session: EEG + markers + decisions
    qtbot.waitUntil(lambda: page.last_saved is not None, timeout=20000)
    assert page.last_saved.parent == session.recordings_dir
    assert page.last_saved.name.startswith("online-run01")
    assert list(session.recordings_dir.glob("online-run01*.npz")), list(session.recordings_dir.iterdir())
    assert not errors, errors


def test_online_cursor_with_dkf_and_errors(page, qtbot, asset_edfs, bundle_dir, tmp_path,
                                           monkeypatch):
    errors = []
    page.context.error_reported.connect(errors.append)
    assert not page.start()
    assert "Load a model" in errors[-1]
    with qtbot.waitSignal(page.model_loaded, timeout=30000):
        page.load_model(bundle_dir)
    assert not page.start()
    assert "Connect an EEG stream" in errors[-1]
    # DKF on the model's outputs over a training run (coarse hop keeps the test short)
    run08 = next(p for p in asset_edfs if p.name == "S001R08.edf")
    with qtbot.waitSignal(page.dkf_ready, timeout=60000):
        assert page.fit_dkf(run08, step_s=0.25)
    assert page.dkf is not None and page.driver_box.currentData() == "dkf"
    # today's classifier-output DKF saved as a continuous bundle by a click, loaded back
    from neurodeck.decoders.continuous import ContinuousDecoder

    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(folder)))
    with qtbot.waitSignal(page.dkf_saved, timeout=60000) as saved:
        qtbot.mouseClick(page.save_dkf_button, LEFT)
    path = saved.args[0]
    assert path == str(folder / f"cursor-dkf-{bundle_dir.name}")
    assert page.model_box.findData(path) >= 0
    X = np.random.default_rng(0).dirichlet([1.0, 1.0], size=30)  # classifier outputs
    page.dkf.reset()
    expect = np.array([page.dkf.dkf.step(x) for x in X])
    got = ContinuousDecoder(path).decide_sequence(X)
    np.testing.assert_allclose(got[:, 0], expect[:, 0], rtol=1e-4, atol=1e-6)  # same filter
    page.tabs.setCurrentIndex(1)
    run12 = next(p for p in asset_edfs if p.name == "S001R12.edf")
    _replay(page, qtbot, run12, speed=5.0)
    assert page.start()
    # cues start cursor trials; each ends as a hit, a miss or a time-out when the next cue comes
    qtbot.waitUntil(lambda: len(page.task.trials) >= 2, timeout=30000)
    page.stop()
    for tr in page.task.trials:
        assert tr.outcome in ("hit", "miss", "timeout")
        assert tr.target in (0, 1)
    assert "Cursor:" in page.cursor_label.text()
    # the saved bundle drives the cursor on the same stream
    with qtbot.waitSignal(page.model_loaded, timeout=30000):
        page.load_model(path)
    assert page.continuous and page.decoder.targets == ["vx"] and page.hop.value() == 0.25
    assert page.dims_box.currentData() == 1 and not page.fit_dkf_button.isEnabled()
    assert page.start()
    qtbot.waitUntil(lambda: len(page.cursor_trace) >= 10, timeout=30000)
    page.stop()
    # without a stream there is nothing to start
    page.context.streams.disconnect()
    assert not page.start_button.isEnabled()
    assert "No EEG stream" in page.stream_label.text()
    assert not [e for e in errors if "Online run stopped" in e]


def test_model_refused_on_a_stream_without_its_channels(page, qtbot, bundle_dir):
    errors = []
    page.context.error_reported.connect(errors.append)
    with qtbot.waitSignal(page.model_loaded, timeout=30000):
        page.load_model(bundle_dir)
    sm = page.context.streams
    with qtbot.waitSignal(sm.connection_changed, timeout=20000):
        sm.start_simulator(n_channels=8, srate=160.0)
    assert sm.description.n_channels == 8
    assert not page.start()
    assert page.engine is None and page.start_button.isEnabled()
    assert errors[-1].startswith("Could not start decoding: model channels missing from the stream")
    assert "'Iz..'" in errors[-1]  # the 8-channel simulator has C3, Cz, C4, ... but no Iz


# ------------------------------------------------------------------------------ 3 classes (issue 12)
CLASSES = ("left_hand", "right_hand", "feet")
SIM = {"n_channels": 16, "srate": 128.0}
FAST = ProtocolConfig(classes=CLASSES, trials_per_class=2, fixation_s=0.5, cue_s=0.5,
                      imagery_s=3.5, rest_min_s=0.5, rest_max_s=0.8, lead_in_s=0.5, beep=False,
                      seed=4)


@pytest.fixture(scope="module")
def bundle3(tmp_path_factory):
    """A ts-lr bundle trained on a simulated 3-class calibration (12 trials per class)."""
    from neurodeck.acquisition.simulator import SimulatorConfig, simulate_raw
    from neurodeck.app.workflow import fit_bundle, load_trials, make_config

    d = tmp_path_factory.mktemp("three")
    raw = simulate_raw(SimulatorConfig(classes=CLASSES, trials_per_class=12, seed=11, **SIM))
    raw.save(d / "calibration_raw.fif", verbose="error")
    events = {c: c for c in CLASSES}
    trials = load_trials(d / "calibration_raw.fif", events)
    path, _, scores = fit_bundle(trials, make_config("ts-lr", events=events), d / "ts-lr")
    assert scores["train_score"] > 0.9
    return path


@pytest.mark.slow  # a real-time cued run of 6 trials (~32 s); 3 classes are also in the default run
# (the Train page's marker mapping, the CLI on LabRecorder files, the multi-class bar)
def test_three_class_cued_run_shows_the_winning_class_on_both_screens(page, qtbot, bundle3,
                                                                      monkeypatch):
    errors: list[str] = []
    page.context.error_reported.connect(errors.append)
    page.context.settings.protocol = FAST.to_dict()
    _browse(page, qtbot, monkeypatch, bundle3)
    assert sorted(page.decoder.labels) == sorted(CLASSES)
    assert page.graz.multi and page.graz.classes == page.decoder.labels
    sm = page.context.streams
    with qtbot.waitSignal(sm.connection_changed, timeout=20000):
        sm.start_simulator(classes=CLASSES, seed=12, **SIM)  # a live LSL source
    qtbot.mouseClick(page.cued, LEFT, pos=QPoint(8, page.cued.height() // 2))
    assert page.cued.isChecked()
    page.cued_trials.setValue(FAST.trials_per_class)
    page.dims_box.setCurrentIndex(page.dims_box.findData(2))  # the cursor follows the cues too
    assert page.cursor_view.target_names == page.decoder.labels  # a target per class
    qtbot.mouseClick(page.participant_button, LEFT)
    screen = page.context.participant_screen

    seen: list[tuple[int, str, str, str, str | None]] = []

    protocols, during_cue = [], []

    def sample() -> None:  # what both screens show during the imagery of each trial
        r = page.runner
        if r is not None and not protocols:
            protocols.append(r.protocol)
        if r is not None and r.protocol.phase is Phase.CUE and page.task.active:
            during_cue.append(float(np.abs(page.task.position).max()))
        if r is None or r.protocol.phase is not Phase.IMAGERY or page.graz.winner is None:
            return
        probs = page._history[-1][1]  # the smoothed probabilities the bar was given
        best = page.decoder.labels[int(np.argmax(probs))]
        seen.append((r.protocol.trial, page.graz.cue, page.graz.winner, best, screen.bar.winner))

    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(40)
    posted: list[str] = []  # the run's own markers, as the Connect page's traces get them
    sm.marker_posted.connect(lambda t, name: posted.append(name))
    shots = os.environ.get("NEURODECK_SCREENSHOTS")
    page.resize(1280, 800)
    with qtbot.waitSignal(page.run_started, timeout=20000):
        qtbot.mouseClick(page.start_button, LEFT)
    if shots:  # docs/screenshots: late in an imagery period, on both screens
        qtbot.waitUntil(lambda: len({s[0] for s in seen}) >= 2 and seen[-1][2] == seen[-1][1]
                        and page.runner.protocol.phase is Phase.IMAGERY
                        and page.graz.probs.max() > 0.6, timeout=60000)
        page.grab().save(str(Path(shots) / "05c-online-3class.png"))
        screen.showNormal()
        screen.resize(1280, 800)
        qtbot.wait(100)
        screen.grab().save(str(Path(shots) / "05d-participant-online-3class.png"))
    with qtbot.waitSignal(page.run_stopped, timeout=120000):
        pass  # the cued run ends by itself
    timer.stop()
    assert not errors, errors
    s = page.scorer.summary()
    assert s.n_trials == 6 and page.trials_table.rowCount() == 6, s
    assert set(CLASSES) | {"experiment_start", "fixation", "trial_end"} <= set(posted), posted
    # the bar's winner is the class of the largest smoothed probability, on both screens
    assert len(seen) > 50
    assert all(w == best == shown for _, _, w, best, shown in seen)
    # and at the end of each imagery period it is mostly the cued class (chance: 1 in 3)
    last = {trial: (cue, w) for trial, cue, w, _, _ in seen}
    assert {cue for cue, _ in last.values()} == set(CLASSES)
    hits = sum(cue == w for cue, w in last.values())
    assert hits >= 4, last
    assert len({w for _, w in last.values()}) >= 2  # not one class all the time
    # each cue started a cursor trial towards its class's target (the last may still be open)
    # (a trial cut by a stalled stream on this busy machine is not counted, and cued again)
    trials = page.task.trials
    cues = iter(e.class_name for e in protocols[0].events if e.phase is Phase.CUE)
    assert all(page.decoder.labels[t.target] in cues for t in trials)  # in the cues' order
    assert len(trials) >= 5
    assert during_cue and max(during_cue) == 0.0  # it moves during imagery only, as the bar
    n_hits = sum(t.outcome == "hit" for t in trials)
    # (hits are not asserted: at a cue the smoothed output still favours the previous class for
    # about a window's length, so the cursor may first reach the previous target)
    print(f"3-class cued run: {hits}/6 imagery periods end on the cued class; "
          f"{s.line()}; {len(seen)} samples of both screens; cursor (2-D, 3 targets): "
          f"{n_hits} hits, {sum(t.outcome == 'miss' for t in trials)} misses of {len(trials)}")


def test_replay_of_a_labrecorder_xdf_connects_its_eeg_and_cue_streams(page, qtbot, shared_data):
    """bci-essentials' XDF holds EEG, Unity's cue markers and the online program's string replies:
    the replay connects the EEG and the cue markers (it took the first outlet, a string stream)."""
    xdf = shared_data / "xdf" / "bci-essentials" / "sub-P001_ses-S001_task-T1_run-003_eeg.xdf"
    _replay(page, qtbot, xdf, speed=5.0)
    sm = page.context.streams
    assert sm.description.name.endswith("g.USBamp-1") and sm.description.n_channels == 16
    assert sm.marker_description.name.endswith("UnityMarkerStream")


@pytest.mark.slow  # trains on two real runs, then replays a third (30 s at 5x)
def test_three_class_bar_on_a_replay_of_another_labs_recording(page, qtbot, shared_data, cli,
                                                               tmp_path, monkeypatch):
    """bci-essentials (LabRecorder XDF, g.USBamp 16 ch @ 256 Hz, markers 'switch,3,<k>,2'):
    a 3-class bundle from `neurodeck train --event`, run on a replay of the held-out run; its
    own cue markers drive scoring and the cue of the N-class bar, whose classes have no Graz
    direction (evenly spaced)."""
    runs = sorted((shared_data / "xdf" / "bci-essentials").glob("*run-00[123]_eeg.xdf"))
    assert len(runs) == 3
    classes = ["class0", "class1", "class2"]
    events = [a for k, c in enumerate(classes) for a in ("--event", f"switch,3,{k},2={c}")]
    r = cli("train", f"{runs[0]},{runs[1]}", *events, "--pipeline", "mdm", "--out",
            tmp_path / "mdm", "--no-progress", timeout=300)
    assert r.returncode == 0, r.stderr
    errors: list[str] = []
    page.context.error_reported.connect(errors.append)
    _browse(page, qtbot, monkeypatch, tmp_path / "mdm")
    assert page.graz.multi and sorted(page.graz.classes) == classes
    _replay(page, qtbot, runs[2], speed=5.0)
    qtbot.mouseClick(page.participant_button, LEFT)
    screen = page.context.participant_screen
    seen = []

    def sample() -> None:
        if page.engine is not None and page.graz.cue is not None and page.graz.winner:
            best = page.decoder.labels[int(np.argmax(page._history[-1][1]))]
            seen.append((page.graz.cue, page.graz.winner, best, screen.bar.winner,
                         screen.bar.cue))

    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(40)
    with qtbot.waitSignal(page.run_started, timeout=10000):
        qtbot.mouseClick(page.start_button, LEFT)
    qtbot.waitUntil(lambda: page.scorer.summary().n_trials >= 6, timeout=60000)
    with qtbot.waitSignal(page.run_stopped, timeout=10000):
        qtbot.mouseClick(page.stop_button, LEFT)
    timer.stop()
    assert not errors, errors
    s = page.scorer.summary()
    print(f"bci-essentials run 3, 3 classes: {s.line()}; {len(seen)} samples")
    assert s.chance == pytest.approx(1 / 3) and s.n_trials >= 6
    assert {r.label for r in page.scorer.results} <= set(classes)
    assert len(seen) > 20 and {c for c, *_ in seen} <= set(classes)
    # both screens show the cue and the class of the largest smoothed probability
    assert all(w == best == shown and cue == shown_cue for cue, w, best, shown, shown_cue in seen)

# ------------------------------------------------------------------------------ continuous (issue 15)
@pytest.mark.slow  # 30 s of live decoding; the default run loads and runs a DKF bundle above
def test_continuous_bundle_moves_the_cursor_with_the_decoded_velocity(page, qtbot, cli, tmp_path,
                                                                     monkeypatch):
    import pylsl

    rec = write_recording(tmp_path, "simA", seed=1, seconds=120.0)
    bundle = tmp_path / "dkf"
    r = cli("train", rec, "--pipeline", "dkf", "--target", "*-truth", "--picks", "C3,Cz,C4",
            "--window", "0.5", "--hop", "0.125", "--out", bundle)
    assert r.returncode == 0, r.stderr
    errors: list[str] = []
    page.context.error_reported.connect(errors.append)
    _browse(page, qtbot, monkeypatch, bundle)
    assert page.continuous and page.decoder.targets == ["vx", "vy"]
    assert "dkf (continuous)" in page.model_info.text()
    assert page.hop.value() == 0.125 and not page.hop.isEnabled()  # the filter's time step
    assert page.driver_box.currentData() == "model" and page.dims_box.currentData() == 2
    assert page.tabs.currentIndex() == 1 and not page.cued.isEnabled()
    assert page.cursor_view.target_names == []  # places to reach, not classes

    sm = page.context.streams
    with qtbot.waitSignal(sm.connection_changed, timeout=20000):
        sm.start_simulator(n_channels=32, srate=128.0, mode="continuous", seed=3)
    truth_name = f"{sm.simulator.config.name}-truth"
    infos = pylsl.resolve_byprop("name", truth_name, timeout=10.0)
    assert infos, f"no {truth_name} stream"
    truth = pylsl.StreamInlet(infos[0], max_buflen=120)
    truth.open_stream(timeout=5.0)
    qtbot.mouseClick(page.participant_button, LEFT)
    screen = page.context.participant_screen
    with qtbot.waitSignal(page.run_started, timeout=20000):
        qtbot.mouseClick(page.start_button, LEFT)
    moved = []
    qtbot.waitUntil(lambda: moved.append(page.cursor_view.position.copy()) or
                    len(page.cursor_trace) >= 240, timeout=90000)
    if os.environ.get("NEURODECK_SCREENSHOTS"):  # docs/screenshots, both screens
        shots = Path(os.environ["NEURODECK_SCREENSHOTS"])
        qtbot.waitUntil(lambda: page.task.active and np.linalg.norm(page.task.position) > 0.3,
                        timeout=30000)
        page.grab().save(str(shots / "05e-online-continuous-cursor.png"))
        screen.showNormal()
        screen.resize(1280, 800)
        screen.grab().save(str(shots / "05f-participant-cursor.png"))
    # the participant sees the operator's cursor task
    assert screen._stack.currentWidget() is screen.cursor
    np.testing.assert_array_equal(screen.cursor.position, page.cursor_view.position)
    np.testing.assert_array_equal(screen.cursor.targets, page.cursor_view.targets)
    with qtbot.waitSignal(page.run_stopped, timeout=10000):
        qtbot.mouseClick(page.stop_button, LEFT)
    assert not errors, errors
    t = np.array([c[0] for c in page.cursor_trace])
    samples, stamps = [], []
    for _ in range(100):  # the truth stream goes on: read it up to the last cursor step
        chunk, ts = truth.pull_chunk(timeout=0.5, max_samples=4096)
        samples += chunk
        stamps += ts
        if stamps and stamps[-1] >= t[-1]:
            break
    z, tz = np.asarray(samples), np.asarray(stamps)
    v = np.array([c[1] for c in page.cursor_trace])
    assert tz[0] <= t[0] and t[-1] <= tz[-1]
    # the cursor moved (not stuck at the centre) ...
    pos = np.array(moved)
    assert np.ptp(pos[:, 0]) > 0.2 and np.ptp(pos[:, 1]) > 0.2
    # ... with the velocity of the model's state, which follows the truth stream
    corr = [np.corrcoef(v[:, k], np.interp(t, tz, z[:, k]))[0, 1] for k in range(2)]
    print(f"continuous cursor: {len(t)} steps, corr with truth vx {corr[0]:.2f}, "
          f"vy {corr[1]:.2f}; training corr {page.decoder.meta['scores']['train_corr']:.2f}")
    assert min(corr) > 0.2, corr


# ------------------------------------------------------------------------------ adaptation (issue 14)
def test_adaptation_state_of_the_population_model_updates_live(page, qtbot, asset_edfs,
                                                               bundle_dir, monkeypatch):
    """The shipped population model (`default`: re-centering adapted online) on a replay of a
    subject: the page says adaptation is on and how far the reference has moved, live."""
    from neurodeck.app.feedback_model import adaptation_state

    _browse(page, qtbot, monkeypatch, bundle_dir)  # a csp-lda model has no adaptive step
    assert page.adapt_label.text() == "Adaptation: none (this model has no adaptive step)"
    population = Path(__file__).resolve().parents[2] / "assets" / "population" / "eegmmidb-default"
    _browse(page, qtbot, monkeypatch, population)
    assert page.adaptation is not None and page.adaptation.adapting
    assert page.adaptation.n_seen == 0 and page.adaptation.drift == 0.0  # starts empty
    assert page.adapt_label.text().startswith("Adaptation: on \u00b7 reference moved 0.000")
    _replay(page, qtbot, next(p for p in asset_edfs if p.name == "S001R12.edf"), speed=4.0)
    with qtbot.waitSignal(page.run_started, timeout=10000):
        qtbot.mouseClick(page.start_button, LEFT)
    seen = []

    def shown(n: int) -> bool:  # what the label said, once n windows have been averaged
        st = page.adaptation
        if st is not None and st.n_seen >= n:
            seen.append((st, page.adapt_label.text()))
            return True
        return False

    qtbot.waitUntil(lambda: shown(20), timeout=30000)
    qtbot.waitUntil(lambda: shown(seen[0][0].n_seen + 40), timeout=30000)
    with qtbot.waitSignal(page.run_stopped, timeout=10000):
        qtbot.mouseClick(page.stop_button, LEFT)
    (a, text_a), (b, text_b) = seen
    assert text_a == a.line() and text_b == b.line()
    assert "windows seen" in text_b and f"{b.n_seen:,} windows" in text_b
    # the reference moves away from the (empty) start, as windows of the new subject arrive
    assert 0 < a.drift and 0 < b.drift and b.drift == pytest.approx(b.moved)
    assert b.n_seen > a.n_seen and b.drift != a.drift
    final = adaptation_state(page.decoder.bundle)
    assert final.n_seen == page.last_stats.decisions - page.last_stats.invalid


def test_start_moves_nothing_and_the_legend_leaves_the_newest_curves_free(page, qtbot, asset_edfs,
                                                                          bundle_dir):
    """Issue 11: at 1280x800 the stats line appeared at Start and pushed the bar and the table
    down (clicks landed on the wrong target); the legend covered the newest 2 s of the curves."""
    from neurodeck.app.ui.widgets import APP_STYLE

    page.hide()
    page.setStyleSheet(APP_STYLE)  # the main window's style: Start and Stop are padded differently
    page.resize(1090, 760)  # the page's room in a 1280x800 window (sidebar 190 px)
    page.show()
    with qtbot.waitSignal(page.model_loaded, timeout=30000):
        assert page.load_model(bundle_dir)
    run12 = next(p for p in asset_edfs if p.name == "S001R12.edf")
    _replay(page, qtbot, run12, speed=4.0)
    qtbot.wait(50)

    def geometry() -> list[tuple[int, int]]:
        return [(w.mapTo(page, QPoint(0, 0)).y(), w.height())
                for w in (page.tabs, page.graz, page.trials_table, page.prob_plot)]

    before = geometry()
    label = page.stream_label  # the replay's names are elided: one line, no wrapping
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width(), label.text()
    assert page.stop_button.height() == page.start_button.height()
    header = page.trials_table.horizontalHeader()
    assert header.sectionSize(3) >= header.fontMetrics().horizontalAdvance("time to decision")
    with qtbot.waitSignal(page.run_started, timeout=10000):
        qtbot.mouseClick(page.start_button, LEFT)
    qtbot.waitUntil(lambda: "latency p50" in page.stats_label.text()
                    and len(page._history) > 20, timeout=20000)
    qtbot.wait(300)  # a few more ticks: the curves and the stats are redrawn
    assert geometry() == before
    assert "published on LSL as" in page.stats_label.toolTip()
    # the legend sits clear of the newest 2 s of the probability curves
    vb = page.prob_plot.getPlotItem().vb
    legend = page.prob_plot.getPlotItem().legend
    assert legend is not None and len(page.prob_curves) == 2
    newest = vb.mapViewToScene(QPointF(-2.0, 0.0)).x()
    assert legend.sceneBoundingRect().right() < newest
    page.stop()
