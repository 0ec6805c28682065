"""One module per ``neurodeck`` subcommand.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Modules import heavy dependencies (mne, Qt, onnxruntime) inside ``run`` so ``--help`` stays fast.
"""
from __future__ import annotations

COMMAND_MODULES = (
    "gui",
    "demo",
    "streams",
    "simulate",
    "replay",
    "record",
    "recover",
    "train",
    "evaluate",
    "decode",
    "export_bids",
)
