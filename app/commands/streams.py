"""`neurodeck streams`: list the LSL streams on the network."""
from __future__ import annotations

import argparse
import json

from neurodeck.app import argtypes

NAME = "streams"
HELP = "List the LSL streams on the network (name, type, channels, rate, format, source id, host)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=argtypes.seconds, default=1.0, metavar="S",
        help="seconds to wait for streams to answer (default 1.0)",
    )
    parser.add_argument(
        "--json", action="store_true",
        help="print a JSON list (one object per stream, with all labels and units) instead of a table",
    )


def _rate(srate: float) -> str:
    return "irregular" if srate == 0 else f"{srate:g} Hz"


def _first_labels(labels, k: int = 6) -> str:
    head = ", ".join(labels[:k])
    return head + (f", ... (+{len(labels) - k})" if len(labels) > k else "")


def format_table(descs) -> str:
    """Text table of :class:`acquisition.streams.StreamDescription` objects."""
    header = ("NAME", "TYPE", "CH", "RATE", "FORMAT", "SOURCE ID", "HOST", "LABELS")
    rows = [
        (d.name, d.type, str(d.n_channels), _rate(d.srate), d.channel_format, d.source_id,
         d.hostname, _first_labels(d.labels))
        for d in descs
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from neurodeck.acquisition.streams import list_streams
    from neurodeck.app.errors import UserError

    if not args.timeout > 0:
        raise UserError(f"--timeout {args.timeout!r} invalid; expected a positive number of seconds")
    descs = list_streams(timeout=args.timeout)
    if args.json:
        print(json.dumps([asdict(d) for d in descs], indent=2))
        return 0
    if not descs:
        print(f"no LSL streams found within {args.timeout:g} s")
        return 0
    print(format_table(descs))
    return 0
