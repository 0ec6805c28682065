"""`neurodeck record`: record LSL streams crash-safely to FIF (+ JSON sidecar)."""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time

from neurodeck.app import argtypes

NAME = "record"
HELP = (
    "Record LSL streams (EEG + markers, several at once) to a FIF file with a JSON sidecar. "
    "Data go to <out>.partial/ as they arrive (flushed every 0.5 s); Ctrl-C/SIGTERM or "
    "--duration stops and finalizes. After a crash, run `neurodeck recover <out>.partial`."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stream", "-s", action="append", default=[], metavar="NAME", type=argtypes.name,
                        help="name of an LSL stream to record (repeat for several streams)")
    parser.add_argument("--source-id", action="append", default=[], metavar="ID", type=argtypes.name,
                        help="record the LSL stream with this source id (repeatable; picks one of "
                        "several streams with the same name)")
    parser.add_argument("--out", "-o", required=True, metavar="FILE", type=argtypes.out_file,
                        help="output FIF file (e.g. run1_raw.fif; .fif is appended if missing)")
    parser.add_argument("--duration", type=argtypes.seconds, default=None, metavar="S",
                        help="stop after S seconds (default: until Ctrl-C / SIGTERM)")
    parser.add_argument("--format", choices=("fif", "edf", "brainvision"), default="fif",
                        help="also export the finished recording to EDF or BrainVision (default: fif only)")
    parser.add_argument("--flush-every", type=argtypes.seconds, default=0.5, metavar="S",
                        help="seconds between flushes to disk (default 0.5)")
    parser.add_argument("--resolve-timeout", type=argtypes.seconds, default=5.0, metavar="S",
                        help="seconds to wait for each stream to appear (default 5)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--xdf", action="store_true",
                        help="also write every stream to <out stem>.xdf (LabRecorder's format, "
                        "readable by pyxdf / EEGLAB / MNE users' XDF tools)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no status line per second")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from neurodeck.acquisition.finalize import (
        check_outputs_free,
        export_files,
        export_recording,
        sidecar_path,
    )
    from neurodeck.acquisition.recorder import Recorder
    from neurodeck.acquisition.streams import resolve_stream
    from neurodeck.app.errors import UserError

    if not args.stream and not args.source_id:
        raise UserError("no stream given; expected --stream NAME or --source-id ID (see `neurodeck streams`)")
    sources = [*args.stream, *(resolve_stream(source_id=sid, timeout=args.resolve_timeout, unique=True)
                               for sid in args.source_id)]
    rec = Recorder(sources, Path(args.out), flush_every=args.flush_every,
                   resolve_timeout=args.resolve_timeout, overwrite=args.overwrite, xdf=args.xdf)
    if args.format != "fif" and not args.overwrite:  # refused now, not after the recording
        check_outputs_free(dict(enumerate(export_files(rec.out, args.format))))
    try:
        rec.start()
    except KeyboardInterrupt:
        rec.abort()
        raise
    print(f"recording {', '.join(rec.counters)} -> {rec.out} (partial data in {rec.partial_dir})",
          flush=True)
    t0 = time.monotonic()
    try:
        next_status = t0 + 1.0
        while args.duration is None or time.monotonic() - t0 < args.duration:
            time.sleep(0.05)
            if rec.error is not None:
                break  # stop() below raises it, with the partial folder kept
            if time.monotonic() >= next_status:
                next_status += 1.0
                if not args.quiet:
                    print(rec.status.line(), flush=True)
    except KeyboardInterrupt:
        print("stopping...", file=sys.stderr, flush=True)
    # finish the drain and the file even if Ctrl-C / SIGTERM comes again
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread (tests calling run())
            signal.signal(sig, signal.SIG_IGN)
    path = rec.stop()
    counts = ", ".join(f"{name}: {c['written']}" for name, c in rec.counters.items())
    print(f"saved {path} ({counts}); sidecar {sidecar_path(path)}", flush=True)
    if args.format != "fif":
        exported = export_recording(path, args.format, overwrite=args.overwrite)
        print(f"exported {exported}", flush=True)
    return 0

