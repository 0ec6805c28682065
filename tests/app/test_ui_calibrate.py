"""Calibrate page: an accelerated Graz run against the simulator, recorded into the session."""
from __future__ import annotations

from collections import Counter

import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402

from neurodeck.app.protocol import Phase, ProtocolConfig  # noqa: E402
from neurodeck.app.session import Session  # noqa: E402

FAST = ProtocolConfig(classes=("left_hand", "right_hand"), trials_per_class=3, fixation_s=0.2,
                      cue_s=0.3, imagery_s=0.3, rest_min_s=0.1, rest_max_s=0.2, lead_in_s=0.3,
                      beep=True, seed=5)


@pytest.fixture
def window(make_window):
    return make_window(1400, 900)


def test_refuses_without_session_or_stream(window, session_root):
    page = window.show_page("calibrate")
    assert "No session" in page.session_label.text()
    asked = []
    window.context.session_requested.disconnect()
    window.context.session_requested.connect(lambda: asked.append(1))
    page.session_button.click()
    assert asked == [1]
    assert page.start() is False
    assert "session" in window.banner.message.lower()
    window.context.set_session(Session.create(session_root, "S09", "x"))
    assert page.start() is False
    assert "Connect an EEG stream" in window.banner.message
    page.class_boxes["right_hand"].setChecked(False)
    assert page.start() is False
    assert "at least 2 classes" in window.banner.message
    assert page.state == "idle"


def test_accelerated_run_on_simulator_is_recorded_with_markers(window, qtbot, session_root):
    import mne

    session = Session.create(session_root, "S01", "cal")
    window.context.set_session(session)
    assert "S01/cal" in window.session_label.text()
    sm = window.context.streams
    with qtbot.waitSignal(sm.connection_changed, timeout=15000):
        sm.start_simulator(n_channels=8, srate=256.0)
    page = window.show_page("calibrate")
    assert "S01/cal" in page.session_label.text()
    page.set_config(FAST)
    assert page.config() == FAST
    events = []
    with qtbot.waitSignal(page.run_state_changed, timeout=20000,
                          check_params_cb=lambda s: s == "running"):
        assert page.start() is True
    assert page.busy_reason() and "recording" in page.busy_reason()
    qtbot.waitUntil(lambda: window.rec_badge.isVisible(), timeout=3000)
    assert "REC" in window.rec_badge.text()
    sm.disconnect()  # refused while the calibration records this stream
    assert sm.inlet is not None and "cannot be changed now" in window.banner.message
    page.runner.phase_changed.connect(events.append)
    cues = []
    sim = sm.simulator
    real_cue = sim.cue
    sim.cue = lambda c, d, **kw: cues.append(c) or real_cue(c, d, **kw)

    # pause in the middle of the second trial, then resume
    qtbot.waitUntil(lambda: page.protocol.trial >= 2 and page.phase is Phase.CUE, timeout=20000)
    window.activateWindow()
    page.cue_display.setFocus()
    qtbot.keyClick(page.cue_display, Qt.Key.Key_Space)  # the operator's pause key
    assert page.state == "paused" and page.phase is Phase.PAUSED
    assert page.cue_display.phase is Phase.PAUSED
    qtbot.wait(300)
    page.toggle_pause()
    assert page.state == "running"
    with qtbot.waitSignal(page.recording_saved, timeout=60000) as saved:
        pass
    path = saved.args[0]
    assert path.exists() and path.parent == session.recordings_dir
    assert path.name == "calibration-run01_raw.fif"
    assert page.state == "idle" and page.recorder is None
    qtbot.waitUntil(lambda: not window.rec_badge.isVisible(), timeout=3000)
    assert sm.held is None
    assert page.protocol.phase is Phase.FINISHED and page.progress.value() == 6
    assert page.protocol.interrupted == 1
    assert page.cue_display.phase is Phase.FINISHED
    assert cues and set(cues) <= {"left_hand", "right_hand"}

    raw = mne.io.read_raw_fif(path, preload=False, verbose="error")
    assert raw.info["nchan"] == 8 and raw.info["sfreq"] == 256
    desc = list(raw.annotations.description)
    counts = Counter(desc)
    # every cue of the run is in the file: 6 completed + the one interrupted by the pause
    assert counts["left_hand"] + counts["right_hand"] == 7
    assert counts["trial_end"] == 6 and counts["feedback_start"] == 6
    assert counts["pause"] == 1 and counts["resume"] == 1
    assert counts["experiment_start"] == 1 and counts["experiment_stop"] == 1
    assert counts["beep"] == 7 and counts["fixation"] == 7
    # marker order in the file is the protocol's order
    sent = [m for ev in page.protocol.events for m in ev.markers]
    assert [d for d in desc if d in set(sent)] == sent
    # class cue -> feedback_start spacing is cue_s (0.3 s) within a sample or two
    onsets = raw.annotations.onset
    for i, d in enumerate(desc):
        if d in ("left_hand", "right_hand") and i + 1 < len(desc) and desc[i + 1] == "feedback_start":
            assert onsets[i + 1] - onsets[i] == pytest.approx(0.3, abs=0.03)
    # the protocol used is stored with the session
    assert ProtocolConfig.from_dict(Session.open(session.path).section("protocol")) == FAST


