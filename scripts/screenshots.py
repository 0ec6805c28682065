"""Render every page of the neurodeck window at 1280x800 (default) with live simulator data.

Usage::

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--out docs/screenshots]

(or under ``xvfb-run``). Starts the built-in simulator (64 ch @ 512 Hz), lets the signal view and
spectrum fill, runs a short-timed calibration (2 x 12 trials, ~1.5 min) in a throw-away session
(captured mid-trial and when saved), then shows every later page; a page may define
``prepare_screenshot()`` (start work on the session's data) and ``screenshot_ready() -> bool``.
Saves one PNG per page (``01-connect.png`` ...) plus the cue display alone and the participant
screen during the calibration (``02d-participant-calibration.png``) and online feedback
(``05b-participant-online.png``), rendered at the window size.
Settings and sessions go to a temporary folder, never to your home.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.003)


def wait_for(app, cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.005)


def make_parser(doc: str) -> argparse.ArgumentParser:
    """The options every screenshot script has: ``--out``, ``--width``, ``--height``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    return parser


def start_qt(name: str):
    """Offscreen Qt unless a display is set, settings in a throw-away folder, the repo importable.

    Returns ``(app, tmp)``: the QApplication and the temporary folder (``tmp / "home"`` holds
    the settings).
    """
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    os.environ["NEURODECK_HOME"] = str(tmp / "home")
    sys.path.insert(0, str(ROOT))
    from PyQt6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([name]), tmp


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="3 calibration trials per class, not 12")
    args = parser.parse_args(argv)
    app, tmp = start_qt("neurodeck-shots")

    from neurodeck.app.protocol import Phase, ProtocolConfig
    from neurodeck.app.session import Session
    from neurodeck.app.ui.main_window import PAGES, MainWindow

    args.out.mkdir(parents=True, exist_ok=True)
    win = MainWindow()
    win.confirm = lambda text: True
    win.resize(args.width, args.height)
    win.show()
    session = Session.create(tmp / "sessions", "S01", "demo")
    win.context.set_session(session)
    sm = win.context.streams
    sm.start_simulator(n_channels=64, srate=512.0, seed=3)
    wait_for(app, lambda: sm.inlet is not None, 20, "the simulator")
    connect = win.pages["connect"]
    connect.refresh()
    pump(app, 11.0)  # fill the 10 s view and a few spectra
    saved = []

    def shoot(name: str, widget=None) -> None:
        widget = widget or win
        app.processEvents()
        path = args.out / f"{name}.png"
        if not widget.grab().save(str(path)):
            raise SystemExit(f"screenshots: could not write {path}")
        saved.append(path)

    win.show_page("connect")
    pump(app, 0.5)
    shoot("01-connect")

    # calibrate: a real (short-timed) run on the simulator, captured while an arrow is on screen;
    # it completes so the later pages have a calibration recording to work on
    cal = win.show_page("calibrate")
    n_trials = 3 if args.quick else 12
    cal.set_config(ProtocolConfig(classes=("left_hand", "right_hand"), trials_per_class=n_trials,
                                  fixation_s=0.5, cue_s=1.0, imagery_s=2.5, rest_min_s=0.5,
                                  rest_max_s=0.8, lead_in_s=0.5, beep=False, seed=4))
    cal.start()
    wait_for(app, lambda: cal.protocol is not None and cal.protocol.trial >= 2
             and cal.phase is Phase.CUE, 60, "a cue")
    pump(app, 0.2)
    shoot("02-calibrate")
    shoot("02b-cue-display", cal.cue_display)

    def shoot_participant(name: str) -> None:
        screen = win.context.participant_screen
        screen.showNormal()
        screen.resize(args.width, args.height)
        pump(app, 0.3)
        shoot(name, screen)
        screen.hide()
        win.activateWindow()

    cal.show_fullscreen()
    wait_for(app, lambda: cal.phase is Phase.CUE, 60, "a cue on the participant screen")
    pump(app, 0.2)
    shoot_participant("02d-participant-calibration")
    wait_for(app, lambda: cal.protocol.done and cal.state == "idle", 60 + 6 * n_trials * 2,
             "the calibration run and its recording")
    pump(app, 0.8)
    shoot("02c-calibrate-saved")

    # later pages may implement prepare_screenshot() (e.g. compute on the session's calibration)
    # and screenshot_ready() -> bool; otherwise they are shot as they are
    win.toast.hide()  # the "saved" note belongs to the calibrate shot only
    for i, spec in enumerate(PAGES, start=1):
        if spec.key in ("connect", "calibrate"):
            continue
        page = win.show_page(spec.key)
        pump(app, 0.3)
        if hasattr(page, "prepare_screenshot"):
            try:
                page.prepare_screenshot()
                if hasattr(page, "screenshot_ready"):
                    wait_for(app, page.screenshot_ready, 180, f"the {spec.key} page")
            except Exception as exc:  # a page's demo problem must not stop the others' shots
                print(f"screenshots: {spec.key}: {exc}", file=sys.stderr)
        pump(app, 0.5)
        shoot(f"{i:02d}-{spec.key}")
        if spec.key == "online" and page.engine is not None:
            page.show_participant()
            wait_for(app, lambda p=page: p._phase is Phase.IMAGERY, 60, "imagery with feedback")
            pump(app, 0.8)
            shoot_participant(f"{i:02d}b-participant-online")
    win.close()
    for p in saved:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
