"""Long-run soak, accelerated: 1 h of 256 ch @ 2048 Hz through Inlet + engine (+ recorder).

A source *process* pushes EEGMMIDB data (tiled to N channels, resampled to F Hz) plus a
``COUNTER`` channel as fast as this machine allows, every chunk stamped on the *nominal* clock
(``t0 + k / F``), with one sequence-numbered marker per nominal second on a marker stream. It stays
at most ``--ahead`` nominal seconds ahead of what this process has received (back-pressure, so
liblsl's buffers never overflow and nothing is dropped by design). This process reads the streams
with :class:`acquisition.inlet.Inlet` / :class:`~acquisition.inlet.MarkerInlet` while an
:class:`app.engine.OnlineEngine` decodes the EEG with a trained psd-lda ONNX bundle
(``--record`` also runs the :class:`acquisition.recorder.Recorder`; ``benchmarks.finalize_memory``
measures what finalizing such a recording costs).

Measured, per 10 % slice of the nominal run: samples received, counter values missing or out of
order, markers, process RSS (sampled every ``--rss-every`` s), engine decisions and skipped hops
(the engine skips to the newest window when data arrive faster than it decides: expected when
accelerated), and the latency from the arrival of a window's last chunk in this process to its
decision (p50/p95/p99). Timestamps run ahead of the wall clock, so the engine's own
"timestamp -> decision" latency is meaningless here; ``benchmarks.latency`` measures that in real
time.

Run: ``python -m benchmarks.soak_long_run [--minutes 60] [--channels 256] [--rate 2048]``
(``--quick``: 4 nominal minutes of 64 ch @ 512 Hz at 20x real time; ``--speed`` paces the source,
0 = as fast as possible). Exit code 0; the verdict lines say
``lossless: yes|NO`` and ``memory flat: yes|NO``.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from benchmarks import _util as u

logger = logging.getLogger(__name__)


def rss_mb() -> float:
    """Resident set size of this process, MB (Linux /proc; NaN elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _source(name: str, n_ch: int, srate: float, chunk: int, n_total: int, ahead: int,
            ready, consumed, pushed, markers_pushed, fmt: str, speed: float) -> None:
    """Subprocess: push n_total samples as fast as allowed, stamped on the nominal clock."""
    from neurodeck.acquisition.outlet import DataOutlet, MarkerOutlet, local_clock, make_stream_info

    base, labs, _, _ = u.eeg_data(n_ch, srate, seconds=10.0)
    n_base = base.shape[1]
    dtype = np.float32 if fmt == "float32" else np.float64
    info = make_stream_info(name, "EEG", [*labs, "COUNTER"], srate, fmt=fmt, source_id=name,
                            units=["microvolts"] * n_ch + ["samples"],
                            ch_types=["EEG"] * n_ch + ["MISC"])
    out = DataOutlet(info, chunk_size=chunk)
    mout = MarkerOutlet(name + "-markers", source_id=name + "-markers")
    block = np.empty((chunk, n_ch + 1), dtype=dtype)
    tiled = np.ascontiguousarray(np.concatenate([base, base[:, :chunk]], axis=1).T.astype(dtype))
    ready.set()
    out.wait_for_consumers(30.0)
    mout.wait_for_consumers(30.0)
    time.sleep(0.5)
    t0 = local_clock() + 1.0
    per_s = int(round(srate))
    i = 0
    n_markers = 0
    w0 = time.perf_counter()
    while i < n_total:
        while i - consumed.value > ahead:
            time.sleep(0.0005)
        if speed > 0:  # paced at speed x real time
            delay = w0 + i / srate / speed - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        n = min(chunk, n_total - i)
        j = i % n_base
        block[:n, :n_ch] = tiled[j:j + n, :n_ch]
        block[:n, n_ch] = np.arange(i, i + n)
        out.push_chunk(block[:n], t0 + (i + n - 1) / srate)
        first_marker = -(-i // per_s)  # markers at samples 0, per_s, 2 per_s, ... in this chunk
        for m in range(first_marker, (i + n - 1) // per_s + 1):
            mout.push(str(m), t0 + m)
            n_markers += 1
        i += n
        pushed.value = i
        markers_pushed.value = n_markers
    time.sleep(2.0)  # let liblsl deliver the tail before the outlets go away


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    from neurodeck.acquisition.inlet import Inlet, MarkerInlet
    from neurodeck.acquisition.streams import resolve_stream
    from neurodeck.app.engine import OnlineEngine

    p = u.parser(__doc__.splitlines()[0], reps=1)
    p.add_argument("--minutes", type=float, default=None, help="nominal run length (60; quick 3)")
    p.add_argument("--channels", type=int, default=None, help="EEG channels (256; quick 64)")
    p.add_argument("--rate", type=float, default=None, help="Hz (2048; quick 512)")
    p.add_argument("--hop", type=float, default=0.0625, help="engine hop, s")
    p.add_argument("--speed", type=float, default=None,
                   help="push at this many x real time (0 = as fast as possible; quick 20)")
    p.add_argument("--ahead", type=float, default=2.0,
                   help="most nominal seconds the source may run ahead of what was received")
    p.add_argument("--rss-every", type=float, default=0.5, help="RSS sampling period, s")
    p.add_argument("--record", action="store_true",
                   help="also record with the Recorder")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    u.print_header("soak_long_run", args)
    minutes = args.minutes or (4.0 if args.quick else 60.0)
    speed = args.speed if args.speed is not None else (20.0 if args.quick else 0.0)
    n_ch = args.channels or (64 if args.quick else 256)
    srate = args.rate or (512.0 if args.quick else 2048.0)
    chunk = max(1, int(round(srate / 64)))
    n_total = int(round(minutes * 60 * srate))
    fmt = "float32" if n_total < 2**24 else "double64"  # the counter must stay exact
    limiter = threadpool_limits(1, user_api="blas")

    name = f"ndsoak-{uuid.uuid4().hex[:10]}"
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    consumed, pushed, m_pushed = ctx.Value("q", 0), ctx.Value("q", 0), ctx.Value("q", 0)
    proc = ctx.Process(target=_source, daemon=True,
                       args=(name, n_ch, srate, chunk, n_total, int(args.ahead * srate), ready,
                             consumed, pushed, m_pushed, fmt, speed))

    # per-decision arrays, preallocated (no growth during the run)
    hop = max(1, int(round(args.hop * srate)))
    cap = n_total // hop + 2
    dec_index = np.zeros(cap, dtype=np.int64)
    dec_latency = np.full(cap, np.nan)
    dec_valid = np.zeros(cap, dtype=bool)
    n_dec = [0]
    ring = 8192  # arrival (samples received, local clock) of the most recent chunks
    arr_end = np.zeros(ring, dtype=np.int64)
    arr_t = np.zeros(ring)
    n_arr = [0]
    state = {"last": -1, "lost": 0, "reordered": 0, "received": 0}
    markers = {"n": 0, "last": -1, "lost": 0, "reordered": 0}
    rss_samples: list[tuple[int, float]] = []  # (samples received, RSS MB): ~2 per second

    try:
        with tempfile.TemporaryDirectory() as tmp:
            t_train = time.perf_counter()
            dec, _, _ = u.train_bundle("psd-lda", n_ch, srate, Path(tmp))
            t_train = time.perf_counter() - t_train
            proc.start()
            if not ready.wait(300):
                raise RuntimeError("source process did not start")
            info = resolve_stream(source_id=name, timeout=20)
            minfo = resolve_stream(source_id=name + "-markers", timeout=20)
            inlet = Inlet(info, buffer_seconds=30.0)

            def on_chunk(data: np.ndarray, ts: np.ndarray) -> None:
                from neurodeck.acquisition.outlet import local_clock

                now = local_clock()
                c = data[:, -1].astype(np.int64)
                d = np.diff(c, prepend=state["last"])
                state["lost"] += int(np.sum(np.maximum(d - 1, 0)))
                state["reordered"] += int(np.sum(d < 1))
                state["last"] = int(c[-1])
                state["received"] += len(c)
                k = n_arr[0] % ring
                arr_end[k], arr_t[k] = state["received"], now
                n_arr[0] += 1
                consumed.value = state["received"]

            def on_marker(ts: float, label: str) -> None:
                k = int(label)
                markers["lost"] += max(k - markers["last"] - 1, 0)
                markers["reordered"] += int(k <= markers["last"])
                markers["last"] = max(k, markers["last"])
                markers["n"] += 1

            def on_decision(d) -> None:
                i = n_dec[0]
                if i >= cap:
                    return
                # arrival of the chunk that completed this window (its end index <= received)
                kk = n_arr[0]
                pos = np.arange(max(0, kk - ring + 64), kk) % ring
                j = int(np.searchsorted(arr_end[pos], d.index))
                t_arr = arr_t[pos[j]] if j < len(pos) else float("nan")
                dec_index[i] = d.index
                dec_latency[i] = d.published_at - t_arr
                dec_valid[i] = d.valid
                n_dec[0] = i + 1

            inlet.add_chunk_listener(on_chunk)
            minlet = MarkerInlet(minfo)
            minlet.add_marker_listener(on_marker)
            rec = None
            if args.record:
                from neurodeck.acquisition.recorder import Recorder

                rec = Recorder([info, minfo], Path(tmp) / "soak_raw.fif").start()
            minlet.start()
            engine = OnlineEngine(dec, inlet, hop_s=args.hop, out_name=None, keep_stats=0)
            engine.add_decision_listener(on_decision)
            stop_sampler = threading.Event()

            def sampler() -> None:
                while not stop_sampler.is_set():
                    rss_samples.append((state["received"], rss_mb()))
                    stop_sampler.wait(args.rss_every)

            th = threading.Thread(target=sampler, daemon=True)
            cpu0, wall0 = u.cpu_seconds(), time.perf_counter()
            engine.start()
            th.start()
            last_report = time.monotonic()
            while proc.is_alive() and state["received"] < n_total:
                time.sleep(0.2)
                if time.monotonic() - last_report >= 30:
                    last_report = time.monotonic()
                    print(f"  {time.strftime('%H:%M:%S')}: {state['received'] / n_total:6.1%} "
                          f"({state['received']:,} samples), lost {state['lost']}, "
                          f"RSS {rss_mb():.0f} MB", flush=True)
            deadline = time.monotonic() + 10
            while (state["received"] < pushed.value or markers["n"] < m_pushed.value) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            wall, cpu = time.perf_counter() - wall0, u.cpu_seconds() - cpu0
            stop_sampler.set()
            th.join(2)
            engine.stop()
            rec_path = rec.stop() if rec is not None else None
            inlet.stop()
            minlet.stop()
            proc.join(10)
            rec_note = ""
            if rec_path is not None:
                import json

                side = json.loads(rec_path.with_name("soak_raw.json").read_text())
                rec_note = (f"recorder: {side['n_times']:,} samples, {len(side['markers'])} "
                            "markers in the file")
    finally:
        limiter.unregister()
        if proc.is_alive():
            proc.terminate()

    n = n_dec[0]
    idx, lat, valid = dec_index[:n], dec_latency[:n], dec_valid[:n]
    rss = np.array(rss_samples) if rss_samples else np.zeros((0, 2))
    rows = []
    for s in range(10):
        lo, hi = s * n_total / 10, (s + 1) * n_total / 10
        m = (idx > lo) & (idx <= hi)
        r = rss[(rss[:, 0] > lo) & (rss[:, 0] <= hi), 1] if len(rss) else np.zeros(0)
        p50, p95, p99 = u.pct(lat[m & valid] * 1e3)
        rows.append([f"{10 * s}-{10 * (s + 1)} %", int(m.sum()), int((m & ~valid).sum()),
                     p50, p95, p99, float(r.max()) if r.size else float("nan")])
    u.print_table(
        f"Soak (accelerated): {n_ch} ch @ {int(srate)} Hz, {minutes:g} nominal min, per 10 % slice",
        ["slice", "decisions", "invalid", "latency p50 ms", "p95 ms", "p99 ms", "RSS max MB"],
        rows,
        note="latency = decision published - arrival in this process of the chunk that "
             "completed the window (queueing + read + quality check + decode).",
    )
    slice_rss = np.array([r[-1] for r in rows], dtype=float)
    growth = float(np.nanmax(slice_rss[1:]) - slice_rss[0]) if np.isfinite(slice_rss).any() else float("nan")
    c = inlet.counters
    u.print_table(
        "Soak totals",
        ["stream", "nominal min", "wall s", "x real time (asked)", "pushed", "received", "counter gaps",
         "reordered", "markers pushed", "markers received", "markers lost", "ts gaps", "overruns",
         "decisions", "skipped hops", "RSS growth MB", "CPU %", "train s"],
        [[f"{n_ch}x{int(srate)}", minutes, wall,
          f"{minutes * 60 / wall:.1f} ({'max' if speed <= 0 else f'{speed:g}'})", pushed.value,
          state["received"], state["lost"], state["reordered"], m_pushed.value, markers["n"],
          markers["lost"], c.gaps, c.overruns, n, engine.stats.skipped_hops, growth,
          100 * cpu / wall, t_train]],
        note="RSS growth = largest per-slice RSS after the first slice minus the first slice's. "
             + rec_note,
    )
    lossless = (state["lost"] == 0 and state["reordered"] == 0 and state["received"] == n_total
                and pushed.value == n_total and markers["n"] == m_pushed.value
                and markers["lost"] == 0 and markers["reordered"] == 0)
    flat = bool(np.isfinite(growth) and growth <= max(30.0, 0.05 * slice_rss[0]))
    print("lossless: " + ("yes" if lossless else "NO"))
    print("memory flat: " + ("yes" if flat else "NO") + f" (growth {growth:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