def test_abort_and_close_save_the_recording(window, qtbot, session_root):
    import mne

    session = Session.create(session_root, "S02", "cal")
    window.context.set_session(session)
    sm = window.context.streams
    with qtbot.waitSignal(sm.connection_changed, timeout=15000):
        sm.start_simulator(n_channels=4, srate=128.0)
    page = window.show_page("calibrate")
    page.set_config(ProtocolConfig(**{**FAST.to_dict(), "classes": ("feet", "rest"),
                                      "trials_per_class": 20}))
    with qtbot.waitSignal(page.run_state_changed, timeout=20000,
                          check_params_cb=lambda s: s == "running"):
        page.start()
    qtbot.waitUntil(lambda: page.protocol.progress[0] >= 1, timeout=20000)
    asked = []
    window.confirm = lambda text: asked.append(text) or False
    window.close()  # refused: still running
    assert asked and "calibration" in asked[0] and window.isVisible()
    assert page.state == "running"
    window.confirm = lambda text: True
    window.close()  # accepted: aborts, stops the recorder, finalizes
    assert page.protocol.phase is Phase.ABORTED
    assert page.last_saved is not None and page.last_saved.exists()
    desc = list(mne.io.read_raw_fif(page.last_saved, verbose="error").annotations.description)
    assert desc[-2:] == ["abort", "experiment_stop"]
    assert desc.count("trial_end") >= 1


def test_cue_display_draws_each_cue(qtbot):
    from PyQt6.QtGui import QColor

    from neurodeck.app.protocol import ProtocolEvent
    from neurodeck.app.ui.cue_display import CueDisplay

    disp = CueDisplay(show_progress=False, beep=False)
    qtbot.addWidget(disp)
    disp.resize(400, 300)

    def colours(phase, cls):
        disp.on_event(ProtocolEvent(phase, (), 0.0, 1.0, 1, 4, cls))
        img = disp.grab().toImage()
        # the arrows reach ~106 px from the centre (200, 150); the cross arms only 48 px
        pts = {"left": (130, 150), "right": (270, 150), "down": (200, 220), "ring": (200 - 72, 150)}
        return {k: QColor(img.pixel(x, y)).name() for k, (x, y) in pts.items()}

    yellow = "#ffca28"
    assert colours(Phase.CUE, "left_hand")["left"] == yellow
    assert colours(Phase.CUE, "left_hand")["right"] != yellow
    assert colours(Phase.CUE, "right_hand")["right"] == yellow
    assert colours(Phase.CUE, "feet")["down"] == yellow
    assert colours(Phase.CUE, "rest")["ring"] == yellow
    assert yellow not in colours(Phase.REST, None).values()
    win = disp.open_fullscreen()
    qtbot.addWidget(win)
    assert win.isFullScreen() or win.isVisible()
    assert win.phase is Phase.REST
    win.close()
