"""Discover and describe the LSL streams on the network.

:func:`list_streams` lists everything visible, :func:`resolve_stream` picks one stream by name,
type and/or source id, and :class:`StreamDescription` is the plain, immutable description
(including channel labels and units from ``desc/channels/channel``) that the rest of neurodeck
passes around.

Note that resolve results only carry the *short* stream info (no ``desc``); the channel labels
live in the full info, which needs an inlet (:meth:`pylsl.StreamInlet.info`). Both
:func:`list_streams` and :func:`full_info` take care of that.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pylsl

from neurodeck.acquisition.errors import AcquisitionError, AmbiguousStreamError, StreamNotFoundError

logger = logging.getLogger(__name__)

#: pylsl channel format constant -> neurodeck's format name (same names as ``make_stream_info``).
FORMAT_NAMES = {
    pylsl.cf_float32: "float32",
    pylsl.cf_double64: "double64",
    pylsl.cf_string: "string",
    pylsl.cf_int32: "int32",
    pylsl.cf_int16: "int16",
    pylsl.cf_int8: "int8",
    pylsl.cf_int64: "int64",
    pylsl.cf_undefined: "undefined",
}

NUMERIC_FORMATS = ("float32", "double64", "int32", "int16", "int8", "int64")


def _channel_field(info: pylsl.StreamInfo, field: str, n_channels: int) -> tuple[str, ...] | None:
    """Values of ``desc/channels/channel/<field>``; None unless exactly one per channel."""
    values: list[str] = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty() and len(values) <= n_channels:
        values.append(ch.child_value(field))
        ch = ch.next_sibling("channel")
    if len(values) != n_channels:
        return None
    return tuple(values)


@dataclass(frozen=True)
class StreamDescription:
    """Immutable description of one LSL stream.

    Attributes
    ----------
    name, type : str
        Stream name and content type (``"EEG"``, ``"Markers"``, ...).
    n_channels : int
        Channel count.
    srate : float
        Nominal sampling rate in Hz; 0 for irregular streams (markers, decisions).
    channel_format : str
        ``"float32"``, ``"double64"``, ``"string"``, ``"int32"``, ``"int16"``, ``"int8"``,
        ``"int64"``.
    source_id, hostname, uid : str
        Source id (may be empty), host the outlet runs on, and the outlet's unique id (changes
        each time an outlet is created, even for the same source id).
    labels : tuple of str, length n_channels
        From ``desc/channels/channel/label``; ``"ch1"`` .. ``"chN"`` when absent or incomplete.
    units : tuple of str, length n_channels
        From ``desc/channels/channel/unit``; empty strings when absent.
    """

    name: str
    type: str
    n_channels: int
    srate: float
    channel_format: str
    source_id: str = ""
    hostname: str = ""
    uid: str = ""
    labels: tuple[str, ...] = ()
    units: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.n_channels < 1:
            raise AcquisitionError(
                f"stream {self.name!r} has {self.n_channels} channels; expected at least 1"
            )
        if not self.labels:
            object.__setattr__(self, "labels", tuple(f"ch{i + 1}" for i in range(self.n_channels)))
        if not self.units:
            object.__setattr__(self, "units", ("",) * self.n_channels)
        if len(self.labels) != self.n_channels or len(self.units) != self.n_channels:
            raise AcquisitionError(
                f"stream {self.name!r}: {len(self.labels)} labels / {len(self.units)} units for "
                f"{self.n_channels} channels; expected one per channel"
            )

    @classmethod
    def from_info(cls, info: pylsl.StreamInfo) -> StreamDescription:
        """Describe ``info``.

        Pass the *full* info (``StreamInlet.info()`` or :func:`full_info`) to get the channel
        labels; a resolve result has no ``desc`` and gives the ``ch1..chN`` fallback.
        """
        n = int(info.channel_count())
        labels = _channel_field(info, "label", n)
        if labels is None or not all(labels):
            labels = tuple(f"ch{i + 1}" for i in range(n))
        units = _channel_field(info, "unit", n) or ("",) * n
        return cls(
            name=info.name(),
            type=info.type(),
            n_channels=n,
            srate=float(info.nominal_srate()),
            channel_format=FORMAT_NAMES.get(info.channel_format(), str(info.channel_format())),
            source_id=info.source_id(),
            hostname=info.hostname(),
            uid=info.uid(),
            labels=tuple(labels),
            units=tuple(units),
        )

    @property
    def is_marker(self) -> bool:
        """True for event streams: string format, or irregular rate with one channel."""
        return self.channel_format == "string" or (self.srate == 0 and self.n_channels == 1)

    @property
    def is_numeric(self) -> bool:
        """True when samples are numbers (what :class:`acquisition.inlet.Inlet` reads)."""
        return self.channel_format in NUMERIC_FORMATS

    def __str__(self) -> str:
        rate = "irregular" if self.srate == 0 else f"{self.srate:g} Hz"
        return (
            f"{self.name!r} ({self.type}, {self.n_channels} ch, {rate}, {self.channel_format}, "
            f"source_id={self.source_id!r}, host={self.hostname!r})"
        )


def full_info(info: pylsl.StreamInfo, timeout: float = 2.0) -> pylsl.StreamInfo:
    """The full info (with ``desc``) of a resolved stream, via a temporary inlet.

    Raises
    ------
    AcquisitionError
        If the stream does not answer within ``timeout`` seconds or is gone.
    """
    box = [pylsl.StreamInlet(info, max_buflen=1, recover=False)]
    try:
        return box[0].info(timeout=timeout)
    except (pylsl.util.TimeoutError, pylsl.util.LostError) as exc:
        raise AcquisitionError(
            f"stream {info.name()!r} (source_id={info.source_id()!r}) did not send its full "
            f"description within {timeout} s: {exc}"
        ) from exc
    finally:
        _dispose(box)


def _resolve_all(timeout: float) -> list[pylsl.StreamInfo]:
    return _resolve_query(None, 0, timeout)


def list_streams(timeout: float = 1.0) -> list[StreamDescription]:
    """Every LSL stream visible within ``timeout`` seconds, with full descriptions.

    Streams that vanish while their description is read are skipped (logged). Sorted by name,
    then source id.
    """
    infos = _resolve_all(timeout)

    def describe(info: pylsl.StreamInfo) -> StreamDescription | None:
        try:
            return StreamDescription.from_info(full_info(info, timeout=max(timeout, 1.0)))
        except AcquisitionError as exc:
            logger.warning("skipping stream %r: %s", info.name(), exc)
            return None

    if not infos:
        return []
    # one temporary inlet per stream, in parallel: a vanished stream costs one timeout, not n
    with ThreadPoolExecutor(max_workers=min(16, len(infos))) as pool:
        out = [d for d in pool.map(describe, infos) if d is not None]
    return sorted(out, key=lambda d: (d.name, d.source_id, d.uid))


def _quote(value: str) -> str:
    if "'" in value:
        raise AcquisitionError(f"stream property {value!r} contains a quote; not supported in a query")
    return f"'{value}'"


def _query(name: str | None, stype: str | None, source_id: str | None) -> str:
    parts = []
    if name is not None:
        parts.append(f"name={_quote(name)}")
    if stype is not None:
        parts.append(f"type={_quote(stype)}")
    if source_id is not None:
        parts.append(f"source_id={_quote(source_id)}")
    return " and ".join(parts)


def find_streams(
    name: str | None = None,
    stype: str | None = None,
    source_id: str | None = None,
    timeout: float = 1.0,
    minimum: int = 0,
) -> list[pylsl.StreamInfo]:
    """Resolve results (short infos, no desc) matching every given property.

    Waits the whole ``timeout`` unless ``minimum`` matches arrived earlier (``minimum=0``: wait
    the full timeout to collect all matches). Newest outlet first (``created_at``).
    """
    query = _query(name, stype, source_id)
    if not query:
        found = _resolve_all(timeout)
    else:
        found = _resolve_query(query, minimum, timeout)
    return sorted(found, key=lambda i: -i.created_at())


def _resolve_query(query: str | None, minimum: int, timeout: float,
                   settle: float = 0.0) -> list[pylsl.StreamInfo]:
    """Streams matching ``query`` (None: all streams), polling a ContinuousResolver.

    liblsl's one-shot ``resolve_bypred`` was measured here to overrun its timeout by 5 s in about
    half of the calls that find nothing, which would freeze an inlet's recovery loop and
    ``stop()``; hence this poll, and the resolver is destroyed off-thread (:func:`_dispose`)
    because its destructor sometimes stalls the same way. With ``settle`` > 0 the poll goes on
    that long after ``minimum`` streams answered (even past ``timeout``), so that further
    streams matching the same query answer too.
    """
    forget = max(1.0, timeout)
    if query is None:
        resolver = pylsl.ContinuousResolver(forget_after=forget)
    else:
        resolver = pylsl.ContinuousResolver(pred=query, forget_after=forget)
    t0 = time.monotonic()
    deadline = t0 + timeout
    found = resolver.results()
    settled_at = None
    while time.monotonic() < deadline or settled_at is not None:
        if minimum > 0 and len(found) >= minimum:
            if settled_at is None:
                settled_at = time.monotonic() + settle
            if time.monotonic() >= settled_at:
                break
        time.sleep(0.01 if settled_at is not None else min(0.01, max(0.0, deadline - time.monotonic())))
        found = resolver.results()
    logger.debug("resolve %s: %d stream(s) in %.3f s", query or "<all>", len(found), time.monotonic() - t0)
    box = [resolver]
    del resolver  # `box` now holds the only reference
    _dispose(box)
    return list(found)


def _dispose(box: list) -> None:
    """Close and drop the only references (held in ``box``) to liblsl objects on a daemon thread.

    Destroying a liblsl resolver sometimes blocks for exactly 5 s (measured here with liblsl
    1.18.0b6, likely the same stall that makes ``resolve_bypred`` overrun its timeout); no
    caller should wait for that.
    """

    def drop() -> None:
        for obj in box:
            try:
                if isinstance(obj, pylsl.StreamInlet):
                    obj.close_stream()
            except Exception:  # noqa: BLE001 - closing a dead inlet must not raise
                logger.debug("close_stream failed", exc_info=True)
        box.clear()  # the only references: liblsl's destructors run here

    threading.Thread(target=drop, name="neurodeck-lsl-resolver-cleanup", daemon=True).start()


#: Seconds :func:`resolve_stream` (``unique=True``) waits for further matches after the first.
UNIQUE_SETTLE = 0.5


def resolve_stream(
    name: str | None = None,
    stype: str | None = None,
    source_id: str | None = None,
    timeout: float = 5.0,
    unique: bool = False,
) -> pylsl.StreamInfo:
    """Find one stream by name, type and/or source id (all given must match).

    Returns the first match as soon as one answers (the newest if several answer together).
    With ``unique`` it waits :data:`UNIQUE_SETTLE` s more for other matches and refuses a choice
    between several (what a user asking for "the stream NAME" must decide). The result is a
    resolve result (no desc); open an inlet, or call :func:`full_info`, for the channel labels.

    Raises
    ------
    StreamNotFoundError
        Nothing matched within ``timeout``; the message names the query and lists the streams
        that were found instead.
    AmbiguousStreamError
        ``unique`` and several streams match; the message lists them (name, type, source id,
        host) and says how to pick one.
    """
    if name is None and stype is None and source_id is None:
        raise AcquisitionError("resolve_stream needs a name, a type or a source id; got none")
    query = _query(name, stype, source_id)
    found = _resolve_query(query, 1, timeout, settle=UNIQUE_SETTLE if unique else 0.0)
    if found:
        uids = {i.uid() for i in found}
        if unique and len(uids) > 1:
            listing = "; ".join(
                f"{i.name()!r} (type {i.type()!r}, source_id {i.source_id()!r}, host {i.hostname()!r})"
                for i in sorted(found, key=lambda i: (i.name(), i.source_id(), i.hostname())))
            raise AmbiguousStreamError(
                f"{len(uids)} LSL streams match {query}: {listing}; expected one: pick it by its "
                "source id (--source-id) or give the streams distinct names")
        if len(found) > 1:
            logger.info("%d streams match %s; taking the newest", len(found), query)
        return max(found, key=lambda i: i.created_at())
    others = _resolve_all(min(timeout, 1.0))
    if others:
        listing = "; ".join(
            f"{i.name()!r} (type {i.type()!r}, source_id {i.source_id()!r})"
            for i in sorted(others, key=lambda i: i.name())[:20]
        )
        more = f" (+{len(others) - 20} more)" if len(others) > 20 else ""
        seen = f"found instead: {listing}{more}"
    else:
        seen = "no LSL streams are visible at all"
    raise StreamNotFoundError(f"no LSL stream with {query} within {timeout:g} s; {seen}")
