"""`neurodeck decode`: the headless online engine (the same one the GUI's Online page runs)."""
from __future__ import annotations

import argparse
import logging
import sys
import time

from neurodeck.app import argtypes

NAME = "decode"
HELP = (
    "decode a live EEG stream with a model bundle and publish decisions as an LSL stream "
    "(headless; the GUI's Online page runs the same engine)"
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=argtypes.in_dir, required=True, metavar="DIR",
                        help="model bundle directory (model.onnx + model.json) from `neurodeck train`")
    parser.add_argument("--stream", default=None, metavar="NAME", type=argtypes.name,
                        help="EEG stream name (default: the only stream of type EEG on the network)")
    parser.add_argument("--source-id", default=None, metavar="ID", type=argtypes.name,
                        help="source id of the EEG stream (picks one of several with the same name)")
    parser.add_argument("--out-name", default="neurodeck-decisions", metavar="NAME", type=argtypes.name,
                        help="name of the LSL decision stream (default: %(default)s)")
    parser.add_argument("--hop", type=argtypes.seconds, default=None, metavar="S",
                        help="seconds between decisions (default: 0.0625; a continuous bundle's "
                        "own hop, its filter's time step)")
    parser.add_argument("--duration", type=argtypes.seconds, default=None, metavar="S",
                        help="stop after S seconds (default: until Ctrl-C)")
    parser.add_argument("--timeout", type=argtypes.seconds, default=10.0, metavar="S",
                        help="seconds to wait for the EEG stream to appear (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no per-second status line")


def _status(engine, inlet) -> str:
    from neurodeck.acquisition.inlet import LEAD_REPORT_S

    st = engine.stats
    lat = st.percentiles("latency_s")
    last = engine.last_decision
    if last is None:
        out = "-"
    elif last.valid:
        out = " ".join(f"{lab}={v:.2f}" for lab, v in zip(engine.labels, last.values, strict=True))
    else:
        out = f"invalid ({last.reason})"
    c = inlet.counters
    if c.stamp_lead_s > LEAD_REPORT_S:
        out += f" | stamps {c.stamp_lead_s * 1e3:.1f} ms ahead of arrival (latency corrected)"
    return (
        f"[{engine.state.value}] stream {inlet.state.value}: {c.samples_received} samples, "
        f"{c.gaps} gaps | {st.decisions} decisions ({st.invalid} invalid, {st.skipped_hops} "
        f"skipped) | latency p50 {lat[50] * 1e3:.1f} ms p99 {lat[99] * 1e3:.1f} ms | {out}"
    )


def run(args: argparse.Namespace) -> int:
    from neurodeck.acquisition.inlet import Inlet
    from neurodeck.acquisition.streams import resolve_stream
    from neurodeck.app.engine import EngineState, OnlineEngine
    from neurodeck.app.errors import UserError
    from neurodeck.decoders.continuous import ContinuousDecoder, is_continuous_bundle
    from neurodeck.decoders.online import OnlineDecoder

    if not args.model.is_dir():
        raise UserError(f"model {str(args.model)!r} is not a directory; expected a bundle from "
                        "`neurodeck train --out DIR`")
    if args.hop is not None and args.hop <= 0:
        raise UserError(f"--hop {args.hop} invalid; expected > 0 seconds")
    if is_continuous_bundle(args.model):  # Kalman / DKF: state + posterior variances per hop
        decoder = ContinuousDecoder(args.model)
        _ = decoder.window_samples  # a bundle trained on a feature table says it cannot decode
        step = float(decoder.meta["hop_s"])
        if args.hop is not None and abs(args.hop - step) > 1e-6:
            raise UserError(f"--hop {args.hop} differs from the continuous model's hop {step} s "
                            "(its filter's time step); omit --hop or retrain with --hop "
                            f"{args.hop}")
        args.hop = step
    else:
        decoder = OnlineDecoder(args.model)
        args.hop = 0.0625 if args.hop is None else args.hop
    info = resolve_stream(name=args.stream, source_id=args.source_id,
                          stype=None if args.stream or args.source_id else "EEG",
                          timeout=args.timeout, unique=True)
    if info.name() == args.out_name:
        raise UserError(f"--out-name {args.out_name!r} is the name of the EEG stream; expected "
                        "another name for the decision stream")
    inlet = Inlet(info, buffer_seconds=max(10.0, 4 * decoder.window_samples / decoder.sfreq))
    inlet.start()
    engine = OnlineEngine(decoder, inlet, hop_s=args.hop, out_name=args.out_name)
    try:
        engine.start()
        print(
            f"neurodeck decode: model {decoder.bundle.meta.get('pipeline', '?')} "
            f"({', '.join(engine.labels)}) on stream {inlet.description.name!r}, "
            f"decisions on LSL stream {args.out_name!r} every {args.hop * 1e3:.0f} ms; "
            f"{engine.units.note}",
            flush=True,
        )
        if decoder.channel_match_ is not None:
            print(f"neurodeck decode: channels: {decoder.channel_match_.summary()}", flush=True)
        t_end = None if args.duration is None else time.monotonic() + args.duration
        while t_end is None or time.monotonic() < t_end:
            time.sleep(1.0 if t_end is None else max(0.0, min(1.0, t_end - time.monotonic())))
            if not args.quiet:
                print(_status(engine, inlet), flush=True)
            if engine.state is EngineState.ERROR:
                break
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()
        inlet.stop()
    if engine.error is not None:
        print(f"neurodeck decode: error: {engine.error}", file=sys.stderr)
        return 1
    print(f"neurodeck decode: stopped. {_status(engine, inlet)}", flush=True)
    return 0
