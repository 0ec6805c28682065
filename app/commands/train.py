"""`neurodeck train`."""
from __future__ import annotations

import argparse

NAME = "train"
HELP = "TODO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("neurodeck train is not built yet")
