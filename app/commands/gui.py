"""`neurodeck gui`."""
from __future__ import annotations

import argparse

NAME = "gui"
HELP = "TODO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("neurodeck gui is not built yet")
