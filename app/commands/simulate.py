"""`neurodeck simulate`: a synthetic motor-imagery EEG amplifier on LSL, with a self-check."""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time

from neurodeck.app import argtypes

NAME = "simulate"
HELP = (
    "Stream a synthetic motor-imagery EEG amplifier over LSL (EEG in microvolts + cue markers); "
    "--check reads the stream back and verifies that every sample arrived."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channels", type=argtypes.positive_int, default=64, metavar="N",
                        help="EEG channels with standard 10-20/10-10 labels (default 64)")
    parser.add_argument("--srate", type=argtypes.hertz, default=512.0, metavar="HZ",
                        help="sampling rate in Hz (default 512)")
    parser.add_argument("--duration", type=argtypes.seconds, default=None, metavar="S",
                        help="stop after S seconds of data (default: until Ctrl-C; 5 s with --check)")
    parser.add_argument("--name", default="neurodeck-sim",
                        help="EEG stream name; markers go to NAME-markers (default neurodeck-sim)")
    parser.add_argument("--mode", choices=("cued", "continuous"), default="cued",
                        help="cued Graz trials, or a hidden continuous 2-D velocity (NAME-truth stream)")
    parser.add_argument("--classes", default="left_hand,right_hand", metavar="A,B",
                        help="comma-separated imagery classes of the cue schedule "
                        "(left_hand, right_hand, feet, tongue, rest; default left_hand,right_hand)")
    parser.add_argument("--seed", type=argtypes.seed, default=None, metavar="N",
                        help="random seed (same seed = same samples)")
    parser.add_argument("--counter", action="store_true",
                        help="append a COUNTER channel holding the sample index (stream format double64)")
    parser.add_argument("--speed", type=argtypes.speed, default=1.0, metavar="X",
                        help="real-time factor (default 1)")
    parser.add_argument("--source-id", default=None, metavar="ID",
                        help="LSL source id (default: unique per run)")
    parser.add_argument("--check", action="store_true",
                        help="headless self-check: open an inlet on our own stream, count what arrives, "
                        "exit 0 if every sample arrived in order (implies --counter)")


def _config(args: argparse.Namespace):
    from neurodeck.acquisition.simulator import SimulatorConfig

    classes = tuple(c.strip() for c in str(args.classes).split(",") if c.strip())
    return SimulatorConfig(
        n_channels=args.channels,
        srate=args.srate,
        name=args.name,
        mode=args.mode,
        classes=classes,
        seed=args.seed,
        counter_channel=bool(args.counter or args.check),
    )


def _marker_text(marker: tuple[int, str] | None) -> str:
    from neurodeck.acquisition.markers import name_of

    if marker is None:
        return "-"
    return f"{marker[1]} ({name_of(marker[1])})"


def run(args: argparse.Namespace) -> int:
    from neurodeck.acquisition.simulator import Simulator
    from neurodeck.app.errors import UserError

    if args.duration is not None and not args.duration > 0:
        raise UserError(f"--duration {args.duration!r} invalid; expected > 0 seconds")
    cfg = _config(args)
    if args.check:
        return _check(cfg, args)
    sim = Simulator(cfg, speed=args.speed, source_id=args.source_id, duration=args.duration)
    until = "Ctrl-C" if args.duration is None else f"{args.duration:g} s of data or Ctrl-C"
    print(
        f"neurodeck simulate: streaming {cfg.name!r} ({len(cfg.labels)} EEG ch"
        f"{' + COUNTER' if cfg.counter_channel else ''} @ {cfg.srate:g} Hz, microvolts, "
        f"source_id {sim.source_id}) and {sim.marker_name!r}"
        f"{f' and {sim.truth_name!r}' if cfg.mode == 'continuous' else ''}; until {until}",
        flush=True,
    )
    t_start = time.monotonic()
    stopped_by_user = False
    try:
        sim.start()
        t_start = time.monotonic()
        tick = 1
        while sim.running:
            sim.wait(max(0.0, t_start + tick - time.monotonic()))
            if not sim.running:
                break
            extra = ""
            if cfg.mode == "continuous":
                vx, vy = sim.velocity()
                extra = f"  true velocity ({vx:+.2f}, {vy:+.2f})"
            print(f"  {tick:5d} s  samples {sim.samples_pushed:9d}  markers {sim.markers_pushed:5d}"
                  f"  last marker {_marker_text(sim.last_marker)}{extra}", flush=True)  # fmt: skip
            tick += 1
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM (app.cli turns it into KeyboardInterrupt)
        stopped_by_user = True
    finally:
        with _signals_ignored():
            sim.stop()
    if sim.error is not None:
        from neurodeck.acquisition.errors import AcquisitionError

        raise AcquisitionError(f"simulator failed: {sim.error}")
    how = "stopped" if stopped_by_user else "done"
    print(f"neurodeck simulate: {how}, {sim.samples_pushed} samples and {sim.markers_pushed} markers "
          f"pushed in {time.monotonic() - t_start:.1f} s", flush=True)  # fmt: skip
    return 0


