"""Acquisition side by side: neurodeck's Inlet vs MNE-LSL's StreamLSL on the same LSL stream.

One source process pushes EEGMMIDB (resampled/tiled) plus a ``COUNTER`` channel in real time
(chunks of 15.6 ms). In one script run, the two readers take turns on that same stream (A, B,
A, B, ... one repetition = one turn each): each is connected with a 5 s buffer, a 1 ms
acquisition delay and clock synchronisation only, and the reader asks for the latest 1 s window
every 62.5 ms (what the online engine does):

- neurodeck: ``acquisition.inlet.Inlet(...).latest(n)``
- MNE-LSL: ``mne_lsl.stream.StreamLSL(...).connect(acquisition_delay=0.001,
  processing_flags=["clocksync"]).get_data(winsize=1.0)``

Measured per turn: ``get`` = wall time of the window call; ``age`` = ``local_clock()`` right
after the call minus the newest sample's timestamp (how fresh the "latest" window is; includes
the source's chunking); CPU = process CPU seconds per wall second during the turn (the reader's
background thread + the 16 Hz reads; 100 % = one core); lost = counter values missing between
and inside successive windows. Medians over repetitions; ratio = MNE-LSL / neurodeck (> 1:
neurodeck is faster / cheaper).

Run: ``python -m benchmarks.acquisition_vs_mnelsl [--quick] [--seconds S]``.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from benchmarks import _util as u

logger = logging.getLogger(__name__)

CONFIGS = ((64, 512.0, 8), (256, 2048.0, 32))
HOP_S = 0.0625
WINDOW_S = 1.0
BUFFER_S = 5.0


class _Loss:
    """Counts counter values never seen, from overlapping windows read in order."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.lost = 0
        self.reordered = 0

    def update(self, counter: np.ndarray) -> None:
        c = np.asarray(counter)
        if c.size == 0:
            return
        d = np.diff(c)
        self.reordered += int(np.sum(d < 1))
        if self.last is None:
            self.lost += int(np.sum(np.maximum(d - 1, 0)))
        else:
            new = c[c > self.last]
            if new.size:
                self.lost += int(new[-1] - self.last) - new.size
        self.last = float(c[-1]) if self.last is None else max(self.last, float(c[-1]))


def _reader_loop(get, seconds: float) -> dict[str, float]:
    """Call ``get()`` -> (data (n_ch, n), timestamps) every HOP_S for ``seconds``."""
    from neurodeck.acquisition.outlet import local_clock

    gets, ages = [], []
    loss = _Loss()
    cpu0, wall0 = u.cpu_seconds(), time.perf_counter()
    next_t = time.perf_counter()
    end = wall0 + seconds
    pc = time.perf_counter
    while True:
        next_t += HOP_S
        t0 = pc()
        data, ts = get()
        t1 = pc()
        now = local_clock()
        gets.append(t1 - t0)
        ages.append(now - ts[-1])
        loss.update(data[-1])
        if next_t > end:
            break
        delay = next_t - pc()
        if delay > 0:
            time.sleep(delay)
    cpu, wall = u.cpu_seconds() - cpu0, pc() - wall0
    g, a = u.pct(np.asarray(gets) * 1e3), u.pct(np.asarray(ages) * 1e3)
    return {"get_p50": g[0], "get_p99": g[2], "age_p50": a[0], "age_p99": a[2],
            "cpu": 100 * cpu / wall, "lost": float(loss.lost), "reads": float(len(gets)),
            "reordered": float(loss.reordered)}


def run_neurodeck(src: u.Source, seconds: float) -> dict[str, float]:
    from neurodeck.acquisition.inlet import Inlet

    n = int(round(WINDOW_S * src.srate))
    inlet = Inlet(src.info(), buffer_seconds=BUFFER_S, poll_interval=0.001)
    inlet.start()
    try:
        if not inlet.wait_for_samples(n, 15.0):
            raise RuntimeError("neurodeck inlet received no data")
        return _reader_loop(lambda: inlet.latest(n), seconds)
    finally:
        inlet.stop()


def run_mnelsl(src: u.Source, seconds: float) -> dict[str, float]:
    from mne_lsl.stream import StreamLSL

    stream = StreamLSL(BUFFER_S, source_id=src.source_id)
    stream.connect(acquisition_delay=0.001, processing_flags=["clocksync"], timeout=10)
    try:
        deadline = time.monotonic() + 15
        while stream.n_new_samples < int(WINDOW_S * src.srate) and time.monotonic() < deadline:
            time.sleep(0.05)
        data, _ = stream.get_data(winsize=WINDOW_S)
        if data.shape[0] != src.n_channels + 1:
            raise RuntimeError(f"StreamLSL returned {data.shape[0]} channels, expected "
                               f"{src.n_channels + 1} (with COUNTER)")
        return _reader_loop(lambda: stream.get_data(winsize=WINDOW_S), seconds)
    finally:
        stream.disconnect()


COLS = (("get_p50", "get p50 ms"), ("get_p99", "get p99 ms"), ("age_p50", "age p50 ms"),
        ("age_p99", "age p99 ms"), ("cpu", "CPU %"), ("lost", "lost samples"),
        ("reads", "reads"))


def main(argv: list[str] | None = None) -> int:
    p = u.parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=None, help="seconds per turn (15; quick 4)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    u.print_header("acquisition_vs_mnelsl", args)
    reps = u.n_reps(args)
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    rows, ratio_rows = [], []
    for n_ch, srate, chunk in (CONFIGS[:1] if args.quick else CONFIGS):
        res: dict[str, list] = {"neurodeck": [], "mne-lsl": []}
        with u.Source(n_ch, srate, chunk) as src:
            for _ in range(reps):
                res["neurodeck"].append(run_neurodeck(src, seconds))
                res["mne-lsl"].append(run_mnelsl(src, seconds))
        med = {k: u.median_rows(v) for k, v in res.items()}
        for k in ("neurodeck", "mne-lsl"):
            rows.append([f"{n_ch}x{int(srate)}", k, *(med[k][c] for c, _ in COLS)])
        nd, ml = med["neurodeck"], med["mne-lsl"]
        ratio_rows.append([f"{n_ch}x{int(srate)}", ml["get_p50"] / nd["get_p50"],
                           ml["age_p50"] / nd["age_p50"], ml["age_p99"] / nd["age_p99"],
                           ml["cpu"] / nd["cpu"],
                           "yes" if nd["lost"] == 0 and nd["age_p50"] <= ml["age_p50"] * 1.05
                           and nd["get_p50"] <= ml["get_p50"] * 1.05 else "NO"])
    u.print_table(
        f"Latest 1 s window every 62.5 ms: neurodeck Inlet vs MNE-LSL StreamLSL (medians of "
        f"{reps} turn(s) x {seconds:g} s each)",
        ["stream", "reader", *(h for _, h in COLS)], rows,
        note="get = duration of latest()/get_data(); age = now - newest sample timestamp right "
             "after the call; CPU = process CPU time / wall time while reading (100 % = one "
             "core); lost = counter values missing.",
    )
    u.print_table(
        "Ratios MNE-LSL / neurodeck (> 1: neurodeck better)",
        ["stream", "get p50", "age p50", "age p99", "CPU", "neurodeck as fast and lossless"],
        ratio_rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
