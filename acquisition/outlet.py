"""LSL outlets: EEG-like data with channel metadata, markers, and decoder decisions.

Every outlet neurodeck creates goes through :func:`make_stream_info` so channel labels, units and
types always sit in the stream description the same way (``desc/channels/channel/label``), which is
what LabRecorder, OpenViBE and MNE-LSL read.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pylsl

from neurodeck.acquisition.errors import AcquisitionError

logger = logging.getLogger(__name__)

IRREGULAR_RATE = pylsl.IRREGULAR_RATE

_FORMATS = {
    "float32": pylsl.cf_float32,
    "double64": pylsl.cf_double64,
    "int32": pylsl.cf_int32,
    "int16": pylsl.cf_int16,
    "string": pylsl.cf_string,
}


def make_stream_info(
    name: str,
    stype: str,
    labels: Sequence[str],
    srate: float,
    *,
    fmt: str = "float32",
    source_id: str = "",
    units: Sequence[str] | str | None = None,
    ch_types: Sequence[str] | str | None = None,
    manufacturer: str = "neurodeck",
    replay_speed: float = 1.0,
) -> pylsl.StreamInfo:
    """Build a ``pylsl.StreamInfo`` with one ``<channel>`` entry per label.

    Parameters
    ----------
    name, stype : str
        Stream name and type (``"EEG"``, ``"Markers"``, ``"Control"``, ...).
    labels : sequence of str, length n_channels
        Channel labels.
    srate : float
        Nominal rate in Hz, or ``IRREGULAR_RATE`` (0) for event streams.
    fmt : {"float32", "double64", "int32", "int16", "string"}
        Channel format.
    units, ch_types : str or sequence of str, optional
        Per-channel unit (e.g. ``"microvolts"``) and type (e.g. ``"EEG"``); a single string applies
        to all channels.
    replay_speed : float
        A replay faster or slower than real time declares its factor here
        (``desc/acquisition/replay_speed``): its timestamps then advance ``replay_speed`` times
        faster than ``srate`` says, and a recorder must not take that for a wrong rate.
    """
    labels = [str(lab) for lab in labels]
    if not name:
        raise AcquisitionError("stream name is empty; expected a non-empty name")
    if not labels:
        raise AcquisitionError(f"stream {name!r} has no channels; expected at least one label")
    if fmt not in _FORMATS:
        raise AcquisitionError(f"channel format {fmt!r} unknown; expected one of {sorted(_FORMATS)}")
    if not np.isfinite(srate) or srate < 0:
        raise AcquisitionError(f"sampling rate {srate!r} invalid; expected >= 0 Hz (0 = irregular)")
    info = pylsl.StreamInfo(name, stype, len(labels), float(srate), _FORMATS[fmt], source_id)
    n = len(labels)
    units = [units] * n if isinstance(units, str) or units is None else list(units)
    ch_types = [ch_types] * n if isinstance(ch_types, str) or ch_types is None else list(ch_types)
    chans = info.desc().append_child("channels")
    for label, unit, ctype in zip(labels, units, ch_types, strict=True):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        if unit:
            ch.append_child_value("unit", unit)
        if ctype:
            ch.append_child_value("type", ctype)
    acq = info.desc().append_child("acquisition")
    acq.append_child_value("manufacturer", manufacturer)
    if replay_speed != 1.0:
        acq.append_child_value("replay_speed", repr(float(replay_speed)))
    return info


class DataOutlet:
    """Push multichannel samples (EEG, simulated or replayed data) to LSL.

    Parameters
    ----------
    info : pylsl.StreamInfo
        From :func:`make_stream_info`.
    chunk_size : int
        Preferred chunk size hint for consumers (0 = sender decides).
    """

    def __init__(self, info: pylsl.StreamInfo, chunk_size: int = 0, max_buffered: int = 360):
        self.info = info
        self.n_channels = info.channel_count()
        # integer streams are pushed as their own type (through float32, int32 > 2**24 is inexact)
        self._dtype = {pylsl.cf_int32: np.int32, pylsl.cf_int16: np.int16, pylsl.cf_int8: np.int8,
                       pylsl.cf_int64: np.int64}.get(info.channel_format())
        self._outlet = pylsl.StreamOutlet(info, chunk_size, max_buffered)

    def push_chunk(self, data: np.ndarray, timestamp: float | None = None) -> None:
        """Push ``data`` of shape (n_samples, n_channels).

        ``timestamp`` is the LSL time of the *last* sample (liblsl back-dates the others by the
        nominal rate); ``None`` means now.
        """
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != self.n_channels:
            raise AcquisitionError(
                f"chunk shape {data.shape} invalid; expected (n_samples, {self.n_channels})"
            )
        if data.shape[0] == 0:
            return
        data = np.ascontiguousarray(data, dtype=self._dtype or (np.float32 if data.dtype != np.float64 else np.float64))
        if timestamp is None:
            self._outlet.push_chunk(data)
        else:
            self._outlet.push_chunk(data, timestamp)

    def push_sample(self, sample: Sequence[float], timestamp: float | None = None) -> None:
        """Push one sample with its own timestamp (``None`` = now)."""
        if len(sample) != self.n_channels:
            raise AcquisitionError(
                f"sample has {len(sample)} values; expected {self.n_channels}"
            )
        fmt = self.info.channel_format()
        cast = float if fmt in (pylsl.cf_float32, pylsl.cf_double64) else int
        self._outlet.push_sample([cast(v) for v in sample], 0.0 if timestamp is None else timestamp)

    def have_consumers(self) -> bool:
        return self._outlet.have_consumers()

    def wait_for_consumers(self, timeout: float) -> bool:
        return self._outlet.wait_for_consumers(timeout)

    def close(self) -> None:
        """Destroy the outlet so inlets see the stream go away."""
        self._outlet = None  # liblsl destroys the outlet when the last reference goes


class MarkerOutlet:
    """A string marker stream (irregular rate, one channel), e.g. Graz cue codes."""

    def __init__(self, name: str, source_id: str = "", stype: str = "Markers"):
        info = make_stream_info(name, stype, ["Marker"], IRREGULAR_RATE, fmt="string", source_id=source_id)
        self.info = info
        self._outlet = pylsl.StreamOutlet(info)

    def push(self, label: str | int, timestamp: float | None = None) -> float:
        """Push one marker; returns the LSL timestamp it carries."""
        ts = pylsl.local_clock() if timestamp is None else float(timestamp)
        self._outlet.push_sample([str(label)], ts)
        return ts

    def have_consumers(self) -> bool:
        return self._outlet.have_consumers()

    def wait_for_consumers(self, timeout: float) -> bool:
        return self._outlet.wait_for_consumers(timeout)

    def close(self) -> None:
        self._outlet = None


class DecisionOutlet:
    """Decoder output: class probabilities or continuous values, one channel per label.

    Each decision carries as its timestamp the LSL timestamp of the last EEG sample of the window it
    decided on, so consumers can align decisions with the EEG and measure latency.
    """

    def __init__(self, name: str, labels: Sequence[str], source_id: str = "", stype: str = "Control"):
        info = make_stream_info(
            name, stype, labels, IRREGULAR_RATE, fmt="float32", source_id=source_id, ch_types="decision"
        )
        self.info = info
        self.labels = list(labels)
        self._outlet = pylsl.StreamOutlet(info)

    def push(self, values: Sequence[float] | np.ndarray, timestamp: float) -> None:
        values = np.asarray(values, dtype=np.float32).ravel()
        if values.size != len(self.labels):
            raise AcquisitionError(
                f"decision has {values.size} values; expected {len(self.labels)} ({self.labels})"
            )
        self._outlet.push_sample(values.tolist(), float(timestamp))

    def have_consumers(self) -> bool:
        return self._outlet.have_consumers()

    def wait_for_consumers(self, timeout: float) -> bool:
        return self._outlet.wait_for_consumers(timeout)

    def close(self) -> None:
        self._outlet = None


def local_clock() -> float:
    """LSL's local clock (seconds), the time base of every timestamp in neurodeck."""
    return pylsl.local_clock()
