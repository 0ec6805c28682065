"""`neurodeck record`."""
from __future__ import annotations

import argparse

NAME = "record"
HELP = "TODO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("neurodeck record is not built yet")
