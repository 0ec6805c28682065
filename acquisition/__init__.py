"""Acquisition layer: LSL in/out, ring buffer, simulator, player, recorder and file I/O.

No Qt and no decoders here (checked by import-linter contracts in pyproject.toml).
"""
from __future__ import annotations

import os
from pathlib import Path

# liblsl reads its configuration when pylsl is first imported: point it at ours (quiet log) unless
# the user chose a file of their own.
os.environ.setdefault("LSLAPICFG", str(Path(__file__).with_name("lsl_api.cfg")))

from neurodeck.acquisition.errors import AcquisitionError  # noqa: E402

__all__ = ["AcquisitionError"]
