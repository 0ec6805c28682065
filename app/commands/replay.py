"""`neurodeck replay`."""
from __future__ import annotations

import argparse

NAME = "replay"
HELP = "TODO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("neurodeck replay is not built yet")
