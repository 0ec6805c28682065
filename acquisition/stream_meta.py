"""Stream descriptions as the recorder stores them: plain JSON dicts, and the on-disk dtypes.

:func:`describe` turns a :class:`~neurodeck.acquisition.streams.StreamDescription` (or a dict)
into the dict written to a partial folder's ``meta.json`` and to a recording's sidecar.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from neurodeck.acquisition.errors import RecordingError

logger = logging.getLogger(__name__)

#: numpy dtype used on disk for each LSL channel format (numeric streams).
_DISK_DTYPES = {
    "float32": "<f4",
    "double64": "<f8",
    "int32": "<i4",
    "int16": "<i2",
    "int8": "<i1",
    "int64": "<i8",
}
_MARKER_INT_FORMATS = ("int32", "int16", "int8", "int64")


def _channel_types_from_info(info: Any, n_channels: int) -> list[str]:
    """Per-channel ``<type>`` entries of a full ``pylsl.StreamInfo`` desc ("" where absent)."""
    types: list[str] = []
    try:
        ch = info.desc().child("channels").child("channel")
        while not ch.empty() and len(types) < n_channels:
            types.append(ch.child_value("type") or "")
            ch = ch.next_sibling("channel")
    except Exception:  # a foreign StreamInfo-like object without a desc
        types = []
    if len(types) != n_channels:
        types = [""] * n_channels
    return types


def _replay_speed_from_info(info: Any) -> float:
    """``desc/acquisition/replay_speed`` of a full ``pylsl.StreamInfo`` (1.0 when absent)."""
    try:
        text = info.desc().child("acquisition").child_value("replay_speed")
    except Exception:  # a foreign StreamInfo-like object without a desc
        return 1.0
    try:
        speed = float(text)
    except (TypeError, ValueError):
        return 1.0
    return speed if np.isfinite(speed) and speed > 0 else 1.0


def describe(description: Any, info: Any = None) -> dict:
    """Plain-JSON dict of a stream description (``StreamDescription`` or dict).

    Parameters
    ----------
    description : acquisition.streams.StreamDescription or dict
        Name, type, n_channels, srate, channel_format, source_id, hostname, uid, labels, units,
        is_marker.
    info : pylsl.StreamInfo, optional
        Full info (with desc) to read per-channel types from.
    """
    if dataclasses.is_dataclass(description):
        d = dataclasses.asdict(description)
        d["is_marker"] = bool(getattr(description, "is_marker", False))
    elif isinstance(description, dict):
        d = dict(description)
    else:
        d = {k: getattr(description, k) for k in (
            "name", "type", "n_channels", "srate", "channel_format", "source_id", "hostname",
            "uid", "labels", "units", "is_marker") if hasattr(description, k)}
    n = int(d.get("n_channels") or len(d.get("labels") or []) or 1)
    out = {
        "name": str(d.get("name", "")),
        "type": str(d.get("type", "")),
        "n_channels": n,
        "srate": float(d.get("srate") or 0.0),
        "channel_format": str(d.get("channel_format", "float32")),
        "source_id": str(d.get("source_id", "") or ""),
        "hostname": str(d.get("hostname", "") or ""),
        "uid": str(d.get("uid", "") or ""),
        "labels": [str(x) for x in (d.get("labels") or [])] or [f"ch{i + 1}" for i in range(n)],
        "units": [str(x or "") for x in (d.get("units") or [])] or [""] * n,
        "is_marker": bool(d.get("is_marker", False)),
    }
    types = d.get("types") or d.get("ch_types")
    if not types and info is not None:
        types = _channel_types_from_info(info, n)
    out["types"] = [str(t or "") for t in (types or [])] or [""] * n
    speed = d.get("replay_speed")
    out["replay_speed"] = float(speed) if speed else (
        _replay_speed_from_info(info) if info is not None else 1.0)
    for key in ("labels", "units", "types"):
        vals = out[key]
        if len(vals) != n:
            out[key] = (vals + [""] * n)[:n] if key != "labels" else [f"ch{i + 1}" for i in range(n)]
    return out


def _disk_dtype(desc: dict) -> np.dtype:
    fmt = desc["channel_format"].lower()
    if fmt not in _DISK_DTYPES:
        raise RecordingError(
            f"stream {desc['name']!r} has channel format {fmt!r}; a numeric stream needs one of "
            f"{sorted(_DISK_DTYPES)} (string streams are recorded as markers)"
        )
    return np.dtype(_DISK_DTYPES[fmt])
