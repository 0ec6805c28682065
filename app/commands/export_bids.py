"""`neurodeck export-bids`: a session's recordings as a BIDS dataset (mne-bids)."""
from __future__ import annotations

import argparse

from neurodeck.app import argtypes

NAME = "export-bids"
HELP = ("write a session's recordings as a BIDS dataset (BrainVision + events.tsv from the "
        "markers + channels.tsv with units and bad channels), readable by mne-bids")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", metavar="SESSION_DIR", type=argtypes.in_dir,
                        help="a session folder (<root>/<subject>/<session>)")
    parser.add_argument("out", metavar="OUT_DIR", type=argtypes.out_dir,
                        help="BIDS root to write into (created)")
    parser.add_argument("--line-freq", type=float, default=50.0, metavar="HZ",
                        help="power-line frequency for eeg.json (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")


def run(args: argparse.Namespace) -> int:
    from neurodeck.app.bids import export_session

    for path in export_session(args.session, args.out, line_freq=args.line_freq,
                               overwrite=args.overwrite):
        print(f"wrote {path}", flush=True)
    return 0
