"""Acquisition layer: LSL in/out, ring buffer, simulator, player, recorder and file I/O.

No Qt and no decoders here (checked by import-linter contracts in pyproject.toml).
"""
from __future__ import annotations

from acquisition.errors import AcquisitionError

__all__ = ["AcquisitionError"]
