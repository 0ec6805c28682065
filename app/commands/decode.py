"""`neurodeck decode`."""
from __future__ import annotations

import argparse

NAME = "decode"
HELP = "TODO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("neurodeck decode is not built yet")
