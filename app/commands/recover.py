"""`neurodeck recover`."""
from __future__ import annotations

import argparse

NAME = "recover"
HELP = "TODO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("neurodeck recover is not built yet")
