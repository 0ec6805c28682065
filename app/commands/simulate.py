"""`neurodeck simulate`: a synthetic motor-imagery EEG amplifier on LSL, with a self-check."""
from __future__ import annotations

import argparse
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
    from neurodeck.app.workflow.simulate_check import signals_ignored

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
        with signals_ignored():
            sim.stop()
    if sim.error is not None:
        from neurodeck.acquisition.errors import AcquisitionError

        raise AcquisitionError(f"simulator failed: {sim.error}")
    how = "stopped" if stopped_by_user else "done"
    print(f"neurodeck simulate: {how}, {sim.samples_pushed} samples and {sim.markers_pushed} markers "
          f"pushed in {time.monotonic() - t_start:.1f} s", flush=True)  # fmt: skip
    return 0


def _check(cfg, args: argparse.Namespace) -> int:
    """Print the self-check of :class:`neurodeck.app.workflow.simulate_check.SimulatorCheck`."""
    from neurodeck.app.workflow.simulate_check import SimulatorCheck

    duration = 5.0 if args.duration is None else float(args.duration)
    check = SimulatorCheck(cfg, duration=duration, speed=args.speed, source_id=args.source_id)
    print(f"neurodeck simulate --check: {cfg.name!r} {len(cfg.labels)} EEG ch + COUNTER @ "
          f"{cfg.srate:g} Hz for {duration:g} s (source_id {check.source_id})", flush=True)  # fmt: skip
    r = check.run(progress=lambda s, n, m: print(
        f"  {s:5d} s  received {n:9d} samples  markers {m:5d}", flush=True))
    if not r.resolved:
        print("check FAILED: could not resolve our own stream on this machine "
              "(is LSL networking blocked?)", flush=True)  # fmt: skip
        return 1
    n = r.received
    print(f"received {n}/{r.expected} samples x {r.n_channels} channels "
          f"({r.n_eeg} EEG + COUNTER, format {r.stream_format})", flush=True)
    print(f"rate: nominal {r.nominal_rate:g} Hz, from timestamps {r.timestamp_rate:.3f} Hz, "
          f"arrival {r.arrival_rate:.1f} Hz{f' (speed {r.speed:g})' if r.speed != 1 else ''}",
          flush=True)
    print(f"counter: {'contiguous 0..' + str(n - 1) if n and r.counter_ok else 'BROKEN'}"
          f", lost {r.lost}", flush=True)
    codes = ", ".join(m for m, _ in r.markers[:8]) + (" ..." if len(r.markers) > 8 else "")
    print(f"markers: {len(r.markers)}/{r.markers_pushed} received ({codes})", flush=True)
    if r.problems:
        print("check FAILED: " + "; ".join(r.problems), flush=True)
        return 1
    print("check OK: every sample arrived, in order, with its markers", flush=True)
    return 0
