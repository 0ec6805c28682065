"""Load any recording into an ``mne.io.Raw`` with annotations, and turn annotations into events.

Supported formats (see :data:`SUPPORTED`): FIF, EDF/EDF+, BDF, GDF and BrainVision through
``mne.io.read_raw``; XDF (``.xdf`` / ``.xdfz``) through :mod:`pyxdf`.

XDF timing
----------
Streams are read with ``synchronize_clocks=True`` (every stream mapped to the recording computer's
clock), ``handle_clock_resets=True`` (timestamps stay monotonic across LSL clock resets) and
``dejitter_timestamps=True`` (regular streams get a straight-line fit per segment; pyxdf splits a
stream into segments at gaps longer than 1 s).

:func:`load_recording` then places the chosen EEG stream on a grid at its *nominal* rate:

* inside one segment the samples are kept contiguous, in order, untouched (no interpolation of
  data); a segment starts at the grid index nearest to its first timestamp, or right after the
  previous segment if drift would make them overlap;
* the gap between two segments is filled by linear interpolation between the samples on either
  side and covered by a ``BAD_ACQ_SKIP`` annotation, so MNE's ``reject_by_annotation`` drops it;
* markers are mapped through the EEG timestamps (piecewise linear, timestamp -> grid index), so a
  marker lands on the sample it was recorded next to even when the amplifier's effective rate
  differs from the nominal one; the measured effective rate, the segments and the filled gaps are
  recorded in ``raw.info["description"]`` (JSON).

Units
-----
``mne.io.Raw`` holds volts. XDF channel units from the stream description are converted with
:func:`neurodeck.acquisition.units.mne_type_and_scale` (every spelling of
:mod:`neurodeck.acquisition.units`: ``microvolts``, ``uV``, ``µV``, ``mV``, ``V``, MNE-LSL's ``-6``...);
a channel without a unit in an EEG stream (or typed EEG/EOG/EMG/ECG) is taken to be in microvolts,
the LSL convention, and the assumption is logged.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.acquisition.errors import RecordingError
from neurodeck.acquisition.markers import CODES, name_of, onsets_on_samples
from neurodeck.acquisition.units import mne_type_and_scale

logger = logging.getLogger(__name__)

#: File endings :func:`load_recording` reads (lower case; ``.fif.gz`` is matched before ``.gz``).
SUPPORTED: frozenset[str] = frozenset(
    {".xdf", ".xdfz", ".fif", ".fif.gz", ".edf", ".bdf", ".gdf", ".vhdr"}
)
XDF_SUFFIXES = (".xdf", ".xdfz")

def _supported_text() -> str:
    return ", ".join(sorted(SUPPORTED))


def suffix_of(path: str | Path) -> str:
    """Lower-case file ending as used in :data:`SUPPORTED` (``"x.fif.gz"`` -> ``".fif.gz"``)."""
    name = Path(path).name.lower()
    for suf in sorted(SUPPORTED, key=len, reverse=True):
        if name.endswith(suf):
            return suf
    return Path(name).suffix


def _check_file(path: str | Path) -> tuple[Path, str]:
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"{path}: file not found")
    if path.is_dir():
        raise RecordingError(f"{path}: is a directory; expected a recording file ({_supported_text()})")
    suffix = suffix_of(path)
    if suffix not in SUPPORTED:
        raise RecordingError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}; expected one of {_supported_text()}"
        )
    if path.stat().st_size == 0:
        raise RecordingError(f"{path}: file is empty; expected a {suffix} recording")
    return path, suffix


# --------------------------------------------------------------------------------------------- XDF


@dataclass
class XdfStream:
    """One stream of an XDF file after pyxdf's clock synchronisation, reset handling and dejitter.

    Attributes
    ----------
    name, type : str
        Stream name and content type from the stream header.
    labels, units, ch_types : list of str, length n_channels
        From ``desc/channels/channel`` (``"ch1"``..., ``""``, ``""`` when absent).
    srate : float
        Nominal rate in Hz (0 = irregular).
    fmt : str
        XDF channel format (``"float32"``, ``"double64"``, ``"int16"``, ``"string"``, ...).
    data : ndarray, shape (n_samples, n_channels), or list of str
        Numeric samples, or for string streams the first channel of every sample.
    timestamps : ndarray, shape (n_samples,)
        Seconds on the recording computer's LSL clock, monotonic.
    rows : list of list of str or None
        For string streams, every channel of every sample (``data`` keeps the first channel).
    source_id, stream_id, effective_srate, segments :
        Header source id, XDF stream id, rate measured by pyxdf, [(first, last)] sample indices of
        the segments pyxdf found (split at gaps and clock resets).
    """

    name: str
    type: str
    labels: list[str]
    units: list[str]
    srate: float
    fmt: str
    data: Any
    timestamps: np.ndarray
    ch_types: list[str] = field(default_factory=list)
    rows: list[list[str]] | None = None
    source_id: str = ""
    stream_id: int = 0
    effective_srate: float = 0.0
    segments: list[tuple[int, int]] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return len(self.timestamps)

    @property
    def n_channels(self) -> int:
        return len(self.labels)

    @property
    def is_string(self) -> bool:
        return self.fmt == "string"

    @property
    def is_regular(self) -> bool:
        return self.srate > 0

    def describe(self) -> str:
        """One line, used in error messages that list the streams of a file."""
        kind = "string" if self.is_string else self.fmt
        rate = f"{self.srate:g} Hz" if self.srate else "irregular"
        return (
            f"{self.name!r} (type {self.type!r}, {self.n_channels} ch {kind}, {rate}, "
            f"{self.n_samples} samples)"
        )

    def metadata(self) -> dict[str, Any]:
        """JSON-able header information (no data)."""
        return {
            "name": self.name, "type": self.type, "source_id": self.source_id, "stream_id": self.stream_id,
            "labels": self.labels, "units": self.units, "ch_types": self.ch_types, "srate": self.srate,
            "effective_srate": self.effective_srate, "fmt": self.fmt, "n_samples": self.n_samples,
            "segments": [list(map(int, s)) for s in self.segments],
            "first_timestamp": float(self.timestamps[0]) if self.n_samples else None,
            "last_timestamp": float(self.timestamps[-1]) if self.n_samples else None,
        }


def _first(value: Any, default: Any = None) -> Any:
    """pyxdf stores every header field as a one-element list."""
    if isinstance(value, list):
        return value[0] if value else default
    return default if value is None else value


def _channel_desc(info: dict, n_channels: int) -> tuple[list[str], list[str], list[str]]:
    labels = [f"ch{i + 1}" for i in range(n_channels)]
    units = [""] * n_channels
    types = [""] * n_channels
    desc = _first(info.get("desc"))
    try:
        chans = desc["channels"][0]["channel"] if desc else []
    except (KeyError, IndexError, TypeError):
        chans = []
    if chans and len(chans) != n_channels:
        logger.warning(
            "stream %r: desc lists %d channels but the header says %d; using generic labels",
            _first(info.get("name")), len(chans), n_channels,
        )
        return labels, units, types
    for i, ch in enumerate(chans):
        if not isinstance(ch, dict):
            continue
        labels[i] = str(_first(ch.get("label"), labels[i]) or labels[i])
        units[i] = str(_first(ch.get("unit"), "") or "")
        types[i] = str(_first(ch.get("type"), "") or "")
    return labels, units, types


def read_xdf_streams(path: str | Path, *, allow_truncated: bool = False) -> list[XdfStream]:
    """Read every stream of an XDF file.

    Parameters
    ----------
    path : str or Path
        ``.xdf`` or ``.xdfz`` file.
    allow_truncated : bool
        A file whose streams have no footer (writer killed, copy cut short) raises
        :class:`RecordingError` unless this is True, in which case what could be read is returned.

    Returns
    -------
    streams : list of XdfStream
        In file order, empty streams included (``n_samples == 0``).
    """
    path, suffix = _check_file(path)
    if suffix not in XDF_SUFFIXES:
        raise RecordingError(f"{path}: not an XDF file; expected one of {', '.join(XDF_SUFFIXES)}")
    import pyxdf

    problems: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                problems.append(record.getMessage())

    pyxdf_logger = logging.getLogger("pyxdf.pyxdf")
    handler = _Collect()
    pyxdf_logger.addHandler(handler)
    propagate = pyxdf_logger.propagate
    pyxdf_logger.propagate = False  # its messages become part of our error / warning instead
    try:
        raw_streams, _header = pyxdf.load_xdf(
            str(path), synchronize_clocks=True, handle_clock_resets=True, dejitter_timestamps=True
        )
    except Exception as exc:  # pyxdf raises OSError, struct.error, ValueError, ... on bad bytes
        raise RecordingError(
            f"{path}: not a readable XDF file ({type(exc).__name__}: {exc}); expected an XDF recording "
            "starting with the 'XDF:' magic bytes"
        ) from exc
    finally:
        pyxdf_logger.removeHandler(handler)
        pyxdf_logger.propagate = propagate
    for p in problems:
        logger.debug("%s: pyxdf: %s", path, p)
    corruption = [p for p in problems if "corrupt" in p.lower() or "error" in p.lower()]
    if not raw_streams:
        detail = f" ({corruption[0]})" if corruption else ""
        raise RecordingError(f"{path}: no streams could be read{detail}; expected an XDF recording with at least one stream")
    streams = [_convert_stream(s) for s in raw_streams]
    missing_footer = [s.name for s, raw in zip(streams, raw_streams, strict=True) if "footer" not in raw]
    if (missing_footer or corruption) and not allow_truncated:
        why = f"streams {missing_footer} have no footer" if missing_footer else corruption[0]
        raise RecordingError(
            f"{path}: truncated: {why} (the file ends early or is damaged); "
            "pass allow_truncated=True to read what is there"
        )
    if missing_footer or corruption:
        logger.warning("%s: truncated XDF file, reading what is there (%s)", path, missing_footer or corruption)
    return streams


def _convert_stream(raw: dict) -> XdfStream:
    info = raw["info"]
    name = str(_first(info.get("name"), ""))
    n_ch = int(_first(info.get("channel_count"), 1))
    fmt = str(_first(info.get("channel_format"), "float32"))
    srate = float(_first(info.get("nominal_srate"), 0.0) or 0.0)
    labels, units, types = _channel_desc(info, n_ch)
    ts = np.asarray(raw.get("time_stamps", []), dtype=np.float64).ravel()
    series = raw.get("time_series")
    rows = None
    if fmt == "string":
        rows = [[str(v) for v in row] for row in (series or [])]
        data: Any = [row[0] if row else "" for row in rows]
    else:
        data = np.asarray(series if series is not None else np.empty((0, n_ch)))
        data = data.reshape(len(ts), n_ch) if data.size or len(ts) == 0 else data
        if data.size == 0:
            data = np.empty((0, n_ch), dtype=data.dtype if data.dtype != object else np.float64)
    segments = [tuple(map(int, s)) for s in (info.get("segments") or [])]
    if not segments and len(ts):
        segments = [(0, len(ts) - 1)]
    eff = info.get("effective_srate", 0.0)
    return XdfStream(
        name=name, type=str(_first(info.get("type"), "")), labels=labels, units=units, srate=srate, fmt=fmt,
        data=data, timestamps=ts, ch_types=types, rows=rows,
        source_id=str(_first(info.get("source_id"), "") or ""), stream_id=int(info.get("stream_id", 0) or 0),
        effective_srate=float(_first(eff, 0.0) or 0.0), segments=segments,
    )


def choose_eeg_stream(streams: list[XdfStream], stream: str | None = None, *, path: str | Path = "") -> XdfStream:
    """Pick the EEG stream: by name, else the numeric regular stream of type EEG with most channels.

    Ties on channel count are broken by the number of samples; a remaining tie, no candidate, or a
    name that matches nothing / several streams raises :class:`RecordingError` listing the streams.
    """
    listing = "; ".join(s.describe() for s in streams)
    where = f"{path}: " if path else ""
    if stream is not None:
        hits = [s for s in streams if s.name == stream]
        if not hits:
            raise RecordingError(f"{where}no stream named {stream!r}; the file has: {listing}")
        if len(hits) > 1:
            raise RecordingError(
                f"{where}{len(hits)} streams are named {stream!r} (source ids "
                f"{[s.source_id for s in hits]}); cannot choose; the file has: {listing}"
            )
        chosen = hits[0]
        if chosen.is_string or not chosen.is_regular:
            raise RecordingError(
                f"{where}stream {stream!r} is a {'string' if chosen.is_string else 'irregular'} stream; "
                f"expected a numeric stream with a nominal rate; the file has: {listing}"
            )
        if chosen.n_samples == 0:
            raise RecordingError(f"{where}stream {stream!r} is empty (0 samples); the file has: {listing}")
        return chosen
    cands = [
        s for s in streams
        if s.type.strip().lower() == "eeg" and not s.is_string and s.is_regular and s.n_samples > 0
    ]
    if not cands:
        raise RecordingError(
            f"{where}no non-empty numeric stream of type 'EEG' with a nominal rate; choose one by name "
            f"(stream=...); the file has: {listing}"
        )
    cands.sort(key=lambda s: (s.n_channels, s.n_samples), reverse=True)
    if len(cands) > 1 and (cands[0].n_channels, cands[0].n_samples) == (cands[1].n_channels, cands[1].n_samples):
        raise RecordingError(
            f"{where}ambiguous: several EEG streams with {cands[0].n_channels} channels and "
            f"{cands[0].n_samples} samples; choose one by name (stream=...); the file has: {listing}"
        )
    return cands[0]


def _place_on_grid(eeg: XdfStream) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Grid index of every EEG sample at the nominal rate (see module docstring).

    Returns
    -------
    k : ndarray of int, shape (n_samples,)
        Strictly increasing grid index of each sample (k[0] == 0).
    t : ndarray, shape (n_samples,)
        The samples' timestamps (for mapping markers).
    gaps : list of (first_missing, n_missing)
        Grid ranges with no sample.
    """
    ts = eeg.timestamps
    n = len(ts)
    srate = eeg.srate
    segments = sorted(eeg.segments) or [(0, n - 1)]
    k = np.empty(n, dtype=np.int64)
    gaps: list[tuple[int, int]] = []
    next_free = 0
    t0 = ts[0]
    for first, last in segments:
        start = max(int(round((ts[first] - t0) * srate)), next_free)
        if start > next_free:
            gaps.append((next_free, start - next_free))
        k[first : last + 1] = start + np.arange(last - first + 1)
        next_free = start + (last - first + 1)
    return k, ts, gaps


