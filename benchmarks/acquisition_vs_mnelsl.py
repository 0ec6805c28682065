"""Acquisition side by side: neurodeck's Inlet vs MNE-LSL's StreamLSL on the same LSL stream.

One source process pushes EEGMMIDB (resampled/tiled) plus a ``COUNTER`` channel in real time
(chunks of 15.6 ms). In one script run, the two readers take turns on that same stream (A, B,
A, B, ... one repetition = one turn each): each is connected with a 5 s buffer, a 1 ms
acquisition delay and clock synchronisation only, and the reader asks for the latest 1 s window
once per 62.5 ms hop (what the online engine does), at a random moment of the hop (the hop is a
multiple of the source's chunk period: a fixed grid would sample one phase of the chunk clock
per turn, which made the age of the two readers differ by chance, e.g. 2.3 vs 13.3 ms p50):

- neurodeck: ``acquisition.inlet.Inlet(...).latest(n)``
- MNE-LSL: ``mne_lsl.stream.StreamLSL(...).connect(acquisition_delay=0.001,
  processing_flags=["clocksync"]).get_data(winsize=1.0)``

Measured per turn: ``get`` = wall time of the window call; ``age`` = ``local_clock()`` right
after the call minus the newest sample's timestamp (how fresh the "latest" window is; includes
the source's chunking); ``lag`` = the newest sample the source had pushed by then (its nominal
chunk clock, from the COUNTER channel) minus the newest sample read, in ms: the reader's own
delay (plus any lateness of the source process); CPU = process CPU seconds per wall second
during the turn (the reader's
background thread + the 16 Hz reads; 100 % = one core); lost = counter values missing between
and inside successive windows. Medians over repetitions; ratio = MNE-LSL / neurodeck (> 1:
neurodeck is faster / cheaper).

Run: ``python -m benchmarks.acquisition_vs_mnelsl [--quick] [--seconds S]``.
"""
from __future__ import annotations

import contextlib
import logging
import os
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


def _reader_loop(get, seconds: float, srate: float, chunk: int,
                 seed: int = 0) -> dict[str, float]:
    """Call ``get()`` -> (data (n_ch, n), timestamps) about every HOP_S for ``seconds``.

    Each read happens at a random moment of its hop (uniform over one hop, seeded): the source
    pushes a chunk every ``chunk / srate`` s and HOP_S is a multiple of that, so reads on a fixed
    grid would all fall at one phase of the source's chunk clock, and the age would measure that
    phase (different in every turn) rather than the reader.
    """
    from neurodeck.acquisition.outlet import local_clock

    rng = np.random.default_rng(seed)
    gets, ages, lags = [], [], []
    loss = _Loss()
    load0 = os.getloadavg()[0]
    cpu0, wall0 = u.cpu_seconds(), time.perf_counter()
    grid = time.perf_counter()
    end = wall0 + seconds
    pc = time.perf_counter
    while True:
        delay = grid + rng.uniform(0.0, HOP_S) - pc()
        if delay > 0:
            time.sleep(delay)
        grid += HOP_S
        t0 = pc()
        data, ts = get()
        t1 = pc()
        now = local_clock()
        gets.append(t1 - t0)
        ages.append(now - ts[-1])
        # lag: how far the newest sample read is behind the newest one the source had to push by
        # `now` (its chunk clock: sample i is stamped t0 + i / srate, chunks end at i = k*chunk-1)
        newest = int(data[-1, -1])
        t_zero = ts[-1] - newest / srate
        due = int(np.floor(((now - t_zero) * srate + 1) / chunk)) * chunk - 1
        lags.append(max(due - newest, 0) / srate)
        loss.update(data[-1])
        if grid > end:
            break
    cpu, wall = u.cpu_seconds() - cpu0, pc() - wall0
    g, a = u.pct(np.asarray(gets) * 1e3), u.pct(np.asarray(ages) * 1e3)
    lg = u.pct(np.asarray(lags) * 1e3)
    return {"get_p50": g[0], "get_p99": g[2], "age_p50": a[0], "age_p99": a[2],
            "lag_mean": 1e3 * float(np.mean(lags)), "behind": 100 * float(np.mean(np.asarray(lags) > 0)),
            "lag_p99": lg[2],
            "cpu": 100 * cpu / wall, "lost": float(loss.lost), "reads": float(len(gets)),
            "reordered": float(loss.reordered), "load": (load0 + os.getloadavg()[0]) / 2}


@contextlib.contextmanager
def _neurodeck(src: u.Source):
    """Yield ``get()`` -> latest window of a started neurodeck Inlet."""
    from neurodeck.acquisition.inlet import Inlet

    n = int(round(WINDOW_S * src.srate))
    inlet = Inlet(src.info(), buffer_seconds=BUFFER_S)
    inlet.start()
    try:
        if not inlet.wait_for_samples(n, 15.0):
            raise RuntimeError("neurodeck inlet received no data")
        yield lambda: inlet.latest(n)
    finally:
        inlet.stop()


@contextlib.contextmanager
def _mnelsl(src: u.Source):
    """Yield ``get()`` -> latest window of a connected MNE-LSL StreamLSL."""
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
        yield lambda: stream.get_data(winsize=WINDOW_S)
    finally:
        stream.disconnect()


READERS = {"neurodeck": _neurodeck, "mne-lsl": _mnelsl}


def run_turn(reader: str, src: u.Source, seconds: float, seed: int = 0) -> dict[str, float]:
    """One reader alone on the stream (its CPU is the process's)."""
    with READERS[reader](src) as get:
        return _reader_loop(get, seconds, src.srate, src.chunk, seed)


