"""Longest GUI event-loop stall while the Train page cross-validates (issue 11).

Offscreen Qt (``QT_QPA_PLATFORM=offscreen`` unless a display is set). The Train page is shown at
1280x800 with EEGMMIDB S001 runs 4 + 8 (``assets/eegmmidb``), the chosen pipelines ticked (default
``fgmdm``), and its "Run cross-validation" button is clicked. A 10 ms ``QTimer`` on the GUI thread
records the time between its ticks until the table fills (``--curve``: the learning curve with
the population model is drawn); the longest gap is the longest time the
window could not repaint or react to a click.

Run: ``OMP_NUM_THREADS=1 nice -n 10 python -m benchmarks.train_page_stall [--pipelines fgmdm,...]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", default="fgmdm")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--curve", action="store_true",
                        help="click 'Learning curve' (with the shipped population model) instead")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtCore import QElapsedTimer, Qt, QTimer
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    from neurodeck.app.ui.train_page import TrainPage

    app = QApplication.instance() or QApplication(sys.argv)
    page = TrainPage(None)
    page.resize(1280, 800)
    page.show()
    runs = [ROOT / "assets" / "eegmmidb" / f"S001R{r}.edf" for r in ("04", "08")]
    page.set_paths(runs)
    page.set_pipelines(args.pipelines.split(","))
    page.folds.setValue(args.folds)
    gaps: list[float] = []
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setInterval(10)
    timer.setTimerType(Qt.TimerType.PreciseTimer)

    where: list[tuple[float, float, str]] = []  # (gap ms, s after the click, status then)

    def tick() -> None:
        gap = clock.nsecsElapsed() / 1e6
        gaps.append(gap)
        clock.restart()
        if gap > 100:
            where.append((gap, time.perf_counter() - t0, page.status.text()))

    timer.timeout.connect(tick)
    t0 = time.perf_counter()
    clock.start()
    timer.start()
    if args.curve:
        page.population_check.setChecked(True)
    QTest.mouseClick(page.curve_button if args.curve else page.run_button,
                     Qt.MouseButton.LeftButton)
    while page.jobs.busy or (page.curve if args.curve else page.result) is None:
        app.processEvents()
        if page.status.text() == "Failed." or time.perf_counter() - t0 > 600:
            break
        time.sleep(0.001)
    wall = time.perf_counter() - t0
    timer.stop()
    page.shutdown()
    if (page.curve if args.curve else page.result) is None:
        print(f"failed: {page.status.text()}")
        return 1
    if args.curve:
        scores = f"learning curve K = {min(page.curve.n_test)}..{max(page.curve.n_test)}"
    else:
        scores = ", ".join(f"{r.pipeline} {r.score:.3f}" for r in page.result.results)
    gaps.sort()
    print(f"pipelines {args.pipelines}, {args.folds} folds: {scores}")
    print(f"click -> result shown: {wall:.2f} s; {len(gaps)} timer ticks; "
          f"longest event-loop gap {gaps[-1]:.0f} ms, p99 {gaps[int(0.99 * (len(gaps) - 1))]:.0f} ms")
    for gap, at, status in sorted(where, reverse=True)[:5]:
        print(f"  gap {gap:.0f} ms at {at:.2f} s after the click (status: {status!r})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
