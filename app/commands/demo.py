"""`neurodeck demo`."""
from __future__ import annotations

import argparse

NAME = "demo"
HELP = "TODO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("neurodeck demo is not built yet")
