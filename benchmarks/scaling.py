"""How latency and CPU grow with channels (8 -> 256 @ 512 Hz, 64 -> 512 @ 2048 Hz) and rate.

Each point is the end-to-end setup of :mod:`benchmarks.latency` (source process -> Inlet ->
OnlineEngine with a bundle trained at that size -> independent decision inlet), 1 s window + 1 s
filter padding, hop 62.5 ms, chunks of 15.6 ms, with the BLAS pool limited to one thread (the
setting latency.py recommends). Besides e2e and the engine stages, each point times every step
of the model's feature stage on one window (median of 30 calls) and names the dominant one.
"Breaks" = e2e p99 above the budget (20 ms), skipped hops, or lost samples. "hop CPU" is the
engine thread's CPU time per hop in the decoder (filtering the new samples + features + head);
"eigh floor" is one ``numpy.linalg.eigh`` of a channels x channels SPD matrix on this machine,
the least a Riemannian model (one decomposition per window) costs per hop.

Run: ``python -m benchmarks.scaling [--quick] [--seconds S] [--points 256x2048,512x2048]
[--pipelines ts-lr] [--baseline REV]``.
"""
from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import _util as u
from benchmarks.latency import measure

logger = logging.getLogger(__name__)

CHANNELS = (8, 16, 32, 64, 128, 256)
RATES = (128.0, 256.0, 512.0, 1024.0, 2048.0)
PIPELINES = ("psd-lda", "ts-lr")


HIGH_DENSITY = (64, 128, 256, 512)  # channels @ 2048 Hz


def points(quick: bool) -> list[tuple[int, float]]:
    if quick:
        return [(8, 512.0), (64, 128.0)]
    pts = [(c, 512.0) for c in CHANNELS] + [(64, r) for r in RATES if r != 512.0]
    return pts + [(c, 2048.0) for c in HIGH_DENSITY if c != 64]


def eigh_floor(n: int) -> float:
    """Median CPU time (thread time) of one ``eigh`` of an n x n SPD matrix, seconds."""
    a = np.random.default_rng(0).standard_normal((n, 2 * n))
    spd = a @ a.T / (2 * n) + np.eye(n)
    times = []
    for _ in range(7 if n >= 512 else 15):
        t0 = time.thread_time()
        np.linalg.eigh(spd)
        times.append(time.thread_time() - t0)
    return float(np.median(times))


def step_times(decoder) -> tuple[str, str]:
    """Median time of each feature step + head on one window; (dominant step, all steps)."""
    b = decoder.bundle
    X = np.random.default_rng(0).standard_normal((1, len(b.ch_names), b.window_samples)) * 10
    times = {}
    F = X
    for name, step in b.features:
        times[name] = float(np.median(u.timeit(lambda s=step, F=F: s.transform(F), 30)))
        F = step.transform(F)
    G = np.ascontiguousarray(np.asarray(F, float).reshape(1, -1), dtype=b.input_dtype)
    times["onnx head"] = float(np.median(u.timeit(lambda: b.run_head(G), 30)))
    top = max(times, key=times.get)
    total = sum(times.values())
    desc = ", ".join(f"{k} {v * 1e3:.2f}" for k, v in times.items())
    return f"{top} ({100 * times[top] / total:.0f} %)", desc


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    p = u.parser(__doc__.splitlines()[0], reps=2)
    p.add_argument("--seconds", type=float, default=None, help="measured seconds per point (6)")
    p.add_argument("--pipelines", default=None, help="comma separated (psd-lda,ts-lr)")
    p.add_argument("--points", default=None, help="channels x Hz, e.g. 256x2048,512x2048")
    u.add_baseline_option(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    u.print_header("scaling", args)
    reps = u.n_reps(args)
    seconds = args.seconds or (2.0 if args.quick else 6.0)
    pipes = args.pipelines.split(",") if args.pipelines else (
        ["psd-lda"] if args.quick else list(PIPELINES))
    budget = 20.0
    pts = points(args.quick)
    if args.points:
        pts = [(int(c), float(r)) for c, r in (x.split("x") for x in args.points.split(","))]
    rows, steps = [], []
    limiter = threadpool_limits(1, user_api="blas")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n_ch, srate in pts:
                chunk = max(1, int(round(srate / 64)))
                train_s = 90.0 if n_ch * srate <= 262_144 else 40.0  # memory at 512 ch @ 2048 Hz
                decs = {pl: u.train_bundle(pl, n_ch, srate, Path(tmp), seconds=train_s)[0]
                        for pl in pipes}
                floor = eigh_floor(n_ch) * 1e3
                with u.Source(n_ch, srate, chunk) as src:
                    res: dict[str, list] = {pl: [] for pl in pipes}
                    for _ in range(reps):
                        for pl in pipes:
                            res[pl].append(measure(decs[pl], src, seconds, blas1=False))
                for pl in pipes:
                    m = u.median_rows(res[pl])
                    top, desc = step_times(decs[pl])
                    stages = {"pull": m["pull_p50"], "read": m["read_p50"],
                              "decide": m["decide_p50"], "publish": m["publish_p50"]}
                    dom = max(stages, key=stages.get)
                    breaks = []
                    if m["e2e_p99"] > budget:
                        breaks.append("e2e p99")
                    if m["skipped"] > 0:
                        breaks.append("skips")
                    if m["lost"] > 0:
                        breaks.append("loss")
                    rows.append([n_ch, int(srate), pl, m["e2e_p50"], m["e2e_p99"], m["pull_p50"],
                                 m["read_p50"], m["decide_p50"], m["decide_p99"],
                                 m["decide_cpu_p50"], floor, m["skipped"], m["cpu_pct"],
                                 dom, top, ", ".join(breaks) or "-"])
                    steps.append([n_ch, int(srate), pl, desc])
    finally:
        limiter.unregister()
    u.print_table(
        f"Scaling (BLAS 1 thread; medians of {reps} rep(s) x {seconds:g} s per point; ms)",
        ["channels", "Hz", "pipeline", "e2e p50", "e2e p99", "pull p50", "read p50", "decide p50",
         "decide p99", "hop CPU p50", "eigh floor", "skipped hops", "CPU %", "largest stage",
         "largest decide step", "breaks"],
        rows,
        note=f"Budget e2e p99 <= {budget:g} ms. CPU % = this process (inlet + engine + "
             "receiver threads; 100 % = one core).",
    )
    u.print_table("Decide stage by step, one window (ms, median of 30 calls)",
                  ["channels", "Hz", "pipeline", "steps"], steps)
    if args.baseline:
        return u.run_baseline("scaling", sys.argv[1:] if argv is None else argv, args.baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
