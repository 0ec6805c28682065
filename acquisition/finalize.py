"""Finalize a partial folder into a FIF file + JSON sidecar (+ extra ``.npz``), recover, export.

:func:`finalize_partial` turns a partial folder (see :mod:`neurodeck.acquisition.partial`) into
``<out>`` (a FIF file, volts, markers as annotations), a JSON sidecar ``<out stem>.json`` with
the stream metadata, and ``<out stem>.<stream>.npz`` for every other numeric stream. The partial
folder is deleted only after the FIF has been read back and checked. :func:`recover` finalizes a
folder left behind by a crash the same way; :func:`export_recording` writes EDF / BrainVision.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.acquisition.errors import RecordingError
from neurodeck.acquisition.markers import name_of, onsets_on_samples
from neurodeck.acquisition.partial import (
    FORMAT_VERSION,
    META_FILE,
    PARTIAL_SUFFIX,
    PartialLock,
    _oserror,
    _write_json_atomic,
    load_partial,
)
from neurodeck.acquisition.units import mne_type_and_scale

logger = logging.getLogger(__name__)

_STATE_ANNOTATIONS = {"LOST": "stream_lost", "RECOVERED": "stream_recovered"}


def _stem(path: Path) -> str:
    """Common prefix of a recording's files: the name without ``.fif`` (``x.fif.gz`` is kept whole).

    ``x.fif`` and ``x.fif.gz`` are two recordings: their sidecars (``x.json``, ``x.fif.gz.json``)
    and extra streams must not share a name.
    """
    if path.name.endswith(".fif"):
        return path.name[: -len(".fif")]
    if path.name.endswith(".fif.gz"):
        return path.name
    return path.stem


def sidecar_path(fif_path: Path | str) -> Path:
    """The JSON sidecar of a recording: ``<stem>.json`` next to ``<stem>.fif``."""
    fif_path = Path(fif_path)
    return fif_path.with_name(_stem(fif_path) + ".json")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "stream"


def _gaps(ts: np.ndarray, srate: float) -> list[dict]:
    """Gaps where consecutive timestamps are more than 1.5 nominal periods apart."""
    if srate <= 0 or ts.size < 2:
        return []
    d = np.diff(ts)
    idx = np.flatnonzero(d > 1.5 / srate)
    return [
        {"after_sample": int(i), "timestamp": float(ts[i]), "duration": float(d[i]),
         "missing_samples": int(round(d[i] * srate)) - 1}
        for i in idx
    ]


def _pick_primary(streams: list[dict]) -> dict:
    numeric = [s for s in streams if not s["is_marker"] and s["srate"] > 0]
    if not numeric:
        raise RecordingError(
            "no regular-rate numeric stream among the streams "
            f"{[s['name'] for s in streams]}; expected at least one EEG-like stream (numeric, "
            "with a nominal rate) to write a FIF file"
        )
    eeg = [s for s in numeric if s["type"].lower() == "eeg"]
    return (eeg or numeric)[0]


def _clock_segments(ts: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` sample ranges whose timestamps never go back (split at backward jumps)."""
    cuts = np.flatnonzero(np.diff(ts) < 0) + 1
    bounds = [0, *cuts.tolist(), int(ts.size)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _sample_position(t: float, ts: np.ndarray, segments: list[tuple[int, int]], sfreq: float,
                     hint: float | None = None) -> float:
    """Fractional sample index of time ``t`` on the samples stamped ``ts`` (n,).

    Within a stretch of non-decreasing stamps the index is interpolated (gaps included), outside
    it extrapolated at ``sfreq``. After a backward clock jump the same time occurs in two
    stretches: ``hint`` (the sample count when the marker arrived) picks the one that fits; without
    a hint the first stretch that spans ``t`` (else the nearest in time).
    """
    best, best_key = 0.0, None
    for a, b in segments:
        lo, hi = float(ts[a]), float(ts[b - 1])
        if lo <= t <= hi and b - a > 1:
            idx = a + float(np.interp(t, ts[a:b], np.arange(b - a, dtype=float)))
        elif t < lo:
            idx = a + (t - lo) * sfreq
        else:
            idx = (b - 1) + (t - hi) * sfreq
        if hint is not None:
            key = abs(idx - hint)
        else:
            key = 0.0 if lo <= t <= hi else min(abs(t - lo), abs(t - hi)) + 1.0
        if best_key is None or key < best_key:
            best, best_key = idx, key
    return best


#: A marker stream whose stamps differ from their arrival times (our LSL clock) by more than this
#: many seconds (the smallest difference) is on another clock (Unix time, a device clock).
FOREIGN_CLOCK_S = 10.0


#: Relative difference between a stream's nominal and measured rate that is reported.
RATE_TOLERANCE = 0.01


def _measured_rate(ts: np.ndarray, srate: float) -> float | None:
    """Sample rate the timestamps ``ts`` (n,) show, losses (> 0.25 s and 10 periods) excluded.

    ``None`` for irregular streams and for less than 2 s of samples.
    """
    if srate <= 0 or ts.size < 2 or ts[-1] - ts[0] < 2.0:
        return None
    d = np.diff(ts)
    lost = d > max(0.25, 10.0 / srate)
    span = float(d[~lost & (d > 0)].sum())
    n_steps = int((~lost & (d > 0)).sum())
    return n_steps / span if span > 0 and n_steps else None


def _stream_lag(meta: dict, events: list[dict], key: str) -> float:
    """Smallest (arrival - stamp) of numeric stream ``key`` seen by the recorder (0 if unknown)."""
    lags = [ev.get("lag") for ev in events if isinstance(ev, dict) and ev.get("kind") == "lag"
            and ev.get("stream") == key]
    lags.append((meta.get("lag_min") or {}).get(key) if isinstance(meta.get("lag_min"), dict) else None)
    vals = [float(v) for v in lags if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)]
    return min(vals) if vals else 0.0


