"""Decoders layer: features, feature selection, classifiers, DKF, ONNX and evaluation.

Pure numpy / scipy / scikit-learn / pyriemann: no Qt and no LSL (import-linter contracts).
"""
from __future__ import annotations

from neurodeck.decoders.errors import DecoderError

__all__ = ["DecoderError"]
