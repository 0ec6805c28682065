"""Online page: a saved bundle decodes a Player replaying a real EEGMMIDB run (loopback LSL)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from neurodeck.app.session import Session  # noqa: E402
from neurodeck.app.ui.online_page import OnlinePage  # noqa: E402
from neurodeck.app.ui.qt_models import AppContext  # noqa: E402


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
    ctx.shutdown()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()
            and not isinstance(t, threading._DummyThread)
            and t.name.startswith(("neurodeck", "player", "inlet", "recorder"))]
    assert not left, left


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


def test_online_cursor_with_dkf_and_errors(page, qtbot, asset_edfs, bundle_dir):
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
    page.tabs.setCurrentIndex(1)
    run12 = next(p for p in asset_edfs if p.name == "S001R12.edf")
    _replay(page, qtbot, run12, speed=10.0)
    assert page.start()
    # cues start cursor trials; each ends as a hit, a miss or a time-out when the next cue comes
    qtbot.waitUntil(lambda: len(page.task.trials) >= 2, timeout=30000)
    page.stop()
    for tr in page.task.trials:
        assert tr.outcome in ("hit", "miss", "timeout")
        assert tr.target in (0, 1)
    assert "Cursor:" in page.cursor_label.text()
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
