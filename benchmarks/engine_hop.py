"""One engine hop (window ready -> decision published), CPU per stage, and this tree vs a revision
hop by hop in one process.

``OnlineEngine._decide_window`` is what the engine thread runs per hop: the buffer reads (the
window's timestamps, the new samples of the model's channels), the gap check, the unit check,
``QualityScreen``, the stream filter, the features, the onnxruntime head and the LSL push. Here a
real ``RingBuffer`` is filled hop by hop by this script (no LSL inlet, no pull thread: nothing
else competes for the GIL) and the hop is timed with the thread's CPU clock.

``--against REV`` loads ``app/engine.py``, ``app/stream_units.py``, ``decoders/online.py`` and
``decoders/calibration.py`` of git revision REV as separate modules and runs both engines on the
same samples, alternating which goes first, so both see the same machine load; the decisions are
compared. The stage table (``--stages``) wraps the stage functions of this tree (about 1 us of
clock reads per wrapped call).

Models: fitted on a few synthetic trials (the cost does not depend on what they learned), 1 s
window + 1 s padding as in ``benchmarks.latency``, decimating to their working rate.

``--floor`` times, back to back and paced, only what no engine can skip once the window is there:
the model's last step before the head on this hop's own matrix (for a tangent space: one ``eigh``
of the whitened covariance and the log map) and the onnxruntime head on this hop's own features,
nothing else (no read, check, filter, covariance or push): the least a hop of this model costs on
this machine, whatever the engine around it.

Run: ``python -m benchmarks.engine_hop [--quick] [--points 64x512] [--pipelines ts-lr,psd-lda]
[--hops N] [--against REV] [--stages [--paced]] [--floor]``.
"""
from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from benchmarks import _util as u

logger = logging.getLogger(__name__)

HOP_S = 0.0625
#: The modules whose revision ``--against`` swaps (everything else is shared and unchanged).
SWAPPED = ("decoders/calibration.py", "app/stream_units.py", "decoders/online.py", "app/engine.py")


class _Inlet:
    """What ``OnlineEngine`` needs of an inlet, over a real ring buffer filled by the caller."""

    def __init__(self, n_ch: int, srate: float) -> None:
        from neurodeck.acquisition.buffer import RingBuffer

        self.buffer = RingBuffer(n_ch + 1, int(srate * 10))
        self.description = types.SimpleNamespace(
            labels=[f"E{i:03d}" for i in range(n_ch)] + ["COUNTER"], srate=srate,
            units=["microvolts"] * n_ch + [""])
        self.running, self.state, self.stamp_lead = True, None, 0.0

    @property
    def n_received(self) -> int:
        return self.buffer.n_written

    def wait_for_samples(self, n: int, timeout: float) -> bool:  # noqa: ARG002
        time.sleep(timeout)  # the engine's own thread idles: this script drives the hops
        return False

    def start(self) -> None:
        pass


def _revision_modules(rev: str, tmp: Path) -> types.SimpleNamespace:
    """``OnlineEngine`` and ``OnlineDecoder`` of ``rev`` (its versions of :data:`SWAPPED`)."""
    root = Path(__file__).resolve().parents[1]
    mods = {}
    for rel in SWAPPED:
        src = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=root, check=True,
                             capture_output=True, text=True).stdout
        path = tmp / rel.replace("/", "_")
        path.write_text(src)
        name = "ndrev_" + Path(rel).stem
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look their module up
        # the revision's modules use each other, not this tree's
        if rel == "app/stream_units.py":
            spec.loader.exec_module(mod)
            mod.amplitude_scale = mods["calibration"].amplitude_scale
        elif rel == "app/engine.py":
            spec.loader.exec_module(mod)
            mod.unit_guard, mod.UnitGuard = mods["stream_units"].unit_guard, mods["stream_units"].UnitGuard
            mod.RawWindowStream = mods["online"].RawWindowStream
        else:
            spec.loader.exec_module(mod)
        mods[Path(rel).stem] = mod
    return types.SimpleNamespace(OnlineEngine=mods["engine"].OnlineEngine,
                                 OnlineDecoder=mods["online"].OnlineDecoder)


