"""`neurodeck simulate`."""
from __future__ import annotations

import argparse

NAME = "simulate"
HELP = "TODO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("neurodeck simulate is not built yet")
