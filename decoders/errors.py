"""Exceptions of the decoders layer."""
from __future__ import annotations


class DecoderError(ValueError):
    """Base class of every error raised on purpose by :mod:`decoders`.

    Subclasses ``ValueError`` so scikit-learn style callers that expect ``ValueError`` for bad
    input keep working.
    """


class ModelBundleError(DecoderError):
    """A model bundle (ONNX + JSON sidecar) is missing, malformed or inconsistent."""


class ChannelMismatchError(DecoderError):
    """The data's channels / sampling rate differ from what the model was trained on."""
