"""`neurodeck replay FILE`: play a recording as LSL streams."""
from __future__ import annotations

import argparse

from neurodeck.app import argtypes

NAME = "replay"
HELP = (
    "Replay a recording (XDF with all its streams; FIF, EDF/BDF, GDF, BrainVision) as LSL streams at "
    "real time or faster; annotations/markers become a marker stream at the right times."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="recording to replay (.xdf, .fif, .edf, .bdf, .gdf, .vhdr)")
    parser.add_argument(
        "--speed", type=argtypes.speed, default=1.0, metavar="X", help="playback speed factor (default 1 = real time)"
    )
    parser.add_argument("--loop", action="store_true", help="start over at the end until stopped (Ctrl-C)")
    parser.add_argument(
        "--name", default=None, metavar="NAME", type=argtypes.name,
        help="EEG stream name (markers go to NAME-markers; default: the file name); "
        "for XDF a prefix: streams become NAME-<original name>",
    )
    parser.add_argument(
        "--stream", action="append", default=None, metavar="NAME", type=argtypes.name,
        help="XDF only: replay only this stream (repeat for several; default: all streams)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys

    from tqdm import tqdm

    from neurodeck.acquisition.player import Player
    from neurodeck.app.errors import UserError

    if not args.speed > 0:
        raise UserError(f"--speed {args.speed!r} invalid; expected a positive number (1 = real time)")
    player = Player(args.file, speed=args.speed, loop=args.loop, name=args.name, streams=args.stream)
    print(
        f"replaying {args.file} ({player.duration_s:.1f} s at {args.speed:g}x{', looping' if args.loop else ''}) "
        f"as LSL streams: {', '.join(player.outlet_names)}",
        file=sys.stderr,
    )
    bar = tqdm(
        total=round(player.duration_s, 1), unit="s", disable=args.no_progress, file=sys.stderr,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]",
    )
    try:
        player.start()
        loops = 0
        while not player.wait(0.1):
            if player.loops_done != loops:
                loops = player.loops_done
                bar.reset(total=round(player.duration_s, 1))
                bar.set_postfix_str(f"loop {loops + 1}")
            bar.n = round(player.position_s, 1)
            bar.refresh()
        bar.n = round(player.position_s, 1)
        bar.refresh()
    finally:
        bar.close()
        player.stop()
    if player.error is not None:
        raise UserError(f"replay stopped by an error: {player.error}")
    return 0