def run_paired(src: u.Source, seconds: float, seed: int = 0) -> dict[str, float]:
    """Both readers connected at once, read back to back at the same random moments.

    Source lateness and machine load hit both alike, so the difference of their ages is the
    readers' own (the order alternates every read).
    """
    from neurodeck.acquisition.outlet import local_clock

    rng = np.random.default_rng(seed)
    ages: dict[str, list[float]] = {"neurodeck": [], "mne-lsl": []}
    newer = {"neurodeck": 0, "mne-lsl": 0}
    load0 = os.getloadavg()[0]
    with _neurodeck(src) as get_nd, _mnelsl(src) as get_ml:
        gets = {"neurodeck": get_nd, "mne-lsl": get_ml}
        order = list(gets)
        grid = time.perf_counter()
        end = grid + seconds
        while grid <= end:
            delay = grid + rng.uniform(0.0, HOP_S) - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            grid += HOP_S
            newest = {}
            for k in order:
                data, ts = gets[k]()
                ages[k].append(local_clock() - ts[-1])
                newest[k] = data[-1, -1]
            if newest["neurodeck"] != newest["mne-lsl"]:
                newer[max(newest, key=newest.get)] += 1
            order.reverse()
    n = len(ages["neurodeck"])
    out = {"reads": float(n), "load": (load0 + os.getloadavg()[0]) / 2}
    for k, v in ages.items():
        a = u.pct(np.asarray(v) * 1e3)
        out[f"{k}_p50"], out[f"{k}_p99"] = a[0], a[2]
        out[f"{k}_newer"] = 100 * newer[k] / n
    return out


COLS = (("get_p50", "get p50 ms"), ("get_p99", "get p99 ms"), ("age_p50", "age p50 ms"),
        ("age_p99", "age p99 ms"), ("lag_mean", "lag mean ms"), ("lag_p99", "lag p99 ms"),
        ("behind", "behind %"),
        ("cpu", "CPU %"), ("load", "load avg"), ("lost", "lost samples"),
        ("reads", "reads"))


def main(argv: list[str] | None = None) -> int:
    p = u.parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=None, help="seconds per turn (15; quick 4)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    u.print_header("acquisition_vs_mnelsl", args)
    reps = u.n_reps(args)
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    rows, ratio_rows, paired_rows = [], [], []
    for n_ch, srate, chunk in (CONFIGS[:1] if args.quick else CONFIGS):
        res: dict[str, list] = {"neurodeck": [], "mne-lsl": [], "paired": []}
        with u.Source(n_ch, srate, chunk) as src:
            for rep in range(reps):  # same random read moments for both readers
                res["neurodeck"].append(run_turn("neurodeck", src, seconds, rep))
                res["mne-lsl"].append(run_turn("mne-lsl", src, seconds, rep))
                res["paired"].append(run_paired(src, seconds, rep))
        med = {k: u.median_rows(v) for k, v in res.items()}
        for k in ("neurodeck", "mne-lsl"):
            rows.append([f"{n_ch}x{int(srate)}", k, *(med[k][c] for c, _ in COLS)])
        nd, ml, pr = med["neurodeck"], med["mne-lsl"], med["paired"]
        paired_rows.append([f"{n_ch}x{int(srate)}", pr["neurodeck_p50"], pr["mne-lsl_p50"],
                            pr["neurodeck_p99"], pr["mne-lsl_p99"], pr["neurodeck_newer"],
                            pr["mne-lsl_newer"], pr["load"], pr["reads"]])
        ratio_rows.append([f"{n_ch}x{int(srate)}", ml["get_p50"] / nd["get_p50"],
                           pr["mne-lsl_p50"] / pr["neurodeck_p50"],
                           pr["mne-lsl_p99"] / pr["neurodeck_p99"],
                           ml["cpu"] / nd["cpu"],
                           "yes" if nd["lost"] == 0
                           and pr["neurodeck_p99"] <= pr["mne-lsl_p99"] * 1.05
                           and nd["get_p50"] <= ml["get_p50"] * 1.05 else "NO"])
    u.print_table(
        f"Latest 1 s window every 62.5 ms: neurodeck Inlet vs MNE-LSL StreamLSL (medians of "
        f"{reps} turn(s) x {seconds:g} s each)",
        ["stream", "reader", *(h for _, h in COLS)], rows,
        note="get = duration of latest()/get_data(); age = now - newest sample timestamp right "
             "after the call, at a random moment of each hop (includes up to one source chunk, "
             f"{1e3 * CONFIGS[0][2] / CONFIGS[0][1]:.1f} ms at 64 ch); lag = newest sample the "
             "source had pushed by then minus the newest sample read (what the reader adds, plus "
             "the source's own lateness; whole chunks); behind = reads that missed a pushed chunk; CPU = process CPU time / wall time while reading "
             "(100 % = one core); load avg = 1-min load average during the turns; lost = counter "
             "values missing.",
    )
    u.print_table(
        f"Both readers connected at once, read back to back at the same moments (medians of "
        f"{reps} x {seconds:g} s)",
        ["stream", "neurodeck age p50 ms", "mne-lsl age p50 ms", "neurodeck age p99 ms",
         "mne-lsl age p99 ms", "neurodeck newer %", "mne-lsl newer %", "load avg", "reads"],
        paired_rows,
        note="newer = reads where that reader's newest sample was newer than the other's (the "
             "rest: the same newest sample).",
    )
    u.print_table(
        "Ratios MNE-LSL / neurodeck (> 1: neurodeck better; ages from the paired run)",
        ["stream", "get p50", "age p50", "age p99", "CPU", "neurodeck as fast and lossless"],
        ratio_rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