def _foreign_clock_offsets(events: list[dict], ref_lag: float = 0.0) -> dict[str, float]:
    """Per marker stream key on another clock than the EEG: the offset to add, seconds.

    Markers stamped with ``time.time()`` (or a device clock) while the EEG uses the LSL clock
    fall far outside the EEG samples and were all left out of the FIF. Their arrival times (our
    clock, recorded by the recorder) give the offset: the smallest lag (arrival - stamp), as
    delays (the first marker liblsl holds ~0.7 s after a connection, a busy machine) only ever
    add to it, minus the EEG's own smallest lag ``ref_lag`` (the EEG may be on a device clock
    too: then so may the markers, and nothing moves). Adding it keeps the markers' relative
    timing and places them to within the smallest transport latency.
    """
    lags: dict[str, list[float]] = {}
    for ev in events:
        if isinstance(ev, dict) and ev.get("kind") == "marker":
            try:
                lag = float(ev["arrived"]) - float(ev["t"])
            except (KeyError, TypeError, ValueError):
                continue
            if np.isfinite(lag):
                lags.setdefault(str(ev.get("stream")), []).append(lag)
    out = {}
    for key, vals in lags.items():
        off = float(np.min(vals)) - ref_lag
        if abs(off) > FOREIGN_CLOCK_S:
            logger.warning("marker stream %s is stamped on another clock (%.3f s off the LSL clock); "
                           "markers placed by their arrival (offset added, original stamps kept)", key, off)
            out[key] = off
    return out


def output_files(out: Path | str, streams: list[dict], *, xdf: bool = False) -> dict[str, Path]:
    """Every file finalizing ``streams`` into ``out`` writes.

    Returns
    -------
    dict
        ``"fif"``: ``out``; ``"sidecar"``: the JSON sidecar; per extra numeric stream key:
        ``<stem>.<safe name>.npz``, made unique (case-insensitively, for case-insensitive file
        systems) by appending the stream key when two names map to the same file name;
        ``"xdf"``: ``<stem>.xdf`` with ``xdf`` (every stream, LabRecorder-style); for an int64
        primary stream also ``<stem>.<safe name>.exact.npz`` (its samples, exact).

    Raises
    ------
    RecordingError
        No regular-rate numeric stream to write the FIF from.
    """
    out = Path(out)
    primary = _pick_primary(streams)
    stem = _stem(out)
    files = {"fif": out, "sidecar": sidecar_path(out)}
    used: set[str] = set()
    if primary["channel_format"] == "int64":  # the FIF's doubles hold integers exactly to 2**53
        base = _safe(primary["name"]) + ".exact"
        used.add(base.lower())
        files[primary["key"]] = out.with_name(f"{stem}.{base}.npz")
    for s in streams:
        if s["is_marker"] or s["key"] == primary["key"]:
            continue
        base = _safe(s["name"])
        while base.lower() in used:
            base = f"{base}-{s['key']}"
        used.add(base.lower())
        files[s["key"]] = out.with_name(f"{stem}.{base}.npz")
    if xdf:
        files["xdf"] = out.with_name(f"{stem}.xdf")
    return files


