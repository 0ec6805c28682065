"""Write a multi-stream recording as an XDF file the way LabRecorder does.

XDF (https://github.com/sccn/xdf, "Specifications") is ``XDF:`` followed by chunks
``[NumLengthBytes][Length][Tag][Content]``: a FileHeader (tag 1), per stream a StreamHeader (2,
stream id + the stream's XML info), Samples (3), ClockOffset (4), Boundary (5) and a
StreamFooter (6, first/last timestamp, sample count, the clock offsets).

As in LabRecorder, samples carry the timestamps *on the source's clock* and the ClockOffset chunks
carry ``(collection time - offset, offset)``, so a reader that synchronises clocks (pyxdf's
``synchronize_clocks=True``) maps them onto the recording machine's clock. Our inlets deliver
stamps already on the local clock (liblsl ``proc_clocksync``); :func:`write_xdf` subtracts the
clock offsets the recorder logged (interpolated in time) to get the source stamps back.

Used by :mod:`neurodeck.acquisition.finalize` when a recording is made with ``xdf=True``: the XDF
is written from the crash-safe partial folder, like the FIF, so ``recover`` finishes it too.
"""
from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree as ET

import numpy as np

logger = logging.getLogger(__name__)

#: LabRecorder's boundary chunk signature (pyxdf scans for it to resynchronise a damaged file).
BOUNDARY = bytes([0x43, 0xA5, 0x46, 0xDC, 0xCB, 0xF5, 0x41, 0x0F,
                  0xB3, 0x0E, 0xD5, 0x46, 0x73, 0x83, 0xCB, 0xE4])
_FORMATS = {"float32": "<f4", "double64": "<f8", "int8": "<i1", "int16": "<i2", "int32": "<i4",
            "int64": "<i8"}
_SAMPLES_PER_CHUNK = 4096


def _varlen(n: int) -> bytes:
    if n < 256:
        return b"\x01" + struct.pack("<B", n)
    if n < 2**32:
        return b"\x04" + struct.pack("<I", n)
    return b"\x08" + struct.pack("<Q", n)


def _chunk(f: BinaryIO, tag: int, content: bytes) -> None:
    f.write(_varlen(len(content) + 2) + struct.pack("<H", tag) + content)


def _xml(root: ET.Element) -> bytes:
    return b'<?xml version="1.0"?>' + ET.tostring(root, encoding="utf-8")


