"""A whole simulated clinical session through clicks (issue 11): connect the simulator, calibrate
10 trials per class on the participant screen, train, save, run an online cued run of 10 trials per
class with feedback on the participant screen, read the scores; the simulator is killed and
restarted once in each run: the run pauses, resumes, repeats the cut trial, and the recordings hold
every sample the source sent outside the outage (checked with the simulator's sample counter).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QPoint, Qt  # noqa: E402

from neurodeck.app.protocol import Phase, ProtocolConfig  # noqa: E402
from neurodeck.app.session import Session  # noqa: E402
from neurodeck.app.ui.main_window import PAGES, MainWindow  # noqa: E402
from neurodeck.app.ui.qt_models import AppContext  # noqa: E402

LEFT = Qt.MouseButton.LeftButton
FAST = dict(classes=("left_hand", "right_hand"), trials_per_class=10, fixation_s=0.3, cue_s=0.5,
            imagery_s=1.5, rest_min_s=0.2, rest_max_s=0.4, lead_in_s=0.5, beep=False, seed=11)


def _go(qtbot, win, key):
    row = [s.key for s in PAGES].index(key)
    rect = win.sidebar.visualItemRect(win.sidebar.item(row))
    qtbot.mouseClick(win.sidebar.viewport(), LEFT, pos=rect.center())
    return win.pages[key]


def _counter_ok(path, sfreq=256.0):
    """Counter steps of a recording: every sample +1, except where the simulator restarted."""
    import mne

    raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
    k = raw.get_data(picks=["COUNTER"])[0]
    steps = np.diff(k)
    breaks = np.flatnonzero(steps != 1)
    return raw, k, breaks


def _kill_and_restart(qtbot, sm, page, paused_state):
    sim = sm.simulator
    sim.stop()
    qtbot.waitUntil(paused_state, timeout=15000)
    qtbot.wait(300)
    sim.start()


@pytest.mark.slow
def test_clinical_session_by_clicks_with_signal_loss_in_each_run(qtbot, session_root, monkeypatch):
    before = set(threading.enumerate())
    win = MainWindow(AppContext())
    win.confirm = lambda text: True
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    errors: list[str] = []
    try:
        win.context.set_session(Session.create(session_root, "P01", "clinic"))
        sm = win.context.streams
        # the "amplifier": the simulator with a sample counter channel (the test's instrument)
        sm.start_simulator(n_channels=8, srate=256.0, counter_channel=True, seed=2)
        qtbot.waitUntil(lambda: sm.state == "connected", timeout=20000)

        # --- calibrate on the participant screen; the amplifier dies once
        cal = _go(qtbot, win, "calibrate")
        cal.set_config(ProtocolConfig(**FAST))
        qtbot.mouseClick(cal.full_button, LEFT)
        screen = win.context.participant_screen
        assert screen.isVisible() and screen.isFullScreen()
        with qtbot.waitSignal(cal.run_state_changed, timeout=20000,
                              check_params_cb=lambda s: s == "running"):
            qtbot.mouseClick(cal.start_button, LEFT)
        win.context.error_reported.connect(errors.append)
        qtbot.waitUntil(lambda: cal.protocol.trial >= 4 and cal.phase is Phase.IMAGERY,
                        timeout=30000)
        _kill_and_restart(qtbot, sm, cal, lambda: cal.state == "paused"
                          and screen.cues.phase is Phase.PAUSED)
        with qtbot.waitSignal(cal.recording_saved, timeout=120000) as saved:
            pass
        assert cal.protocol.progress == (20, 20) and cal.protocol.interrupted_trials
        raw, k, breaks = _counter_ok(saved.args[0])
        assert len(breaks) == 1, breaks  # one outage, no other sample lost
        assert "BAD_interrupted" in raw.annotations.description
        cal_path = saved.args[0]

        # --- train csp-lda on it and save the model
        train = _go(qtbot, win, "train")
        for name, cb in train.checks.items():
            if cb.isChecked() != (name == "csp-lda"):
                qtbot.mouseClick(cb, LEFT, pos=QPoint(8, cb.height() // 2))
        train.tmin.setValue(0.0)
        train.tmax.setValue(1.5)
        with qtbot.waitSignal(train.cv_finished, timeout=120000):
            qtbot.mouseClick(train.run_button, LEFT)
        assert train.result.trials.sources == [str(cal_path)]
        with qtbot.waitSignal(train.model_saved, timeout=60000) as model:
            qtbot.mouseClick(train.save_button, LEFT)

        # --- online cued run with feedback on the participant screen; the amplifier dies again
        online = _go(qtbot, win, "online")
        qtbot.mouseClick(online.refresh_button, LEFT)
        i = online.model_box.findData(model.args[0])
        assert i >= 0
        online.model_box.setCurrentIndex(i)
        with qtbot.waitSignal(online.model_loaded, timeout=30000):
            qtbot.mouseClick(online.load_button, LEFT)
        qtbot.mouseClick(online.cued, LEFT, pos=QPoint(8, online.cued.height() // 2))
        assert online.cued.isChecked()
        online.cued_trials.setValue(10)
        online.trial_len.setValue(2.0)
        qtbot.mouseClick(online.participant_button, LEFT)
        with qtbot.waitSignal(online.run_started, timeout=20000):
            qtbot.mouseClick(online.start_button, LEFT)
        qtbot.waitUntil(lambda: online.runner is not None
                        and online.runner.protocol.phase is Phase.IMAGERY, timeout=30000)
        qtbot.waitUntil(lambda: np.isfinite(screen.bar.value), timeout=10000)  # feedback
        assert screen.bar.cue in ("left_hand", "right_hand")
        qtbot.waitUntil(lambda: online.runner.protocol.trial >= 4
                        and online.runner.protocol.phase is Phase.IMAGERY, timeout=60000)
        _kill_and_restart(qtbot, sm, online, lambda: online.guard.holding
                          and screen.cues.phase is Phase.PAUSED)
        assert "waiting for the signal" in screen.pause_text
        with qtbot.waitSignal(online.run_stopped, timeout=120000):
            pass
        s = online.scorer.summary()
        onsets = [r.onset for r in online.scorer.results]
        # every trial ended once (the cut one dropped and repeated); each had decisions
        assert len(onsets) == 20 and len(set(onsets)) == 20, onsets
        # each trial may hold decisions for only 0.5 s (window signal part 1.5 s, trial 2 s): an
        # engine starved of CPU skips hops (counted) and can leave one trial without a decision,
        # which the summary then names (CI at d6fd85e: 19 scored, 1 without)
        st = online.last_stats
        why = ([r.n_decisions for r in online.scorer.results], st.decisions, st.skipped_hops)
        assert s.n_trials + s.n_without_decisions == 20 and s.n_without_decisions <= 1, (s, why)
        if s.n_without_decisions:
            assert st.skipped_hops + st.invalid > 0 and "without a decision" in online.summary_label.text()
        assert "%" in online.summary_label.text() or "accuracy" in online.summary_label.text()
        qtbot.waitUntil(lambda: online.last_saved is not None, timeout=30000)
        raw2, k2, breaks2 = _counter_ok(online.last_saved)
        assert len(breaks2) == 1, breaks2
        desc = list(raw2.annotations.description)
        assert desc.count("left_hand") + desc.count("right_hand") >= 20
        assert desc.count("pause") == 1 and desc.count("resume") == 1
        assert not [e for e in errors if "paused" not in e], errors
    finally:
        win.close()
    qtbot.waitUntil(lambda: not [t for t in threading.enumerate() if t not in before
                                 and t.is_alive() and t.name.startswith(("neurodeck", "inlet"))
                                 and "cleanup" not in t.name], timeout=15000)
