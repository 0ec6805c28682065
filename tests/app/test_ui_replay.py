"""Replay page: play a real EDF as LSL (progress, pause), pseudo-online evaluation of a bundle."""
from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from neurodeck.app.ui.qt_models import AppContext  # noqa: E402
from neurodeck.app.ui.replay_page import ReplayPage  # noqa: E402
from neurodeck.app.workflow import evaluate_recording  # noqa: E402


@pytest.fixture
def page(qtbot):
    before = set(threading.enumerate())
    ctx = AppContext()
    p = ReplayPage(ctx)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    yield p
    p.shutdown()
    assert not p.jobs.busy
    ctx.shutdown()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()
            and not isinstance(t, threading._DummyThread)
            and t.name.startswith(("neurodeck", "player", "inlet"))]
    assert not left, left


def test_replay_plays_pauses_and_feeds_the_app_inlet(page, qtbot, asset_edfs):
    errors = []
    page.context.error_reported.connect(errors.append)
    sm = page.context.streams
    edf = next(p for p in asset_edfs if p.name == "S001R12.edf")
    page.speed.setValue(8.0)
    page.loop.setChecked(False)
    with qtbot.waitSignal(sm.connection_changed, timeout=20000):
        assert page.play(edf)
    assert sm.source_kind == "replay" and page.player is not None
    assert sm.description.n_channels == 64 and sm.description.srate == 160.0
    qtbot.waitUntil(lambda: page.play_progress.value() > 20, timeout=20000)
    assert page.badge.state == "connected"
    # pause: the position stops, the inlet stops growing
    page.toggle_pause()
    assert page.player.paused and page.pause_button.text() == "Resume"
    qtbot.wait(1000)  # what was pushed before the pause arrives
    pos, n = page.player.position_s, sm.inlet.n_received
    assert n > 0
    qtbot.wait(500)
    assert page.player.position_s == pos
    assert sm.inlet.n_received == n
    page.toggle_pause()
    before = page.play_progress.value()
    qtbot.waitUntil(lambda: page.play_progress.value() > before + 20, timeout=20000)
    assert sm.inlet.n_received > n
    # the inlet got the file's samples; the pause shows as one gap in the timestamps (the
    # player's clock stood still), nothing else
    c = sm.inlet.counters
    assert c.gaps <= 1 and c.overruns == 0 and c.samples_received > 160 * 4
    assert "S001R12.edf" in page.play_progress.format()
    page.stop()
    assert sm.inlet is None and page.player is None and page.badge.state == "idle"
    assert not errors, errors


def test_pseudo_online_evaluation_on_unseen_run(page, qtbot, asset_edfs, bundle_dir):
    errors = []
    page.context.error_reported.connect(errors.append)
    run12 = next(p for p in asset_edfs if p.name == "S001R12.edf")
    with qtbot.waitSignal(page.evaluated, timeout=60000):
        assert page.evaluate(bundle_dir, run12)
    assert not errors, errors
    out = page.eval_result
    s = out["summary"]
    assert s["n_trials"] == 15
    assert 0.0 <= s["trial_accuracy"] <= 1.0
    assert s["n_windows"] == len(out["result"].ends) > 1000  # 125 s at a 1/16 s hop
    assert page.eval_progress.value() == page.eval_progress.maximum() == s["n_windows"]
    assert "trial accuracy" in page.results_label.text() and "csp-lda" in page.results_label.text()
    assert len(page.plot.getPlotItem().listDataItems()) == 2
    # the page shows what evaluate_recording computes
    direct = evaluate_recording(bundle_dir, run12)
    np.testing.assert_allclose(direct["result"].outputs, out["result"].outputs)
    # ... which is the bundle's own pseudo-online replay (filter padding from the bundle, as the
    # live engine and `neurodeck evaluate --pseudo-online` use it; a page that lost the padding
    # counted windows holding pre-cue signal and scored 2 of these 15 trials differently)
    from neurodeck.acquisition.io import load_recording
    from neurodeck.decoders.epochs import pick_indices
    from neurodeck.decoders.evaluation import pseudo_online
    from neurodeck.decoders.online import OnlineDecoder

    dec = OnlineDecoder(bundle_dir)
    assert dec.pad_samples == round(dec.bundle.meta["pad_s"] * dec.sfreq) > 0
    raw = load_recording(run12)
    data = raw.get_data(picks=pick_indices(raw.ch_names, dec.ch_names).tolist()) * 1e6
    ref = pseudo_online(dec, data, direct["sfreq"], (direct["onsets"], direct["labels"]))
    np.testing.assert_array_equal(ref.trial_correct, out["result"].trial_correct)
    np.testing.assert_allclose(ref.time_to_decision, out["result"].time_to_decision)


