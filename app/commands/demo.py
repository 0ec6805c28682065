"""`neurodeck demo`: calibration -> training -> online feedback on the embedded recording."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from neurodeck.app import argtypes

NAME = "demo"
HELP = (
    "run a whole motor-imagery session on the embedded real recording (PhysioNet EEGMMIDB S001, "
    "no amplifier needed): replay over LSL, record a calibration of 10 trials per class, "
    "fine-tune the shipped population model on it, decode online, print the scores"
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speed", type=argtypes.speed, default=8.0,
                        help="replay speed in multiples of real time (default: %(default)s)")
    parser.add_argument("--pipelines", default="ts-lr",
                        help="pipelines cross-validated from scratch on the calibration trials, for "
                        "comparison with the fine-tuned population model, comma separated (default: %(default)s; "
                        "e.g. ts-lr,fgmdm,csp-lda)")
    parser.add_argument("--root", type=Path, default=None, metavar="DIR",
                        help="session root folder (default: a new temporary folder)")
    parser.add_argument("--headless", action="store_true",
                        help="never open a window, even when a display is available")
    parser.add_argument("--json", type=argtypes.out_file, default=None, metavar="OUT",
                        help="write the scores as JSON to OUT")


def run(args: argparse.Namespace) -> int:
    from neurodeck.app.display import display_name
    from neurodeck.app.errors import UserError

    if not args.speed > 0:
        raise UserError(f"--speed {args.speed} invalid; expected > 0")
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    from neurodeck.decoders.pipelines import PIPELINES

    unknown = [p for p in pipelines if p not in PIPELINES]
    if unknown:
        raise UserError(f"unknown pipelines {unknown}; expected some of {sorted(PIPELINES)}")
    root = args.root or Path(tempfile.mkdtemp(prefix="neurodeck-demo-"))
    if not args.headless and display_name() is not None:
        from neurodeck.app.ui.demo_window import run_demo_window

        return run_demo_window(root, speed=args.speed, pipelines=pipelines, json_out=args.json)
    if not args.headless:
        print("neurodeck demo: no display found, running headless (the GUI needs a display; "
              "see README). Scores are printed at the end.", flush=True)
    from neurodeck.app.demo import demo_ok, run_demo, summary_text

    result = run_demo(root, speed=args.speed, pipelines=pipelines,
                      report=lambda line: print(line, flush=True))
    print(summary_text(result), end="")
    if args.json is not None:
        import dataclasses

        d = dataclasses.asdict(result)
        args.json.write_text(json.dumps(d, indent=2, default=str))
    ok = demo_ok(result)
    if not ok:
        print("neurodeck demo: online decoding did not beat chance or decisions were lost",
              file=sys.stderr)
    return 0 if ok else 1
