"""Exceptions of the acquisition layer.

liblsl errors and file-format errors are turned into these so callers (CLI, GUI) can show
one clear line naming the bad value and what was expected.
"""
from __future__ import annotations


class AcquisitionError(Exception):
    """Base class of every error raised on purpose by :mod:`acquisition`."""


class StreamNotFoundError(AcquisitionError):
    """No LSL stream matched the requested name / type / source id."""


class RecordingError(AcquisitionError):
    """A recording file could not be read, written or recovered."""


class AmbiguousStreamError(AcquisitionError):
    """Several LSL streams match where the user asked for one (same name, or "the EEG stream")."""
