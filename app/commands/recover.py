"""`neurodeck recover`: finish a recording left behind by a crash."""
from __future__ import annotations

import argparse

from neurodeck.app import argtypes

NAME = "recover"
HELP = (
    "Turn a partial recording folder (<out>.partial/, left by a crashed or killed "
    "`neurodeck record`) into the finished FIF file + JSON sidecar; an incomplete last sample "
    "is dropped."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", type=argtypes.in_dir, help="the <out>.partial folder")
    parser.add_argument("--out", "-o", default=None, metavar="FILE", type=argtypes.out_file,
                        help="output FIF file (default: the path the recording was started with)")
    parser.add_argument("--format", choices=("fif", "edf", "brainvision"), default="fif",
                        help="also export to EDF or BrainVision")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from neurodeck.acquisition.finalize import export_recording, recover

    path = recover(Path(args.dir), Path(args.out) if args.out else None, overwrite=args.overwrite)
    print(f"recovered {path}", flush=True)
    if args.format != "fif":
        print(f"exported {export_recording(path, args.format, overwrite=args.overwrite)}", flush=True)
    return 0