def check_outputs_free(files: dict[str, Path]) -> None:
    """Raise :class:`RecordingError` naming the first of ``files`` that already exists."""
    for path in files.values():
        if path.exists():
            raise RecordingError(
                f"output {str(path)!r} already exists; expected a new file name (or --overwrite "
                "to replace it)"
            )


def _fif_format(dtype: np.dtype) -> str:
    """FIF sample format that keeps ``dtype`` exact: double for (u)int32/64 and float64."""
    dtype = np.dtype(dtype)
    return "double" if dtype.itemsize > 4 or (dtype.kind in "iu" and dtype.itemsize >= 4) else "single"


def _split_parts(out: Path) -> list[Path]:
    """The further files of a split FIF (``<name>-1.fif``, ...) that exist next to ``out``."""
    if not out.name.endswith(".fif"):
        return []
    base = out.name[: -len(".fif")]
    return [p for p in out.parent.glob(f"{base}-*.fif") if p.name[len(base) + 1:-4].isdigit()]


def _mne_types_and_scales(s: dict) -> tuple[list[str], np.ndarray]:
    """MNE type and factor to SI of every channel of stream description ``s`` (units.py's rules)."""
    types, scales = [], []
    for t, u in zip(s["types"], s["units"], strict=True):
        mt, scale, _ = mne_type_and_scale(u, t, s["type"])
        types.append(mt)
        scales.append(scale)
    return types, np.asarray(scales)


