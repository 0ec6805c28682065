"""`neurodeck evaluate`."""
from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = "TODO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("neurodeck evaluate is not built yet")
