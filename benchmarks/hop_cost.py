"""Per-hop compute of the online engine, before and after the streaming path, in one process.

For each stream size the same trained bundle is run, hop after hop over the same signal, two
ways, interleaved (so both see the same machine load):

``window`` (the path before issue 16)
    ``acquisition.quality.check_window`` on the raw padded window, then
    ``ModelBundle.predict_proba`` of that window: the band-pass over the whole padded window
    (1 s padding + window) and pyriemann's ``TangentSpace`` (its reference's ``C^-1/2``
    recomputed on every call).
``stream`` (now, what ``app.engine.OnlineEngine`` runs)
    ``app.engine.QualityScreen`` (per-hop block statistics), ``DecoderStream.push`` of the new
    samples (band-pass state carried), ``DecoderStream.decide`` (covariance from hop blocks,
    cached whitening, one ``eigh``) and the ONNX head.

Reported: wall and CPU (``thread_time``) per hop, p50 / p99, and the ratio; "eigh floor" is one
``numpy.linalg.eigh`` of a channels x channels SPD matrix (the least any Riemannian model costs
per window). Models are fitted on a few synthetic trials (the cost does not depend on what the
model learned). One BLAS thread. No LSL: this is the compute between "window ready" and
"decision published", without the buffer read and the push (see ``benchmarks.latency``).

Each pipeline runs as trained by default (decimating to its working rate when the band allows,
``decoders.epochs.decimation_factor``) and, as ``name:full``, trained at the stream's rate.

Run: ``python -m benchmarks.hop_cost [--quick] [--points 64x512,256x2048] [--hops N]``.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import _util as u

logger = logging.getLogger(__name__)

POINTS = ((64, 512.0), (64, 2048.0), (128, 2048.0), (256, 2048.0), (512, 2048.0))
HOP_S = 0.0625


def fit_bundle(pipeline: str, n_ch: int, srate: float, tmp: Path, window_s: float = 2.0):
    """``pipeline`` (``name`` or ``name:full``: without decimation to the working rate)."""
    from neurodeck.decoders.online import OnlineDecoder

    pipeline, _, full = pipeline.partition(":")
    return OnlineDecoder(u.synthetic_bundle(pipeline, n_ch, srate, tmp, window_s,
                                            decimate=full != "full"))


def run_point(dec, n_hops: int) -> dict[str, float]:
    from neurodeck.acquisition.quality import QualityConfig, check_window
    from neurodeck.app.engine import QualityScreen

    sf, W = dec.sfreq, dec.window_samples
    hop = dec.hop_samples(HOP_S)
    n_ch = len(dec.ch_names)
    first = -(-W // hop) * hop
    rng = np.random.default_rng(2)
    data = 10 * rng.standard_normal((n_ch, first + (n_hops + 1) * hop))
    cfg, to_uv = QualityConfig(), np.ones(n_ch)
    screen = QualityScreen(cfg, to_uv, W, hop)
    stream = dec.open_stream(hop)
    old_w, old_c, new_w, new_c, diff = [], [], [], [], []
    for k in range(n_hops + 1):
        end = first + k * hop
        win = data[:, end - W:end]
        t0, c0 = time.perf_counter(), time.thread_time()
        assert check_window(win, sf, cfg, to_uv=to_uv, line_noise=False).ok
        a = dec.bundle.predict_proba(win[None])[0]
        t1, c1 = time.perf_counter(), time.thread_time()
        assert screen.clean(win, end)
        if stream.end is None:
            stream.reset(win, end)
        else:
            stream.push(win[:, W - (end - stream.end):])
        b = stream.decide(win)
        t2, c2 = time.perf_counter(), time.thread_time()
        if k:  # the first hop (re)starts the stream filter on the whole window
            old_w.append(t1 - t0)
            old_c.append(c1 - c0)
            new_w.append(t2 - t1)
            new_c.append(c2 - c1)
            diff.append(float(np.max(np.abs(a - b))))
    ms = 1e3
    o, n = u.pct(np.asarray(old_w) * ms), u.pct(np.asarray(new_w) * ms)
    return {"old_p50": o[0], "old_p99": o[2], "new_p50": n[0], "new_p99": n[2],
            "old_cpu": u.median(np.asarray(old_c) * ms), "new_cpu": u.median(np.asarray(new_c) * ms),
            "diff": max(diff)}


def eigh_floor(n: int) -> float:
    """Median CPU time (thread time) of one ``eigh`` of an n x n SPD matrix, ms."""
    a = np.random.default_rng(0).standard_normal((n, 2 * n))
    spd = a @ a.T / (2 * n) + np.eye(n)
    times = []
    for _ in range(7 if n >= 512 else 15):
        t0 = time.thread_time()
        np.linalg.eigh(spd)
        times.append(time.thread_time() - t0)
    return float(np.median(times)) * 1e3


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    p = u.parser(__doc__.splitlines()[0], reps=1)
    p.add_argument("--points", default=None, help="channels x Hz, e.g. 64x512,256x2048")
    p.add_argument("--pipelines", default="ts-lr,ts-lr:full,psd-lda",
                   help="comma separated; name:full = without decimation to the working rate")
    p.add_argument("--hops", type=int, default=None, help="hops per point (40; --quick 8)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    u.print_header("hop_cost", args)
    pts = [(64, 512.0)] if args.quick else list(POINTS)
    if args.points:
        pts = [(int(c), float(r)) for c, r in (x.split("x") for x in args.points.split(","))]
    n_hops = args.hops or (8 if args.quick else 40)
    rows = []
    limiter = threadpool_limits(1, user_api="blas")
    try:
        with tempfile.TemporaryDirectory() as tmpd:
            for n_ch, sf in pts:
                floor = eigh_floor(n_ch)
                for pl in args.pipelines.split(","):
                    dec = fit_bundle(pl, n_ch, sf, Path(tmpd))
                    m = run_point(dec, n_hops)
                    rows.append([n_ch, int(sf), f"{pl} ({dec.working_sfreq:g} Hz)", m["old_p50"], m["old_p99"], m["new_p50"],
                                 m["new_p99"], m["old_cpu"], m["new_cpu"],
                                 m["old_cpu"] / max(m["new_cpu"], 1e-9),
                                 floor if pl.startswith("ts") else float("nan"),
                                 f"{m['diff']:.1e}"])
    finally:
        limiter.unregister()
    u.print_table(
        f"Per-hop compute, window path (before) vs stream path (now), ms ({n_hops} hops of "
        f"{HOP_S * 1e3:g} ms, 2 s window + 1 s padding, one BLAS thread)",
        ["channels", "Hz", "pipeline", "window p50", "window p99", "stream p50", "stream p99",
         "window CPU p50", "stream CPU p50", "CPU ratio", "eigh floor", "max |dp|"],
        rows,
        note="(N Hz) = the model's working rate (':full' = trained without decimation). "
             "window = check_window + per-window band-pass + pyriemann features + head; stream = "
             "QualityScreen + new samples through the carried band-pass + block covariance + "
             "cached whitening + head. max |dp| = largest probability difference between the two "
             "(continuous vs per-window filtering). Targets: 64 ch @ 512 Hz ready->published p50 "
             "<= 1 ms, p99 <= 3 ms.",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