def run(path: Path, n_ch: int, srate: float, n_hops: int, engines: dict, stages: bool,
        paced: bool = False):
    """Hop CPU per engine (ms lists), max |difference| of their decisions, stage CPU (us/hop).

    ``paced``: the thread sleeps one hop before each hop, as the live engine waits for its
    samples (its caches then go cold as they do live; back to back they stay warm)."""
    rng = np.random.default_rng(2)
    live = {}
    for name, mod in engines.items():
        inlet = _Inlet(n_ch, srate)
        eng = mod.OnlineEngine(mod.OnlineDecoder(path), inlet, hop_s=HOP_S,
                               out_name=f"ndbench-hop-{name}-{rng.integers(1 << 30):x}")
        eng.start()
        live[name] = eng
    first_eng = next(iter(live.values()))
    hop, W = first_eng.hop_samples, first_eng._window
    first = -(-W // hop) * hop
    total = first + (n_hops + 1) * hop
    data = (10 * rng.standard_normal((total, n_ch + 1))).astype(np.float32)
    data[:, -1] = np.arange(total)
    ts = np.arange(total) / srate
    acc: dict[str, float] = {}
    unwrap = _wrap_stages(acc) if stages else (lambda: None)
    cpu = {k: [] for k in live}
    outs = {k: [] for k in live}
    try:
        for eng in live.values():
            eng.inlet.buffer.write(data[:first], ts[:first])
            eng._decide_window(first)  # (re)starts the stream filter on the whole window
        acc.clear()
        for k in range(1, n_hops + 1):
            end = first + k * hop
            order = list(live) if k % 2 else list(live)[::-1]
            for name in order:
                eng = live[name]
                eng.inlet.buffer.write(data[end - hop:end], ts[end - hop:end])
                if paced:
                    time.sleep(HOP_S)
                t0 = time.thread_time()
                eng._decide_window(end)
                cpu[name].append((time.thread_time() - t0) * 1e3)
                outs[name].append(eng.last_decision.values)
    finally:
        unwrap()
        for eng in live.values():
            eng.stop()
    diff = (float(np.max(np.abs(np.subtract(*[outs[k] for k in live])))) if len(live) == 2
            else float("nan"))
    return cpu, diff, {k: v * 1e6 / n_hops for k, v in acc.items()}


def _timed(fn, label: str, acc: dict[str, float]):
    def wrapped(*a, **k):
        t0 = time.thread_time()
        try:
            return fn(*a, **k)
        finally:
            acc[label] = acc.get(label, 0.0) + time.thread_time() - t0

    return wrapped


def _wrap_stages(acc: dict[str, float]):
    """Record the thread CPU of the engine's stage functions (this tree) into ``acc``."""
    import neurodeck.app.stream_units as su
    from neurodeck.acquisition import buffer, outlet
    from neurodeck.app import engine
    from neurodeck.decoders import online, onnx

    targets = [
        (engine.OnlineEngine, "_decide_window", "whole hop (ready -> published)"),
        (buffer.RingBuffer, "read_timestamps", "read: window timestamps"),
        (engine.OnlineEngine, "_tail", "read: new samples"),
        (engine.OnlineEngine, "_gap_reason", "gap check"),
        (su.UnitGuard, "apply", "unit check"),
        (engine.QualityScreen, "clean", "quality screen"),
        (online.DecoderStream, "push", "filter: anti-alias, decimate, band-pass"),
        (online.DecoderStream, "vectors", "features (covariance ... tangent vector)"),
        (online, "_whitened_oas", "features: of which whitened OAS"),
        (np.linalg, "eigh", "features: of which eigh"),
        (onnx.ModelBundle, "run_head", "onnxruntime head"),
        (outlet.DecisionOutlet, "push", "LSL push"),
    ]
    saved = []
    for obj, name, label in targets:
        raw = obj.__dict__[name] if isinstance(obj, type) else getattr(obj, name)
        saved.append((obj, name, raw))
        setattr(obj, name, _timed(getattr(obj, name), label, acc))

    def unwrap() -> None:
        for obj, name, raw in saved:
            setattr(obj, name, raw)

    return unwrap


def floor(path: Path, n_ch: int, srate: float, n_hops: int, engine_mod) -> list[list]:
    """Rows: (hops, part, p50 us, mean us) of the log map (tangent-space models) and the head,
    on one hop's own whitened matrix and features, back to back and paced."""
    from neurodeck.decoders import online, onnx

    seen: dict[str, object] = {}
    raw_w, raw_h = online._whitened_oas, onnx.ModelBundle.__dict__["run_head"]

    def grab_w(*a, **k):
        seen["M"] = out = raw_w(*a, **k)
        seen["ts"] = a[4]
        return out

    def grab_h(self, F):
        seen["F"], seen["bundle"] = np.array(F), self
        return raw_h(self, F)

    online._whitened_oas, onnx.ModelBundle.run_head = grab_w, grab_h
    try:
        run(path, n_ch, srate, 5, {"this tree": engine_mod}, stages=False)
    finally:
        online._whitened_oas, onnx.ModelBundle.run_head = raw_w, raw_h
    bundle, F = seen["bundle"], seen["F"]
    parts = []
    if "M" in seen:
        ts, M = seen["ts"], seen["M"]
        parts.append(("eigh + log map (one window)", lambda: ts.log_map(M)))
    parts.append(("onnxruntime head", lambda: bundle.run_head(F)))
    rows = []
    for paced in (False, True):
        t = np.zeros((n_hops, len(parts)))
        for i in range(n_hops):
            if paced:
                time.sleep(HOP_S)
            for j, (_, fn) in enumerate(parts):
                t0 = time.thread_time_ns()
                fn()
                t[i, j] = (time.thread_time_ns() - t0) / 1e3
        t = t[max(1, n_hops // 20):]
        label = "paced" if paced else "back to back"
        for j, (name, _) in enumerate(parts):
            rows.append([label, name, float(np.median(t[:, j])), float(t[:, j].mean())])
        tot = t.sum(axis=1)
        rows.append([label, "sum (the floor)", float(np.median(tot)), float(tot.mean())])
    return rows


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    p = u.parser(__doc__.splitlines()[0], reps=1)
    p.add_argument("--points", default=None, help="channels x Hz (default 64x512)")
    p.add_argument("--pipelines", default="ts-lr,psd-lda", help="comma separated")
    p.add_argument("--hops", type=int, default=None, help="hops per point (400; --quick 40)")
    p.add_argument("--against", default=None, metavar="REV",
                   help="also run the engine of git revision REV, hop by hop in this process")
    p.add_argument("--stages", action="store_true", help="CPU per stage of this tree's hop")
    p.add_argument("--paced", action="store_true",
                   help="also run paced: sleep one hop before each hop, as live (cold caches)")
    p.add_argument("--floor", action="store_true",
                   help="also time only the model's last step and head on one hop's own data")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    u.print_header("engine_hop", args)
    pts = [(64, 512.0)]
    if args.points:
        pts = [(int(c), float(r)) for c, r in (x.split("x") for x in args.points.split(","))]
    n_hops = args.hops or (40 if args.quick else 400)
    skip = n_hops // 20  # the first hops warm caches and onnxruntime
    import neurodeck.app.engine as this_engine
    import neurodeck.decoders.online as this_online

    rows, stage_rows, floor_rows = [], [], []
    limiter = threadpool_limits(1, user_api="blas")
    try:
        with tempfile.TemporaryDirectory() as tmpd:
            tmp = Path(tmpd)
            engines = {"this tree": types.SimpleNamespace(OnlineEngine=this_engine.OnlineEngine,
                                                          OnlineDecoder=this_online.OnlineDecoder)}
            if args.against:
                engines = {args.against: _revision_modules(args.against, tmp), **engines}
            for n_ch, sf in pts:
                for pl in args.pipelines.split(","):
                    path = u.synthetic_bundle(pl, n_ch, sf, tmp)
                    load = u.machine_info().get("loadavg", "")
                    cpu, diff, _ = run(path, n_ch, sf, n_hops, engines, stages=False)
                    c = {k: np.asarray(v[skip:]) for k, v in cpu.items()}
                    for name, v in c.items():
                        q = u.pct(v)
                        rows.append([f"{n_ch}x{int(sf)}", pl, name, q[0], q[2],
                                     (u.median(c[args.against] / v)
                                      if args.against and name != args.against else ""),
                                     (f"{diff:.1e}" if args.against else ""), load])
                    if args.floor:
                        floor_rows += [[f"{n_ch}x{int(sf)}", pl, *r]
                                       for r in floor(path, n_ch, sf, n_hops, engines["this tree"])]
                    if args.stages:
                        for paced in (False, True) if args.paced else (False,):
                            _, _, st = run(path, n_ch, sf, n_hops,
                                           {"this tree": engines["this tree"]}, stages=True,
                                           paced=paced)
                            whole = st.get("whole hop (ready -> published)", float("nan"))
                            for label, us in st.items():
                                stage_rows.append([f"{n_ch}x{int(sf)}", pl,
                                                   "paced" if paced else "back to back", label,
                                                   us, 100.0 * us / whole])
    finally:
        limiter.unregister()
    u.print_table(
        f"Engine hop (OnlineEngine._decide_window), thread CPU, ms ({n_hops} hops of "
        f"{HOP_S * 1e3:g} ms, 1 s window + 1 s padding, one BLAS thread)",
        ["stream", "pipeline", "code", "CPU p50", "CPU p99", "REV / this (paired median)",
         "max |d decision|", "loadavg"],
        rows,
        note="Both engines run on the same samples in this process, alternating which goes "
             "first; the ratio is the median over hops of REV's CPU / this tree's. The first 5 % "
             "of hops are left out. Target (issue 16): ready->published p50 <= 1 ms, p99 <= 3 ms "
             "at 64 ch @ 512 Hz (wall; see benchmarks.latency).",
    )
    if stage_rows:
        u.print_table(
            "Where a hop's CPU goes (this tree; us per hop, mean)",
            ["stream", "pipeline", "hops", "stage", "us / hop", "% of hop"], stage_rows, digits=1,
            note="'features: of which' rows are parts of the features row; the rest of the whole hop is the engine's own "
                 "bookkeeping (decision record, state, statistics) and the wrappers' clock reads. 'paced' "
                 "(--paced): the thread sleeps one hop before each hop, as the live engine does; "
                 "the same work then costs more CPU (caches, predictors and TLB gone cold).",
        )
    if floor_rows:
        u.print_table(
            "The floor: the model's last step and head alone, on one hop's own data (thread CPU, us)",
            ["stream", "pipeline", "hops", "part", "p50", "mean"], floor_rows, digits=0,
            note="No read, check, filter, covariance or push: what any engine must still compute "
                 "after the window's last sample. Target (issue 16): the whole of ready->published "
                 "p50 <= 1,000 us at 64 ch @ 512 Hz.",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