def _xdf_to_raw(path: Path, stream: str | None):
    import mne

    streams = read_xdf_streams(path)
    for s in streams:
        if s.n_samples == 0:
            logger.warning("%s: stream %r is empty (0 samples); ignored", path, s.name)
    eeg = choose_eeg_stream(streams, stream, path=path)
    k, ts, gaps = _place_on_grid(eeg)
    n_grid = int(k[-1]) + 1
    values = np.asarray(eeg.data, dtype=np.float64)
    data = np.empty((n_grid, eeg.n_channels))
    data[k] = values
    for start, count in gaps:  # linear interpolation between the samples either side of the gap
        before, after = data[start - 1], data[start + count]
        w = (np.arange(1, count + 1) / (count + 1))[:, None]
        data[start : start + count] = before + w * (after - before)
    scales, ch_types, assumed = [], [], []
    for label, unit, ctype in zip(eeg.labels, eeg.units, eeg.ch_types, strict=True):
        mtype, scale, was_assumed = mne_type_and_scale(unit, ctype, eeg.type)
        if was_assumed:
            assumed.append(label)
        scales.append(scale)
        ch_types.append(mtype)
    if assumed:
        logger.info("%s: no unit for %d channels of %r; assumed microvolts (LSL convention)", path, len(assumed), eeg.name)
    data *= np.asarray(scales)[None, :]
    labels = _unique_labels(eeg.labels)
    info = mne.create_info(labels, eeg.srate, ch_types)
    raw = mne.io.RawArray(data.T, info, verbose="error")

    # markers of every string / irregular single-channel stream -> annotations
    onsets, descs, durs = [], [], []
    marker_meta = []
    dropped = 0
    for s in streams:
        if s is eeg or s.n_samples == 0:
            continue
        if not (s.is_string or (not s.is_regular and s.n_channels == 1)):
            continue
        labels_s = s.data if s.is_string else [_num_text(v) for v in np.asarray(s.data)[:, 0]]
        # timestamp -> fractional grid index through the EEG timestamps (extrapolate at nominal rate)
        idx = np.interp(s.timestamps, ts, k.astype(np.float64))
        idx = np.where(s.timestamps < ts[0], (s.timestamps - ts[0]) * eeg.srate, idx)
        idx = np.where(s.timestamps > ts[-1], k[-1] + (s.timestamps - ts[-1]) * eeg.srate, idx)
        keep, onset = onsets_on_samples(idx / eeg.srate, n_grid, eeg.srate)
        dropped += int((~keep).sum())
        for o, lab in zip(onset[keep], np.asarray(labels_s, dtype=object)[keep], strict=True):
            onsets.append(float(o))
            descs.append(name_of(lab))
            durs.append(0.0)
        marker_meta.append(s.metadata())
    for start, count in gaps:
        onsets.append(start / eeg.srate)
        durs.append(count / eeg.srate)
        descs.append("BAD_ACQ_SKIP")
    if dropped:
        logger.warning("%s: %d markers fall outside the EEG stream %r and were dropped", path, dropped, eeg.name)
    if onsets:
        order = np.argsort(onsets, kind="stable")
        raw.set_annotations(
            mne.Annotations(np.asarray(onsets)[order], np.asarray(durs)[order], np.asarray(descs, dtype=object)[order])
        )
    meta = {
        "source": "xdf",
        "file": str(path),
        "eeg_stream": eeg.metadata(),
        "marker_streams": marker_meta,
        "other_streams": [s.metadata() for s in streams if s is not eeg and s.metadata() not in marker_meta],
        "timing": {
            "first_timestamp": float(ts[0]),
            "grid": "nominal rate; segments contiguous; gaps interpolated and annotated BAD_ACQ_SKIP",
            "gaps": [[int(a), int(b)] for a, b in gaps],
            "markers_dropped_outside_eeg": dropped,
            "units_assumed_microvolts": assumed,
        },
    }
    raw.info["description"] = json.dumps(meta)
    return raw


