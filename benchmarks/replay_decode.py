"""``neurodeck replay`` -> ``neurodeck decode`` -> an independent inlet: latency from the start.

The issue-16 scenario, with the real command-line programs in their own processes::

    process 1:  neurodeck replay assets/eegmmidb/S001R12.edf --name NAME      (real time)
    process 2:  neurodeck decode --model BUNDLE --stream NAME --out-name OUT  (started 1 s later;
                with --decode-first 1 s before the replay)
    this one:   pylsl.StreamInlet on OUT; latency = reception time - decision timestamp

A decision's timestamp is its window's last EEG sample (the player stamps samples when it pushes
them), so the latency includes the player's chunking, LSL, the engine and the output stream. The
table gives the percentiles over the first ``--seconds`` (10) of decisions, and the first eight
latencies in order: a stale backlog decided after start shows as a decreasing burst there.
The bundle is psd-lda (or ``--pipeline``) trained on S001 runs 4 and 8 (2 s window + 1 s padding).

Run: ``python -m benchmarks.replay_decode [--seconds 10] [--reps 3] [--baseline REV]``.
"""
from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

from benchmarks import _util as u

logger = logging.getLogger(__name__)


def train(pipeline: str, out: Path) -> Path:
    from benchmarks.throughput import windows
    from neurodeck.decoders.onnx import save_bundle

    runs = u.imagery_runs()
    cfg = u.decoder_config(pipeline, window_s=2.0)
    X, y, names, sf = windows(runs[:2], cfg)
    pipe = cfg.build(sf, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    return save_bundle(pipe, cfg, out / pipeline, ch_names=names, sfreq=sf, X_check=X[:4])


def run_once(bundle: Path, seconds: float, decode_first: bool = False) -> dict[str, float]:
    import pylsl

    tag = uuid.uuid4().hex[:8]
    name, out = f"ndbench-replay-{tag}", f"ndbench-decisions-{tag}"
    edf = u.imagery_runs()[2]
    cmd = [sys.executable, "-m", "neurodeck"]
    replay = [*cmd, "replay", str(edf), "--name", name, "--no-progress"]
    decode = [*cmd, "decode", "--model", str(bundle), "--stream", name, "--out-name", out,
              "--duration", str(seconds + 8), "--quiet", "--timeout", "30"]
    first, second = (decode, replay) if decode_first else (replay, decode)
    procs = [subprocess.Popen(first, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)]
    try:
        time.sleep(1.0)
        procs.append(subprocess.Popen(second, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True))
        found = pylsl.resolve_byprop("name", out, 1, 20.0)
        if not found:
            raise RuntimeError(f"decision stream {out} did not appear")
        inlet = pylsl.StreamInlet(found[0], max_buflen=30)
        inlet.open_stream(5.0)
        lat: list[float] = []
        t_first = None
        deadline = time.monotonic() + seconds + 15
        while time.monotonic() < deadline:
            sample, ts = inlet.pull_sample(timeout=0.5)
            if ts is None:
                continue
            now = pylsl.local_clock()
            t_first = now if t_first is None else t_first
            if now - t_first > seconds:
                break
            if sample[-1] > 0.5:
                lat.append(now - ts)
        inlet.close_stream()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    ms = np.asarray(lat) * 1e3
    if not len(ms):
        raise RuntimeError("no valid decision received")
    p50, p95, p99 = u.pct(ms)
    first = [float(v) for v in ms[:8]]
    return {"p50": p50, "p95": p95, "p99": p99, "max": float(ms.max()), "n": float(len(ms)),
            "first": first}


def main(argv: list[str] | None = None) -> int:
    p = u.parser(__doc__.splitlines()[0], reps=3)
    p.add_argument("--seconds", type=float, default=None, help="seconds of decisions (10)")
    p.add_argument("--pipeline", default="psd-lda")
    p.add_argument("--decode-first", action="store_true",
                   help="start `neurodeck decode` 1 s before the replay (it waits for the stream)")
    u.add_baseline_option(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    u.print_header("replay_decode", args)
    reps = u.n_reps(args)
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = train(args.pipeline, Path(tmp))
        res = [run_once(bundle, seconds, args.decode_first) for _ in range(reps)]
    rows = [[i + 1, r["p50"], r["p95"], r["p99"], r["max"], r["n"],
             " ".join(f"{v:.0f}" for v in r["first"])] for i, r in enumerate(res)]
    m = u.median_rows([{k: v for k, v in r.items() if k != "first"} for r in res])
    rows.append(["median", m["p50"], m["p95"], m["p99"], m["max"], m["n"], ""])
    u.print_table(
        f"replay -> decode -> independent inlet, first {seconds:g} s of decisions ({args.pipeline},"
        " EEGMMIDB S001R12, 64 ch @ 160 Hz, hop 62.5 ms), ms",
        ["run", "p50", "p95", "p99", "max", "decisions", "first 8 latencies"], rows,
        note="Target p99 <= 40 ms. Latency = reception here - timestamp of the window's last "
             "sample (includes the player's chunking).")
    if args.baseline:
        return u.run_baseline("replay_decode", sys.argv[1:] if argv is None else argv,
                              args.baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
