"""Three-class feedback (issue 12): a cued online run on the live simulator with a 3-class
bundle; the Graz bar draws one bar per class and shows the winning class, on the operator's page
and on the participant screen."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QPoint, Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QFileDialog  # noqa: E402

from neurodeck.app.protocol import Phase, ProtocolConfig  # noqa: E402
from neurodeck.app.ui.online_page import OnlinePage  # noqa: E402
from neurodeck.app.ui.qt_models import AppContext  # noqa: E402

LEFT = Qt.MouseButton.LeftButton
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


@pytest.fixture
def page(qtbot):
    before = set(threading.enumerate())
    ctx = AppContext()
    p = OnlinePage(ctx)
    qtbot.addWidget(p)
    p.resize(1280, 800)
    p.show()
    yield p
    p.shutdown()
    assert p.engine is None and not p.jobs.busy
    if getattr(ctx, "participant_screen", None) is not None:
        ctx.participant_screen.close()
    ctx.shutdown()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()
            and t.name.startswith(("neurodeck", "simulator", "inlet"))
            and "cleanup" not in t.name]
    assert not left, left


def test_three_class_cued_run_shows_the_winning_class_on_both_screens(page, qtbot, bundle3,
                                                                      monkeypatch):
    errors: list[str] = []
    page.context.error_reported.connect(errors.append)
    page.context.settings.protocol = FAST.to_dict()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(bundle3)))
    browse = next(b for b in page.findChildren(type(page.load_button))
                  if b.text().startswith("Browse"))
    with qtbot.waitSignal(page.model_loaded, timeout=30000):
        qtbot.mouseClick(browse, LEFT)
    assert sorted(page.decoder.labels) == sorted(CLASSES)
    assert page.graz.multi and page.graz.classes == page.decoder.labels
    sm = page.context.streams
    with qtbot.waitSignal(sm.connection_changed, timeout=20000):
        sm.start_simulator(classes=CLASSES, seed=12, **SIM)  # a live LSL source
    qtbot.mouseClick(page.cued, LEFT, pos=QPoint(8, page.cued.height() // 2))
    assert page.cued.isChecked()
    page.cued_trials.setValue(FAST.trials_per_class)
    qtbot.mouseClick(page.participant_button, LEFT)
    screen = page.context.participant_screen

    seen: list[tuple[int, str, str, str, str | None]] = []

    def sample() -> None:  # what both screens show during the imagery of each trial
        r = page.runner
        if r is None or r.protocol.phase is not Phase.IMAGERY or page.graz.winner is None:
            return
        probs = page._history[-1][1]  # the smoothed probabilities the bar was given
        best = page.decoder.labels[int(np.argmax(probs))]
        seen.append((r.protocol.trial, page.graz.cue, page.graz.winner, best, screen.bar.winner))

    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(40)
    shots = os.environ.get("NEURODECK_SCREENSHOTS")
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
    # the bar's winner is the class of the largest smoothed probability, on both screens
    assert len(seen) > 50
    assert all(w == best == shown for _, _, w, best, shown in seen)
    # and at the end of each imagery period it is mostly the cued class (chance: 1 in 3)
    last = {trial: (cue, w) for trial, cue, w, _, _ in seen}
    assert {cue for cue, _ in last.values()} == set(CLASSES)
    hits = sum(cue == w for cue, w in last.values())
    assert hits >= 4, last
    print(f"3-class cued run: {hits}/6 imagery periods end on the cued class; "
          f"{s.line()}; {len(seen)} samples of both screens")
    assert len({w for _, w in last.values()}) >= 2  # not one class all the time