def _meas_date(meta: dict, first_ts: float) -> _dt.datetime | None:
    try:
        wall = float(meta["start_wall_time"]) + (first_ts - float(meta["start_lsl_time"]))
        return _dt.datetime.fromtimestamp(wall, tz=_dt.UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def _partial_raw(info, path: Path, shape: tuple[int, int], dtype: np.dtype, scales: np.ndarray):
    """An ``mne.io.Raw`` that reads the partial data file ``path`` block by block on demand.

    ``raw.save`` then writes the FIF one buffer (1 s) at a time (a RawArray would hold the whole
    stream as float64: ~15 GB for an hour of 256 ch @ 2048 Hz). The file holds ``shape``
    (n_times, n_channels) samples of ``dtype``; values are multiplied by ``scales`` (to volts for
    voltage channels) as they are read.
    """
    from mne.io import BaseRaw

    n_times, n_channels = shape
    dtype = np.dtype(dtype)

    class _PartialRaw(BaseRaw):
        def __init__(self):
            super().__init__(info, preload=False, first_samps=[0], last_samps=[n_times - 1],
                             filenames=[str(path)], raw_extras=[{"scales": scales}],
                             orig_format=_fif_format(dtype),
                             verbose=False)

        def _read_segment_file(self, data, idx, fi, start, stop, cals, mult):
            rows = np.fromfile(self.filenames[fi], dtype=dtype, count=(stop - start) * n_channels,
                               offset=start * n_channels * dtype.itemsize)
            block = rows.reshape(-1, n_channels).astype(np.float64).T  # (n_channels, n)
            block *= self._raw_extras[fi]["scales"][:, None]
            block = block[idx]
            if mult is not None:
                data[:] = mult @ block
            else:
                data[:] = block * cals

    return _PartialRaw()


def finalize_partial(partial_dir: Path | str, out: Path | str | None = None, *,
                     remove_partial: bool = True, recovered: bool = False, overwrite: bool = False,
                     locked: bool = False) -> Path:
    """Turn a partial folder into ``<out>`` (FIF) + ``<out stem>.json`` (+ extra ``.npz``).

    Parameters
    ----------
    partial_dir : Path
        The ``<out>.partial`` folder.
    out : Path, optional
        Output FIF path; default: the one stored in ``meta.json`` (:func:`recover` defaults to
        ``<out>`` next to the folder).
    remove_partial : bool
        Delete the partial folder once the FIF has been written and read back.
    recovered : bool
        Marks the sidecar as recovered after a crash.
    overwrite : bool
        Replace existing output files. Without it an existing file is refused, except files a
        finalize of this very folder to this very ``out`` began and did not finish (killed).
    locked : bool
        The caller holds the folder's :class:`~neurodeck.acquisition.partial.PartialLock` (the
        recorder); otherwise it is taken here and a folder in use is refused.

    On any failure nothing is left under the output names, the partial folder is kept and the
    error says how to finish it (``neurodeck recover <dir> --out <elsewhere>``).

    Returns
    -------
    Path
        The FIF file.
    """
    pdir = Path(partial_dir)
    load_partial(pdir, meta_only=True)  # a clear error for a folder that is not a recording
    lock = None if locked else PartialLock.acquire(pdir)
    try:
        return _finalize(pdir, out, remove_partial=remove_partial, recovered=recovered,
                         overwrite=overwrite)
    finally:
        if lock is not None:
            lock.release()


def _finalize(pdir: Path, out: Path | str | None, *, remove_partial: bool, recovered: bool,
              overwrite: bool) -> Path:
    loaded = load_partial(pdir)
    meta = loaded.meta
    out = Path(out) if out is not None else Path(meta["out"])
    streams = meta["streams"]
    files = output_files(out, streams, xdf=bool(meta.get("xdf")))
    own = meta.get("finalizing_to") == str(out.resolve())
    if not (overwrite or own):
        check_outputs_free(files)
    written: list[Path] = []
    try:
        meta["finalizing_to"] = str(out.resolve())
        _write_json_atomic(pdir / META_FILE, meta)
        return _write_outputs(pdir, loaded, out, files, written, recovered=recovered,
                              remove_partial=remove_partial)
    except (RecordingError, OSError) as exc:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        if isinstance(exc, OSError):
            exc = _oserror(exc, out, "finalize")
        raise RecordingError(
            f"{exc}; the partial recording {str(pdir)!r} is kept: run `neurodeck recover {pdir} "
            "--out <another folder>/<name>.fif` to finish it elsewhere"
        ) from exc


def _write_outputs(pdir: Path, loaded: Any, out: Path, files: dict[str, Path], written: list[Path],
                   *, recovered: bool, remove_partial: bool) -> Path:
    """Write the FIF, the extra ``.npz`` files and the sidecar, verify, remove the folder."""
    import mne

    meta = loaded.meta
    streams = meta["streams"]
    primary = _pick_primary(streams)
    pkey = primary["key"]
    pdata, pts = loaded.data[pkey], loaded.ts[pkey]
    if pdata.shape[0] == 0:
        raise RecordingError(
            f"stream {primary['name']!r} has no samples in {str(pdir)!r}; expected at least one "
            "recorded sample to write a FIF file"
        )
    sfreq = float(primary["srate"])
    first_ts = float(pts[0])
    n_times = pdata.shape[0]
    segments = _clock_segments(pts)

    def onset_of(t: float, hint: float | None = None) -> float:
        # sample position of an LSL time on the recorded samples (gaps, clock jumps), in seconds
        return _sample_position(t, pts, segments, sfreq, hint) / sfreq

    by_key = {s["key"]: s for s in streams}
    markers: list[dict] = []
    states: list[dict] = []
    clocks: dict[str, list] = {}
    damaged = 0
    foreign = _foreign_clock_offsets(loaded.events, _stream_lag(meta, loaded.events, pkey))
    for ev in loaded.events:
        try:
            s = by_key.get(ev.get("stream"))
            sname = s["name"] if s else str(ev.get("stream"))
            t = float(ev["t"])
            if not np.isfinite(t):
                raise ValueError(f"timestamp {t}")
            if ev.get("kind") == "marker":
                label = ev["label"]
                if not isinstance(label, str):
                    raise ValueError(f"label {label!r}")
                at = ev.get("at")
                hint = at.get(pkey) if isinstance(at, dict) else None
                hint = float(hint) if isinstance(hint, int | float) and not isinstance(hint, bool) else None
                entry = {"stream": sname, "timestamp": t, "code": label, "name": name_of(label)}
                if ev.get("stream") in foreign:  # stamped on another clock (Unix time, a device)
                    entry["timestamp_sent"] = t
                    t = entry["timestamp"] = t + foreign[ev["stream"]]
                markers.append({**entry, "onset": onset_of(t, hint)})
            elif ev.get("kind") == "state":
                t_data = t
                if str(ev.get("new")).upper() == "LOST" and ev.get("last_data_t") is not None:
                    t_data = float(ev["last_data_t"])  # the data stopped here; LOST is declared later
                states.append({"stream": sname, "timestamp": t_data, "onset": onset_of(t_data),
                               "detected_at": t, "old": ev.get("old"), "new": ev.get("new")})
            elif ev.get("kind") == "clock":
                clocks.setdefault(sname, []).append([t, float(ev["offset"])])
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            damaged += 1
            logger.warning("%s: skipping a damaged event %r (%s)", pdir, ev, exc)
    markers.sort(key=lambda m: m["timestamp"])

    # --- the FIF ---------------------------------------------------------------------------
    types, scales = _mne_types_and_scales(primary)
    info = mne.create_info(list(primary["labels"]), sfreq, types, verbose=False)
    raw = _partial_raw(info, pdir / f"{pkey}.data.bin", pdata.shape, pdata.dtype, scales)
    meas_date = _meas_date(meta, first_ts)
    if meas_date is not None:
        raw.set_meas_date(meas_date)
    raw.info["description"] = json.dumps({"neurodeck_first_lsl_timestamp": first_ts,
                                          "stream": primary["name"]})
    duration = n_times / sfreq
    onsets, descs, extras = [], [], []
    outside = 0
    notes: list[str] = []  # warnings for the user, also kept in the sidecar
    keep, on_samples = onsets_on_samples(np.array([m["onset"] for m in markers]), n_times, sfreq)
    for m, kept, onset in zip(markers, keep, on_samples, strict=True):
        if kept:
            onsets.append(float(onset))
            descs.append(m["name"])
            extras.append({"stream": m["stream"], "code": m["code"]})
        else:
            outside += 1
    if outside:
        notes.append(f"{outside} marker(s) fall outside the samples of {primary['name']!r}: kept in "
                     "the sidecar, not in the FIF's annotations")
    for st in states:
        desc = _STATE_ANNOTATIONS.get(str(st["new"]).upper())
        if desc:
            onsets.append(min(max(st["onset"], 0.0), max(duration - 1.0 / sfreq, 0.0)))
            descs.append(desc)
            extras.append({"stream": st["stream"], "code": ""})
    if onsets:
        raw.set_annotations(mne.Annotations(onsets, [0.0] * len(onsets), descs, extras=extras))
    out.parent.mkdir(parents=True, exist_ok=True)
    parts_before = set(_split_parts(out))
    written.append(out)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*naming conventions.*")
            raw.save(out, overwrite=True, fmt=_fif_format(pdata.dtype), verbose=False)
    except OSError as exc:
        written.extend(set(_split_parts(out)) - parts_before)
        raise _oserror(exc, out, "write the recording") from exc
    written.extend(set(_split_parts(out)) - parts_before)

    # --- extra numeric streams -------------------------------------------------------------
    stream_entries = []
    for s in streams:
        entry = {k: v for k, v in s.items() if k != "key"}
        key = s["key"]
        if s["is_marker"]:
            ms = [m for m in markers if m["stream"] == s["name"]]
            entry.update(role="markers", count=len(ms),
                         first_timestamp=ms[0]["timestamp"] if ms else None,
                         last_timestamp=ms[-1]["timestamp"] if ms else None)
        else:
            ts = loaded.ts[key]
            entry.update(
                role="eeg" if key == pkey else "extra",
                count=int(ts.size),
                first_timestamp=float(ts[0]) if ts.size else None,
                last_timestamp=float(ts[-1]) if ts.size else None,
                effective_srate=float((ts.size - 1) / (ts[-1] - ts[0])) if ts.size > 1 and ts[-1] > ts[0] else None,
                gaps=_gaps(ts, float(s["srate"])),
                truncated_bytes=int(loaded.truncated.get(key, 0)),
            )
            measured = _measured_rate(ts, float(s["srate"]))
            entry["measured_srate"] = measured
            # a replay declares its speed: its stamps then run that many times faster than srate
            speed = float(s.get("replay_speed") or 1.0)
            if speed != 1.0:
                entry["replay_speed"] = speed
            expected = float(s["srate"]) * speed
            if measured is not None and abs(measured / expected - 1) > RATE_TOLERANCE:
                replay = f" (a {speed:g}x replay: {expected:g} Hz expected)" if speed != 1.0 else ""
                notes.append(
                    f"stream {s['name']!r} claims {float(s['srate']):g} Hz{replay} but its timestamps "
                    f"say {measured:.2f} Hz; the {'FIF' if key == pkey else 'file'} is labelled "
                    f"{float(s['srate']):g} Hz: check the amplifier's rate setting")
            if key == pkey:
                entry["file"] = out.name
                entry["fif_channel_types"] = types
                if key in files:  # int64: the FIF's doubles are exact only up to 2**53
                    written.append(files[key])
                    try:
                        np.savez(files[key], data=pdata, timestamps=ts, labels=np.asarray(s["labels"]))
                    except OSError as exc:
                        raise _oserror(exc, files[key], "write") from exc
                    entry["exact_file"] = files[key].name
            else:
                npz = files[key]
                written.append(npz)
                try:
                    np.savez(npz, data=loaded.data[key], timestamps=ts,
                             labels=np.asarray(s["labels"]), units=np.asarray(s["units"]),
                             srate=np.float64(s["srate"]))
                except OSError as exc:
                    raise _oserror(exc, npz, "write") from exc
                entry["file"] = npz.name
        entry["clock_offsets"] = clocks.get(s["name"], [])
        entry["inlet_counters"] = (meta.get("inlet_counters") or {}).get(key, {})
        entry["inlet_error"] = (meta.get("inlet_errors") or {}).get(key)
        entry["state_changes"] = [st for st in states if st["stream"] == s["name"]]
        stream_entries.append(entry)

    sidecar = {
        "format": "neurodeck-recording",
        "version": FORMAT_VERSION,
        "file": out.name,
        "recovered": bool(recovered),
        "started_utc": meta.get("started_utc"),
        "stopped_utc": meta.get("stopped_utc"),
        "finalized_utc": _dt.datetime.now(_dt.UTC).isoformat(),
        "primary_stream": primary["name"],
        "first_timestamp": first_ts,
        "sfreq": sfreq,
        "n_times": int(n_times),
        "timestamps_are": "LSL local clock of the recording machine (time-corrected)",
        "streams": stream_entries,
        "markers": markers,
        "markers_outside_eeg": outside,
        "warnings": notes,
        "marker_clock_offsets": {by_key[k]["name"] if k in by_key else k: v for k, v in foreign.items()},
        "damaged_events_skipped": damaged,
    }
    if "xdf" in files:
        xdf_path = files["xdf"]
        written.append(xdf_path)
        try:
            _write_xdf(xdf_path, streams, loaded)
        except OSError as exc:
            raise _oserror(exc, xdf_path, "write") from exc
        sidecar["xdf_file"] = xdf_path.name
    side = files["sidecar"]
    written.append(side)
    try:
        _write_json_atomic(side, sidecar)
    except OSError as exc:
        raise _oserror(exc, side, "write") from exc

    for note in notes:
        logger.warning("%s: %s", out, note)
    # --- verify, then remove the partial folder ----------------------------------------------
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*naming conventions.*")
            check = mne.io.read_raw_fif(out, preload=False, verbose=False)
    except Exception as exc:
        raise RecordingError(f"written file {str(out)!r} cannot be read back ({exc}); partial data kept in {str(pdir)!r}") from exc
    if check.n_times != n_times or len(check.annotations) != len(onsets):
        raise RecordingError(
            f"written file {str(out)!r} has {check.n_times} samples / {len(check.annotations)} "
            f"annotations; expected {n_times} / {len(onsets)}; partial data kept in {str(pdir)!r}"
        )
    del raw, pdata, loaded  # the memory maps of the partial folder
    if remove_partial:
        shutil.rmtree(pdir, ignore_errors=True)
    logger.info("recording finalized: %s (%d samples, %d markers)", out, n_times, len(markers))
    return out


def _write_xdf(path: Path, streams: list[dict], loaded: Any) -> None:
    """Every stream of the partial folder as XDF (markers and clock offsets from its events)."""
    from neurodeck.acquisition.xdf_writer import write_xdf

    marks: dict[str, tuple[list[float], list[str]]] = {}
    clocks: dict[str, list[tuple[float, float]]] = {}
    for ev in loaded.events:
        if not isinstance(ev, dict):
            continue
        try:
            if ev.get("kind") == "marker":
                t, label = float(ev["t"]), str(ev["label"])
                ts_l, labels = marks.setdefault(str(ev["stream"]), ([], []))
                ts_l.append(t)
                labels.append(label)
            elif ev.get("kind") == "clock":
                clocks.setdefault(str(ev["stream"]), []).append((float(ev["t"]), float(ev["offset"])))
        except (KeyError, TypeError, ValueError):
            continue  # counted as damaged by the FIF pass
    markers = {}
    for key, (ts_l, labels) in marks.items():
        order = np.argsort(ts_l, kind="stable")
        markers[key] = (np.asarray(ts_l)[order], [labels[i] for i in order])
    samples = {s["key"]: (loaded.data[s["key"]], loaded.ts[s["key"]]) for s in streams
               if not s["is_marker"]}
    write_xdf(path, streams, samples, markers, clocks)


def recover(partial_dir: Path | str, out: Path | str | None = None, *, overwrite: bool = False) -> Path:
    """Finalize a partial folder left by a crashed recorder; returns the FIF path.

    An incomplete trailing sample (data or timestamp written only in part) is dropped, as is a
    truncated last line of the events file. The partial folder is removed once the FIF has been
    written and verified. A folder a running recorder holds is refused (see
    :class:`~neurodeck.acquisition.partial.PartialLock`), so is an existing output file unless
    ``overwrite``.
    """
    pdir = Path(partial_dir)
    if not pdir.is_dir() and pdir.with_name(pdir.name + PARTIAL_SUFFIX).is_dir():
        pdir = pdir.with_name(pdir.name + PARTIAL_SUFFIX)
    if out is None and pdir.name.endswith(PARTIAL_SUFFIX) and len(pdir.name) > len(PARTIAL_SUFFIX):
        out = pdir.with_name(pdir.name[: -len(PARTIAL_SUFFIX)])  # next to the folder, even if moved
    return finalize_partial(pdir, out, recovered=True, overwrite=overwrite)


def export_files(fif_path: Path | str, fmt: str, out: Path | str | None = None) -> list[Path]:
    """The files :func:`export_recording` writes (``.edf``; ``.vhdr`` + ``.vmrk`` + ``.eeg``)."""
    fmt = fmt.lower()
    suffix = {"edf": ".edf", "brainvision": ".vhdr"}.get(fmt)
    if suffix is None:
        raise RecordingError(f"export format {fmt!r} unknown; expected 'edf' or 'brainvision'")
    fif_path = Path(fif_path)
    first = Path(out) if out is not None else fif_path.with_name(_stem(fif_path) + suffix)
    if fmt == "brainvision":
        return [first, first.with_suffix(".vmrk"), first.with_suffix(".eeg")]
    return [first]


def export_recording(fif_path: Path | str, fmt: str, out: Path | str | None = None, *,
                     overwrite: bool = False) -> Path:
    """Export a finished FIF recording to EDF or BrainVision (annotations included).

    Parameters
    ----------
    fif_path : Path
        A FIF written by :class:`Recorder` / :func:`recover`.
    fmt : {"edf", "brainvision"}
    out : Path, optional
        Default: ``fif_path`` with ``.edf`` / ``.vhdr``.
    overwrite : bool
        Replace existing files (see :func:`export_files`); otherwise they are refused.

    Notes
    -----
    EDF stores whole data records, so MNE pads the last one: an exported EDF can be up to one
    record longer than the FIF (the sidecar keeps the true sample count). EDF also stores 16-bit
    integers per channel range, so values are quantized; BrainVision keeps float32.
    """
    import mne

    fmt = fmt.lower()
    files = export_files(fif_path, fmt, out)
    if not overwrite:
        check_outputs_free(dict(enumerate(files)))
    fif_path, out = Path(fif_path), files[0]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*naming conventions.*")
            raw = mne.io.read_raw_fif(fif_path, preload=True, verbose=False)
    except (OSError, ValueError) as exc:
        raise RecordingError(f"cannot read {str(fif_path)!r} ({exc}); expected a FIF recording") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.filterwarnings("ignore", message=".*non-voltage units.*")
            mne.export.export_raw(out, raw, fmt=fmt, overwrite=True, verbose=False)
    except OSError as exc:
        raise _oserror(exc, out, "export to") from exc
    return out
