"""Signal view frame rate while decoding: app/ui/signal_view.py at 64 ch @ 512 Hz and 256 @ 2048.

Offscreen Qt (``QT_QPA_PLATFORM=offscreen`` unless a display is set). A source process streams
EEGMMIDB (resampled/tiled) over LSL; in this process one :class:`acquisition.inlet.Inlet` feeds
both the :class:`app.ui.signal_view.SignalView` (1280x800 window, 10 s span, all channels,
band-pass + notch on, its own 40 fps timer) and an :class:`app.engine.OnlineEngine` decoding the
same stream with a trained ts-lr bundle (1 s window, 62.5 ms hop) in its background thread.

Per run (after 2 s warm-up, ``--seconds`` measured): frames per second; the view's own frame
time (pull + filter + downsample + ``setData``, p50/p95); the frame interval p95; GUI-thread CPU
per frame (``time.thread_time`` of the GUI thread / frames: includes painting); the engine's
decisions per second and window-ready -> published p99 during the run. Medians over repetitions;
each repetition runs with the BLAS thread pool as started and limited to one thread.
Budget: >= 30 fps at 64 ch @ 512 Hz and at 256 ch @ 2048 Hz with decoding running.

The view shows its default "fit" rows (as many channels as fit at >= 14 px per row, each named;
the others are a scroll away and not drawn): the ``rows`` column says how many were drawn.

``--baseline REV`` then runs the same measurements with the neurodeck code of git revision REV
(before/after in one run, on the same machine load).

Run: ``python -m benchmarks.gui_fps [--quick] [--seconds S] [--stream 256x2048] [--baseline REV]``.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from benchmarks import _util as u

logger = logging.getLogger(__name__)

CONFIGS = ((64, 512.0, 8), (256, 2048.0, 32))


def run_once(app, decoder, src: u.Source, seconds: float, warmup: float = 2.0) -> dict[str, float]:
    from PyQt6.QtCore import QEventLoop, QTimer

    from neurodeck.acquisition.inlet import Inlet
    from neurodeck.app.engine import OnlineEngine
    from neurodeck.app.ui.signal_view import SignalView

    inlet = Inlet(src.info(), buffer_seconds=30.0)
    inlet.start()
    engine = OnlineEngine(decoder, inlet, hop_s=0.0625, out_name=f"ndbench-gui-{uuid.uuid4().hex[:8]}")
    view = SignalView(prefs={"span_s": 10, "filter": True, "notch_hz": 50.0})
    view.resize(1280, 800)
    view.show()
    marks: dict[str, float] = {}

    def start_measure() -> None:
        marks["frames"] = view.frames
        marks["n_ms"] = len(view._frame_ms)
        marks["thread"] = time.thread_time()
        marks["wall"] = time.perf_counter()
        marks["decisions"] = engine.stats.decisions

    def stop_measure() -> None:
        marks["frames_end"] = view.frames
        marks["thread_end"] = time.thread_time()
        marks["wall_end"] = time.perf_counter()
        marks["decisions_end"] = engine.stats.decisions
        loop.quit()

    try:
        engine.start()
        inlet.wait_for_samples(int(src.srate), 15.0)
        view.set_inlet(inlet)
        loop = QEventLoop()
        QTimer.singleShot(int(warmup * 1000), start_measure)
        QTimer.singleShot(int((warmup + seconds) * 1000), stop_measure)
        loop.exec()
    finally:
        view.stop()
        engine.stop()
        inlet.stop()
        view.close()
        view.deleteLater()
        app.processEvents()
    frames = marks["frames_end"] - marks["frames"]
    wall = marks["wall_end"] - marks["wall"]
    ms = np.asarray(view._frame_ms)[-int(frames):] if frames else np.zeros(0)
    at = np.asarray(view._frame_at)[-int(frames):] if frames else np.zeros(0)
    fm = u.pct(ms, (50, 95))
    n0 = int(marks["decisions"])
    ready = np.add(np.add(engine.stats.read_s[n0:], engine.stats.decide_s[n0:]),
                   engine.stats.publish_s[n0:]) * 1e3
    return {
        "fps": frames / wall,
        "frame_p50": fm[0], "frame_p95": fm[1],
        "interval_p95": u.pct(np.diff(at) * 1e3, (95,))[0] if at.size > 2 else float("nan"),
        "gui_cpu_ms": 1e3 * (marks["thread_end"] - marks["thread"]) / max(frames, 1),
        "gui_busy": 100 * (marks["thread_end"] - marks["thread"]) / wall,
        "dec_per_s": (marks["decisions_end"] - marks["decisions"]) / wall,
        "ready_p99": u.pct(ready)[2],
        "skipped": float(engine.stats.skipped_hops),
        "rows": float(len(getattr(view, "shown", view.selected))),  # older views drew all
    }


COLS = (("rows", "rows drawn"), ("fps", "fps"), ("frame_p50", "frame p50 ms"), ("frame_p95", "frame p95 ms"),
        ("interval_p95", "interval p95 ms"), ("gui_cpu_ms", "GUI CPU ms/frame"),
        ("gui_busy", "GUI thread busy %"), ("dec_per_s", "decisions/s"),
        ("ready_p99", "ready->pub p99 ms"), ("skipped", "skipped hops"))


def main(argv: list[str] | None = None) -> int:
    p = u.parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=None, help="measured seconds per run (10)")
    p.add_argument("--stream", choices=[f"{c}x{int(r)}" for c, r, _ in CONFIGS], default=None,
                   help="only this stream (channels x Hz); default: all")
    u.add_baseline_option(p)
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    logging.basicConfig(level=logging.WARNING)
    u.print_header("gui_fps", args)
    from PyQt6.QtWidgets import QApplication
    from threadpoolctl import threadpool_limits

    app = QApplication.instance() or QApplication([])
    reps = u.n_reps(args)
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    rows = []
    load0 = " ".join(f"{v:.2f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        configs = CONFIGS[:1] if args.quick else CONFIGS
        if args.stream:
            configs = [c for c in CONFIGS if f"{c[0]}x{int(c[1])}" == args.stream]
        for n_ch, srate, chunk in configs:
            dec, _, _ = u.train_bundle("ts-lr", n_ch, srate, Path(tmp))
            res: dict[str, list] = {"default": [], "1": []}
            with u.Source(n_ch, srate, chunk) as src:
                for _ in range(reps):
                    for blas in res:
                        limiter = threadpool_limits(1, user_api="blas") if blas == "1" else None
                        try:
                            res[blas].append(run_once(app, dec, src, seconds))
                        finally:
                            if limiter is not None:
                                limiter.unregister()
            for blas, rs in res.items():
                m = u.median_rows(rs)
                ok = "yes" if m["fps"] >= 30 else "NO"
                rows.append([f"{n_ch}x{int(srate)}", blas, *(m[c] for c, _ in COLS), ok])
    u.print_table(
        f"Signal view (10 s span, default rows, filters on) while decoding ts-lr, offscreen Qt "
        f"(medians of {reps} run(s) x {seconds:g} s)",
        ["stream", "blas", *(h for _, h in COLS), ">= 30 fps"],
        rows,
        note=f"load average at start / end: {load0} / "
             f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (2 cores). "
             "frame = SignalView.update_frame (pull, filter, peak-downsample, setData); GUI CPU "
             "ms/frame = GUI-thread CPU time per frame incl. painting; the view's timer asks for "
             "40 fps, so 40 is the ceiling. blas = BLAS thread pool as started (default) or limited "
             "to 1 thread with threadpoolctl (see latency).",
    )
    if args.baseline:
        return u.run_baseline("gui_fps", sys.argv[1:] if argv is None else argv, args.baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
