"""`neurodeck streams`."""
from __future__ import annotations

import argparse

NAME = "streams"
HELP = "TODO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("neurodeck streams is not built yet")