def _sub(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def header_xml(desc: Mapping) -> bytes:
    """The stream's ``<info>`` as LabRecorder stores it (channels in ``desc/channels``).

    Parameters
    ----------
    desc : dict
        Stream description (:func:`neurodeck.acquisition.stream_meta.describe` keys: name, type,
        n_channels, srate, channel_format, source_id, hostname, uid, labels, units, types).
    """
    info = ET.Element("info")
    _sub(info, "name", desc.get("name", ""))
    _sub(info, "type", desc.get("type", ""))
    _sub(info, "channel_count", int(desc["n_channels"]))
    _sub(info, "channel_format", desc.get("channel_format", "float32"))
    _sub(info, "source_id", desc.get("source_id", ""))
    _sub(info, "nominal_srate", repr(float(desc.get("srate") or 0.0)))
    _sub(info, "version", "1.1000000000000001")
    _sub(info, "created_at", repr(float(desc.get("created_at") or 0.0)))
    _sub(info, "uid", desc.get("uid", ""))
    _sub(info, "session_id", "default")
    _sub(info, "hostname", desc.get("hostname", ""))
    d = _sub(info, "desc")
    labels = list(desc.get("labels") or [])
    if labels:
        chans = _sub(d, "channels")
        units = list(desc.get("units") or [""] * len(labels))
        types = list(desc.get("types") or [""] * len(labels))
        for label, unit, ctype in zip(labels, units, types, strict=False):
            ch = _sub(chans, "channel")
            _sub(ch, "label", label)
            if unit:
                _sub(ch, "unit", unit)
            if ctype:
                _sub(ch, "type", ctype)
    return _xml(info)


def _numeric_samples(sid: int, ts: np.ndarray, values: np.ndarray, fmt: str) -> bytes:
    n, n_ch = values.shape
    rec = np.dtype([("k", "u1"), ("t", "<f8"), ("v", fmt, (n_ch,))])
    arr = np.empty(n, dtype=rec)
    arr["k"] = 8
    arr["t"] = ts
    arr["v"] = values
    return struct.pack("<I", sid) + _varlen(n) + arr.tobytes()


def _string_samples(sid: int, ts: np.ndarray, labels: Sequence[str]) -> bytes:
    parts = [struct.pack("<I", sid), _varlen(len(labels))]
    for t, label in zip(ts, labels, strict=True):
        raw = str(label).encode("utf-8")
        parts.append(b"\x08" + struct.pack("<d", float(t)) + _varlen(len(raw)) + raw)
    return b"".join(parts)


def _footer(first: float | None, last: float | None, count: int,
            offsets: Sequence[tuple[float, float]]) -> bytes:
    info = ET.Element("info")
    _sub(info, "first_timestamp", repr(float(first)) if first is not None else "0")
    _sub(info, "last_timestamp", repr(float(last)) if last is not None else "0")
    _sub(info, "sample_count", int(count))
    co = _sub(info, "clock_offsets")
    for t, v in offsets:
        o = _sub(co, "offset")
        _sub(o, "time", repr(float(t)))
        _sub(o, "value", repr(float(v)))
    return _xml(info)


def write_xdf(
    path: str | Path,
    streams: Sequence[Mapping],
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    markers: Mapping[str, tuple[np.ndarray, Sequence[str]]],
    clock_offsets: Mapping[str, Sequence[tuple[float, float]]],
) -> Path:
    """Write streams to ``path`` as XDF.

    Parameters
    ----------
    path : path
    streams : sequence of dict
        Stream descriptions with a ``key`` (see :func:`header_xml`); ``is_marker`` for string
        streams.
    samples : dict of key -> (data, timestamps)
        Numeric streams: data ``(n_samples, n_channels)``, timestamps ``(n_samples,)`` on the
        local clock.
    markers : dict of key -> (timestamps, labels)
        String streams: timestamps ``(n_markers,)`` on the local clock, one label each.
    clock_offsets : dict of key -> list of (local time, offset)
        liblsl's ``time_correction`` values the recorder logged (local = source + offset).

    Returns
    -------
    path : Path
    """
    path = Path(path)
    with open(path, "wb") as f:
        f.write(b"XDF:")
        info = ET.Element("info")
        _sub(info, "version", "1.0")
        _chunk(f, 1, _xml(info))
        for sid, s in enumerate(streams, start=1):
            _chunk(f, 2, struct.pack("<I", sid) + header_xml(s))
        for sid, s in enumerate(streams, start=1):
            key = s["key"]
            offs = sorted((float(t), float(v)) for t, v in clock_offsets.get(key, ()))
            if s.get("is_marker"):
                ts_local, labels = markers.get(key, (np.zeros(0), []))
                ts_local = np.asarray(ts_local, dtype=np.float64)
            else:
                values, ts_local = samples[key]
                ts_local = np.asarray(ts_local, dtype=np.float64)
            if offs:  # back to the source's clock, as LabRecorder stores them
                t_o, v_o = np.array(offs).T
                ts_src = ts_local - np.interp(ts_local, t_o, v_o)
            else:
                ts_src = ts_local
            n = len(ts_src)
            for a in range(0, n, _SAMPLES_PER_CHUNK):
                b = min(a + _SAMPLES_PER_CHUNK, n)
                if s.get("is_marker"):
                    content = _string_samples(sid, ts_src[a:b], list(labels[a:b]))
                else:
                    fmt = _FORMATS.get(str(s.get("channel_format")), "<f8")
                    content = _numeric_samples(sid, ts_src[a:b], np.asarray(values[a:b]), fmt)
                _chunk(f, 3, content)
                _chunk(f, 5, BOUNDARY)
            src_offs = [(t - v, v) for t, v in offs]
            for t, v in src_offs:
                _chunk(f, 4, struct.pack("<Idd", sid, t, v))
            _chunk(f, 6, struct.pack("<I", sid) + _footer(
                ts_src[0] if n else None, ts_src[-1] if n else None, n, src_offs))
    logger.info("wrote %s (%d streams)", path, len(streams))
    return path
