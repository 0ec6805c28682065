"""neurodeck: a real-time motor-imagery brain-computer interface.

The installed package is ``neurodeck`` with three layers, kept in the repository's top-level
folders: ``neurodeck.acquisition`` (LSL in/out, buffer, simulator, player, recorder, file I/O),
``neurodeck.decoders`` (features, pipelines, DKF, ONNX bundles, evaluation) and ``neurodeck.app``
(workflow, CLI, online engine, GUI). See docs/tutorial.md for a scripted session.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neurodeck")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