def test_pseudo_online_errors(page, qtbot, tmp_path, asset_edfs):
    errors = []
    page.context.error_reported.connect(errors.append)
    assert not page.evaluate()
    assert "model folder" in errors[-1]
    page.evaluate(tmp_path / "nomodel", asset_edfs[0])
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=20000)
    assert errors[-1].startswith("Pseudo-online evaluation:") and "nomodel" in errors[-1]
    assert not page.play(tmp_path / "missing.edf")
    assert "not found" in errors[-1]


def test_a_refused_evaluation_shows_the_reason_without_a_traceback(page, qtbot, tmp_path,
                                                                    asset_edfs, bundle_dir,
                                                                    caplog):
    # walk of issue 11: a 128 Hz recording under the 160 Hz model was logged at ERROR with a
    # full traceback; a refusal with a reason is one banner line and no traceback
    import logging

    import mne

    raw = mne.io.read_raw_edf(next(p for p in asset_edfs if p.name == "S001R12.edf"),
                              preload=True, verbose="error")
    rec = tmp_path / "S001R12-128Hz_raw.fif"
    raw.resample(128.0, verbose="error").save(rec, verbose="error")
    errors = []
    page.context.error_reported.connect(errors.append)
    caplog.set_level(logging.DEBUG, logger="neurodeck")
    page.model_edit.setText(str(bundle_dir))
    # first a good run, so there is a plot that must go when the next evaluation fails
    page.eval_file_edit.setText(str(next(p for p in asset_edfs if p.name == "S001R12.edf")))
    with qtbot.waitSignal(page.evaluated, timeout=60000):
        qtbot.mouseClick(page.eval_button, qtbot_left())
    assert page.legend_label.isVisible() and page.plot.getPlotItem().listDataItems()
    page.eval_file_edit.setText(str(rec))
    qtbot.mouseClick(page.eval_button, qtbot_left())
    qtbot.waitUntil(lambda: bool(errors), timeout=30000)
    assert page.eval_result is None and not page.plot.getPlotItem().listDataItems()
    assert not page.legend_label.isVisible() and not page.range_label.isVisible()
    assert errors == ["Pseudo-online evaluation: S001R12-128Hz_raw.fif is sampled at 128 Hz; "
                      "the model expects 160 Hz"]
    assert page.eval_status.text() == "Failed."
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)
    assert "sampled at 128 Hz" in caplog.text  # one line says why


def test_a_bug_in_the_evaluation_keeps_its_traceback(page, qtbot, monkeypatch, caplog):
    import logging

    import neurodeck.app.ui.replay_page as rp

    def broken(*a, **k):
        raise IndexError("index 7 is out of bounds")

    monkeypatch.setattr(rp, "evaluate_recording", broken)
    errors = []
    page.context.error_reported.connect(errors.append)
    page.model_edit.setText("m")
    page.eval_file_edit.setText("r.edf")
    qtbot.mouseClick(page.eval_button, qtbot_left())
    qtbot.waitUntil(lambda: bool(errors), timeout=10000)
    assert errors == ["Pseudo-online evaluation: IndexError: index 7 is out of bounds"]
    bug = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(bug) == 1 and "Traceback" in bug[0].getMessage() and "broken" in bug[0].getMessage()


def qtbot_left():
    from PyQt6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_cancel_stops_a_threaded_evaluation(page, qtbot, asset_edfs, bundle_dir, monkeypatch):
    """A person clicks Evaluate, then Cancel while the replay's threads work: the page says
    Cancelled, shows no result, offers Evaluate again, and no replay thread is left (the
    fixture checks the threads)."""
    import time

    from neurodeck.decoders import online

    slow = online._StreamPlan.window_part
    calls = []

    def window_part(self, *args, **kwargs):  # 0.1 s a batch: room to click while it runs
        calls.append(threading.current_thread().name)
        time.sleep(0.1)
        return slow(self, *args, **kwargs)

    monkeypatch.setattr(online._StreamPlan, "window_part", window_part)
    errors = []
    page.context.error_reported.connect(errors.append)
    page.model_edit.setText(str(bundle_dir))
    page.eval_file_edit.setText(str(next(p for p in asset_edfs if p.name == "S001R12.edf")))
    qtbot.mouseClick(page.eval_button, qtbot_left())
    qtbot.waitUntil(lambda: page.eval_progress.value() > 0, timeout=30000)
    assert page.cancel_button.isEnabled() and not page.eval_button.isEnabled()
    qtbot.mouseClick(page.cancel_button, qtbot_left())
    qtbot.waitUntil(lambda: page.eval_status.text() == "Cancelled.", timeout=10000)
    assert page.eval_button.isEnabled() and not page.cancel_button.isEnabled()
    assert page.eval_result is None and not page.plot.getPlotItem().listDataItems()
    assert not errors, errors
    # it ran in replay threads, and stopped well before the recording's 8 batches of 256
    assert calls and all(n.startswith("neurodeck-replay") for n in calls) and len(calls) < 8