def _num_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _unique_labels(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        if lab in seen:
            seen[lab] += 1
            out.append(f"{lab}-{seen[lab]}")
        else:
            seen[lab] = 0
            out.append(lab)
    return out


# -------------------------------------------------------------------------------------------- MNE


def _check_edf_size(path: Path, suffix: str) -> None:
    """Raise 'truncated' if an EDF/BDF file is shorter than its header declares."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            head = f.read(256)
            if len(head) < 256:
                raise RecordingError(f"{path}: truncated: {size} bytes, shorter than the 256-byte {suffix} header")
            header_bytes = int(head[184:192].decode("ascii").strip())
            n_records = int(head[236:244].decode("ascii").strip())
            ns = int(head[252:256].decode("ascii").strip())
            f.seek(256 + ns * 216)
            spr = [int(f.read(8).decode("ascii").strip()) for _ in range(ns)]
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: header is not a valid {suffix.upper()[1:]} header ({exc})") from exc
    if n_records < 0:
        return  # -1: unknown (recording in progress); mne counts the records
    bps = 3 if suffix == ".bdf" else 2
    expected = header_bytes + n_records * sum(spr) * bps
    if size < expected:
        complete = (size - header_bytes) // max(sum(spr) * bps, 1)
        raise RecordingError(
            f"{path}: truncated: {size} bytes but the header declares {n_records} data records "
            f"({expected} bytes); only {max(complete, 0)} complete records present"
        )


def load_recording(path: str | Path, *, stream: str | None = None, preload: bool = True):
    """Load a recording as an ``mne.io.Raw`` (volts) with its markers as annotations.

    Parameters
    ----------
    path : str or Path
        A file with one of the endings in :data:`SUPPORTED`.
    stream : str, optional
        XDF only: name of the stream to load as EEG; default the numeric regular stream of type EEG
        with most channels (then most samples).
    preload : bool
        Load data into memory (MNE formats; XDF is always in memory).

    Returns
    -------
    raw : mne.io.BaseRaw
        Annotation descriptions that are marker codes of :mod:`acquisition.markers` are replaced by
        their names (``"769"`` -> ``"left_hand"``); other labels pass through (``"T1"``). The
        ``"Comment/"`` prefix BrainVision writers add to free-text labels is removed. A file without
        event annotations but with stim channels gets one annotation per stim event (named by
        code, as above).
        For XDF ``raw.info["description"]`` holds JSON with the streams' metadata and timing.

    Raises
    ------
    RecordingError
        Missing, empty, truncated, corrupt or unsupported file; a stream name that matches nothing.
    """
    path, suffix = _check_file(path)
    if suffix in XDF_SUFFIXES:
        return _xdf_to_raw(path, stream)
    if stream is not None:
        raise RecordingError(f"{path}: stream={stream!r} only applies to XDF files; got a {suffix} file")
    if suffix in (".edf", ".bdf"):
        _check_edf_size(path, suffix)
    import mne

    try:
        raw = mne.io.read_raw(path, preload=preload, verbose="error")
    except Exception as exc:  # mne raises ValueError/OSError/RuntimeError/... depending on the reader
        raise RecordingError(
            f"{path}: cannot read as {suffix} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"the file is corrupt or not a {suffix} recording"
        ) from exc
    if raw.n_times == 0:
        raise RecordingError(f"{path}: no samples; expected a non-empty recording")
    _stim_to_annotations(raw, suffix)
    if len(raw.annotations):
        # BrainVision writers (pybv / mne.export) store free-text annotations as "Comment/<label>"
        strip = "Comment/" if suffix == ".vhdr" else None
        new = [
            name_of(d[len(strip):] if strip and str(d).startswith(strip) else d) for d in raw.annotations.description
        ]
        if new != list(raw.annotations.description):
            raw.annotations.description = np.asarray(new, dtype=object)
    return raw


def _stim_to_annotations(raw, suffix: str) -> None:
    """Events of the stim channels become annotations when the file has no event annotations.

    Every change of a stim channel to a non-zero value is one event (``consecutive=True``); on
    ``.bdf`` files only the low 16 bits count (BioSemi keeps status flags in the upper bits).
    """
    import mne

    picks = mne.pick_types(raw.info, stim=True, exclude=[])
    has_events = any(not str(d).upper().startswith(("BAD", "EDGE")) for d in raw.annotations.description)
    if not len(picks) or has_events:
        return
    kwargs = {"mask": 0xFFFF, "mask_type": "and"} if suffix == ".bdf" else {}
    events = mne.find_events(
        raw, stim_channel=[raw.ch_names[p] for p in picks], shortest_event=1, consecutive=True,
        initial_event=True, verbose="error", **kwargs,
    )
    if not len(events):
        return
    codes = sorted({int(c) for c in events[:, 2]})
    ann = mne.annotations_from_events(
        events, raw.info["sfreq"], event_desc={c: name_of(c) for c in codes}, first_samp=raw.first_samp,
        orig_time=raw.annotations.orig_time, verbose="error",
    )
    raw.set_annotations(raw.annotations + ann, verbose="error")
    logger.info("%d events of the stim channel(s) %s became annotations", len(events), [raw.ch_names[p] for p in picks])


# ----------------------------------------------------------------------------------------- events


def get_events(raw, mapping: Mapping[str, str] | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """Events array and event id from a Raw's annotations.

    Parameters
    ----------
    raw : mne.io.BaseRaw
    mapping : dict of str to str, optional
        Annotation label -> class name, e.g. ``{"T1": "left_hand", "T2": "right_hand"}``; labels not
        in the mapping are ignored, several labels may map to one name. A key may also be a marker
        code whose name is the annotation (``"769"`` finds ``"left_hand"``). Default: every label
        except ``BAD_*`` / ``EDGE_*``, each its own class.

    Returns
    -------
    events : ndarray of int, shape (n_events, 3)
        ``[sample (including raw.first_samp), 0, code]`` sorted by sample.
    event_id : dict of str to int
        Class name -> code; the code of :mod:`acquisition.markers` for known names, else 1, 2, ...
        in sorted order of the names.

    Raises
    ------
    RecordingError
        A mapping label that no annotation has (the error lists the labels present), or no events.
    """
    import mne

    present = sorted({str(d) for d in raw.annotations.description})
    if mapping is None:
        mapping = {d: d for d in present if not d.upper().startswith(("BAD", "EDGE"))}
        if not mapping:
            raise RecordingError(f"recording has no event annotations (labels present: {present})")
    resolved: dict[str, str] = {}
    unknown = []
    for label, cls in mapping.items():
        label = str(label)
        if label in present:
            resolved[label] = str(cls)
        elif name_of(label) in present:
            resolved[name_of(label)] = str(cls)
        else:
            unknown.append(label)
    if unknown:
        raise RecordingError(
            f"event labels {unknown} not found in the recording's annotations; labels present: {present}"
        )
    names = sorted(set(resolved.values()))
    event_id: dict[str, int] = {}
    next_code = 1
    used = {CODES[n] for n in names if n in CODES}
    for n in names:
        if n in CODES:
            event_id[n] = CODES[n]
        else:
            while next_code in used:
                next_code += 1
            event_id[n] = next_code
            used.add(next_code)
    label_codes = {label: event_id[cls] for label, cls in resolved.items()}
    events, _ = mne.events_from_annotations(raw, event_id=label_codes, verbose="error")
    if len(events) == 0:
        raise RecordingError(f"no events for labels {sorted(resolved)} (labels present: {present})")
    events = events[np.argsort(events[:, 0], kind="stable")]
    return events, event_id


def is_xdf(path: str | Path) -> bool:
    return suffix_of(path) in XDF_SUFFIXES


__all__ = [
    "SUPPORTED",
    "XdfStream",
    "choose_eeg_stream",
    "get_events",
    "is_xdf",
    "load_recording",
    "read_xdf_streams",
    "suffix_of",
]
