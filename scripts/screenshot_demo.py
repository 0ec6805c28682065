"""Screenshots of ``neurodeck demo``'s window at 1400x900: mid-calibration, mid-online, the scores.

Usage::

    QT_QPA_PLATFORM=offscreen python scripts/screenshot_demo.py [--out docs/screenshots] [--speed 8]

Runs the real demo (:class:`app.ui.demo_window.DemoWindow`, pipelines ts-lr) on the embedded
EEGMMIDB S001 recording and writes ``00-demo.png`` (online: Graz bar driven by the live
decisions), ``00a-demo-calibration.png`` (Connect page showing the replayed EEG) and
``00b-demo-scores.png`` (the end). Settings and sessions go to a temporary folder.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import make_parser, start_qt, wait_for  # noqa: E402  (shared helpers)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--speed", type=float, default=8.0)
    args = parser.parse_args(argv)
    app, tmp = start_qt("neurodeck-demo-shots")
    from neurodeck.app.ui.demo_window import DemoWindow

    args.out.mkdir(parents=True, exist_ok=True)
    win = DemoWindow(tmp / "sessions", speed=args.speed, pipelines=("ts-lr",))
    win.resize(args.width, args.height)
    win.show()
    win.start()
    progress = win.panel.progress
    try:
        wait_for(app, lambda: "calibration" in win.stages_seen and progress.value() >= 40,
                 120, "the calibration")
        win.grab().save(str(args.out / "00a-demo-calibration.png"))
        wait_for(app, lambda: "online" in win.stages_seen and win.decisions_shown > 200
                 and progress.value() >= 50, 300, "the online run")
        wait_for(app, lambda: win.graz.cue is not None, 30, "a cue")
        win.grab().save(str(args.out / "00-demo.png"))
        wait_for(app, lambda: win.exit_code is not None, 300, "the end of the demo")
        time.sleep(0.2)
        app.processEvents()
        win.grab().save(str(args.out / "00b-demo-scores.png"))
    finally:
        win.close()
        wait_for(app, lambda: not win.runner.running, 60, "the demo thread")
        win.shutdown()
    print(f"screenshots in {args.out}; demo exit code {win.exit_code}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