@contextlib.contextmanager
def _signals_ignored():
    """Let a clean-up finish even if Ctrl-C / SIGTERM is pressed again (main thread only)."""
    saved = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved[sig] = signal.signal(sig, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to protect
        pass
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _check(cfg, args: argparse.Namespace) -> int:
    """Stream ``duration`` seconds, read them back through pylsl, and say whether all arrived."""
    import numpy as np
    import pylsl

    from neurodeck.acquisition.simulator import Simulator

    duration = 5.0 if args.duration is None else float(args.duration)
    sim = Simulator(cfg, speed=args.speed, source_id=args.source_id, wait_for_consumers=10.0,
                    duration=duration)  # fmt: skip
    expected = sim.n_total
    n_ch = len(cfg.stream_labels)
    print(f"neurodeck simulate --check: {cfg.name!r} {len(cfg.labels)} EEG ch + COUNTER @ "
          f"{cfg.srate:g} Hz for {duration:g} s (source_id {sim.source_id})", flush=True)  # fmt: skip
    problems: list[str] = []
    minlet = inlet = None
    try:
        sim.start()
        infos = pylsl.resolve_byprop("source_id", sim.source_id, 1, 5.0)
        minfos = pylsl.resolve_byprop("source_id", sim.source_id + "-markers", 1, 5.0)
        if not infos or not minfos:
            print("check FAILED: could not resolve our own stream on this machine "
                  "(is LSL networking blocked?)", flush=True)  # fmt: skip
            return 1
        minlet = pylsl.StreamInlet(minfos[0])
        minlet.open_stream(5.0)
        inlet = pylsl.StreamInlet(infos[0], max_buflen=max(60, int(duration) + 10))
        inlet.open_stream(5.0)
        got_info = inlet.info(5.0)
        data = np.empty((expected, n_ch), dtype=np.float64)
        stamps = np.empty(expected)
        markers: list[tuple[str, float]] = []
        n = n_first = 0
        first_arrival = last_arrival = None
        t0 = time.monotonic()
        deadline = t0 + duration / sim.speed + 15.0
        next_status = t0 + 1.0
        while n < expected and time.monotonic() < deadline:
            chunk, ts = inlet.pull_chunk(timeout=0.2, max_samples=min(4096, expected - n))
            if ts:
                now = time.monotonic()
                k = len(ts)
                if first_arrival is None:
                    first_arrival, n_first = now, k
                last_arrival = now
                data[n : n + k] = np.asarray(chunk, dtype=np.float64)
                stamps[n : n + k] = ts
                n += k
            mk, mts = minlet.pull_chunk(timeout=0.0)
            markers += [(m[0], t) for m, t in zip(mk, mts)]
            if time.monotonic() >= next_status:
                print(f"  {int(next_status - t0):5d} s  received {n:9d} samples  markers {len(markers):5d}",
                      flush=True)  # fmt: skip
                next_status += 1.0
        t_end = time.monotonic() + 1.0  # markers of the last chunk may trail the data
        while len(markers) < sim.markers_pushed and time.monotonic() < t_end:
            mk, mts = minlet.pull_chunk(timeout=0.1)
            markers += [(m[0], t) for m, t in zip(mk, mts)]
        extra, _ = inlet.pull_chunk(timeout=0.2)
    finally:
        with _signals_ignored():
            for stream_inlet in (inlet, minlet):
                if stream_inlet is not None:
                    stream_inlet.close_stream()
            sim.stop()
    if sim.error is not None:
        problems.append(f"simulator thread failed: {sim.error}")
    data, stamps = data[:n], stamps[:n]
    counter = data[:, -1]
    lost = expected - n
    if n and not np.array_equal(counter, np.arange(n, dtype=np.float64)):
        steps = np.diff(counter)
        problems.append(f"counter not contiguous: {int(np.sum(steps != 1))} jumps (lost/reordered samples)")
    if lost:
        problems.append(f"{lost} of {expected} samples missing")
    if extra:
        problems.append(f"{len(extra)} unexpected samples after the end")
    if got_info.channel_count() != n_ch:
        problems.append(f"stream has {got_info.channel_count()} channels, expected {n_ch}")
    if len(markers) != sim.markers_pushed:
        problems.append(f"markers: {len(markers)} received of {sim.markers_pushed} pushed")
    ts_rate = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 and stamps[-1] > stamps[0] else float("nan")
    wall = (last_arrival - first_arrival) if n and last_arrival and last_arrival > first_arrival else float("nan")
    eff_rate = (n - n_first) / wall / sim.speed if wall == wall and wall > 0 else float("nan")
    print(f"received {n}/{expected} samples x {n_ch} channels "
          f"({len(cfg.labels)} EEG + COUNTER, format {'double64' if cfg.counter_channel else 'float32'})",
          flush=True)  # fmt: skip
    print(f"rate: nominal {cfg.srate:g} Hz, from timestamps {ts_rate:.3f} Hz, "
          f"arrival {eff_rate:.1f} Hz{f' (speed {sim.speed:g})' if sim.speed != 1 else ''}", flush=True)
    print(f"counter: {'contiguous 0..' + str(n - 1) if n and not any('counter' in p for p in problems) else 'BROKEN'}"
          f", lost {lost}", flush=True)  # fmt: skip
    codes = ", ".join(m for m, _ in markers[:8]) + (" ..." if len(markers) > 8 else "")
    print(f"markers: {len(markers)}/{sim.markers_pushed} received ({codes})", flush=True)
    if problems:
        print("check FAILED: " + "; ".join(problems), flush=True)
        return 1
    print("check OK: every sample arrived, in order, with its markers", flush=True)
    sys.stdout.flush()
    return 0
