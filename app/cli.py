"""``neurodeck`` command-line entry point.

Every subcommand lives in :mod:`app.commands`; this module only builds the parser, turns
SIGTERM into a clean stop and maps our exceptions to a one-line message and a non-zero exit.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys

from neurodeck.acquisition.errors import AcquisitionError
from neurodeck.app.commands import COMMAND_MODULES
from neurodeck.app.errors import UserError
from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger("neurodeck")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (exit 2): the value, what was expected, where to look."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from neurodeck.app import __version__

    parser = _Parser(
        prog="neurodeck",
        description="Real-time motor-imagery BCI: acquire over LSL, calibrate, train, decode, replay. "
        "Without a subcommand the GUI opens.",
    )
    parser.add_argument("--version", action="version", version=f"neurodeck {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        mod = importlib.import_module(f"neurodeck.app.commands.{name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _sigterm_to_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def _default_to_gui(argv: list[str]) -> list[str]:
    """``neurodeck [-v] [gui options]`` means ``neurodeck [-v] gui [gui options]``."""
    if any(a.replace("-", "_") in COMMAND_MODULES or a in ("-h", "--help", "--version")
           for a in argv):
        return argv
    top = [a for a in argv if a == "--verbose" or (a.startswith("-v") and set(a[1:]) == {"v"})]
    return [*top, "gui", *[a for a in argv if a not in top]]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = _default_to_gui(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    except ValueError:  # not in the main thread (e.g. called from a test worker)
        pass
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("neurodeck: stopped", file=sys.stderr)
        return 0
    except (UserError, AcquisitionError, DecoderError, FileNotFoundError) as exc:
        print(f"neurodeck {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
