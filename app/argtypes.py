"""Argument types of the command line: check a value as argparse reads it.

Each function takes the text of one argument and returns the converted value, or raises
:class:`argparse.ArgumentTypeError` with a message that quotes the value and says what was
expected. argparse then exits with status 2 and one line (see ``cli.build_parser``), before the
command does any work: a bad ``--out`` is refused before an hour of training, not after it.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

#: Upper bound of any duration or time argument, seconds (a week): larger is a typo.
MAX_SECONDS = 7 * 24 * 3600.0


def _float(text: str, expected: str, ok) -> float:
    """``float(text)``, finite and ``ok(value)``; else an error quoting ``text`` and ``expected``."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected {expected}") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"{text!r} invalid; expected {expected}")
    return value


def _int(text: str, expected: str, ok) -> int:
    """``int(text)`` with ``ok(value)``; else an error quoting ``text`` and ``expected``."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected {expected}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r} invalid; expected {expected}")
    return value


def seconds(text: str) -> float:
    """A duration in seconds: finite, > 0, at most :data:`MAX_SECONDS`."""
    return _float(text, f"seconds > 0 and <= {MAX_SECONDS:g}", lambda v: 0 < v <= MAX_SECONDS)


def seconds_or_zero(text: str) -> float:
    """A duration in seconds that may be 0: finite, >= 0, at most :data:`MAX_SECONDS`."""
    return _float(text, f"seconds >= 0 and <= {MAX_SECONDS:g}", lambda v: 0 <= v <= MAX_SECONDS)


def offset_seconds(text: str) -> float:
    """A time relative to an event (may be negative), |t| <= 60 s."""
    return _float(text, "seconds between -60 and 60", lambda v: -60 <= v <= 60)


def pad_seconds(text: str) -> float:
    """Filter padding before a window: 0 to 60 s."""
    return _float(text, "seconds between 0 and 60", lambda v: 0 <= v <= 60)


def hertz(text: str) -> float:
    """A frequency or rate in Hz: finite, > 0, at most 1 MHz."""
    return _float(text, "Hz > 0 and <= 1e6", lambda v: 0 < v <= 1e6)


def speed(text: str) -> float:
    """A replay speed factor: > 0, at most 1000."""
    return _float(text, "a factor > 0 and <= 1000", lambda v: 0 < v <= 1000)


def positive_int(text: str) -> int:
    """An integer >= 1 (at most 1e6)."""
    return _int(text, "an integer >= 1 and <= 1000000", lambda v: 1 <= v <= 1_000_000)


def folds(text: str) -> int:
    """Cross-validation folds: 0 (none) or 2..100."""
    return _int(text, "0 (no cross-validation) or 2 to 100 folds", lambda v: v == 0 or 2 <= v <= 100)


def cv_folds(text: str) -> int:
    """Cross-validation folds where a score is required: 2..100."""
    return _int(text, "2 to 100 folds", lambda v: 2 <= v <= 100)


def seed(text: str) -> int:
    """A random seed: 0 <= n < 2**32 (what numpy accepts)."""
    return _int(text, "an integer seed from 0 to 4294967295", lambda v: 0 <= v < 2**32)


def name(text: str) -> str:
    """A non-empty name (stream, pipeline) without control characters."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is empty; expected a name")
    if any(ord(c) < 32 for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} holds control characters; expected a plain name")
    return text


def name_list(text: str) -> str:
    """Comma-separated names, at least one, none empty (``"a,b"``; not ``""`` or ``",,"``)."""
    items = [t.strip() for t in text.split(",")]
    if not any(items) or not all(items):
        raise argparse.ArgumentTypeError(f"{text!r} invalid; expected names separated by commas, none empty")
    return text


def dataset(text: str) -> str:
    """One dataset: recordings joined by commas, at least one, none empty."""
    parts = text.split(",")
    if not text.strip() or not all(p.strip() for p in parts):
        raise argparse.ArgumentTypeError(
            f"{text!r} invalid; expected a recording, or recordings joined by commas (a.edf,b.edf)")
    return text


def _path(text: str, what: str) -> Path:
    if not text.strip() or text != text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} invalid; expected {what} (a non-empty path)")
    if "\x00" in text:
        raise argparse.ArgumentTypeError(f"{text!r} holds a NUL character; expected {what}")
    return Path(text)


def _writable_parent(path: Path, text: str, what: str) -> None:
    """The nearest existing folder above ``path`` must be a writable folder (the rest is created)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r} invalid: {str(parent)!r} is not a folder; expected {what} in a folder")
    if not _can_write_in(parent):
        raise argparse.ArgumentTypeError(
            f"{text!r} invalid: folder {str(parent)!r} is not writable; expected {what} in a writable folder")


def _can_write_in(folder: Path) -> bool:
    """Create and delete a probe file (permissions alone miss read-only mounts and root)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def out_file(text: str) -> Path:
    """An output file to create: a non-empty path, not a folder, below a writable folder."""
    path = _path(text, "an output file")
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; expected an output file name")
    _writable_parent(path, text, "an output file")
    return path


def out_dir(text: str) -> Path:
    """An output folder: a non-empty path that is not a file, writable or below a writable folder."""
    path = _path(text, "an output folder")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; expected a folder to write into")
    if path.is_dir():
        if not _can_write_in(path):
            raise argparse.ArgumentTypeError(f"{text!r} is not writable; expected a writable folder")
    else:
        _writable_parent(path, text, "an output folder")
    return path


def in_dir(text: str) -> Path:
    """An existing folder to read."""
    path = _path(text, "an existing folder")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder; expected an existing folder")
    return path


def in_file(text: str) -> Path:
    """An existing file to read."""
    path = _path(text, "an existing file")
    if not path.is_file() or text.endswith(("/", os.sep)):
        what = "a folder" if path.is_dir() else "not found"
        raise argparse.ArgumentTypeError(f"{text!r} is {what}; expected an existing file")
    return path


def n_jobs(text: str) -> int:
    """Parallel jobs: -1 (every core) or 1..1024."""
    return _int(text, "-1 (every core) or 1 to 1024 jobs", lambda v: v == -1 or 1 <= v <= 1024)
