"""Marker -> class mappings: the one parser behind ``--events``, ``--event``, ``--events-file``,
the GUI's mapping field and the demo.

Markers are whatever string another program sent (``T1``, ``769``, ``left_hand``, ``Trial Started``,
``switch,3,0,2``); a mapping says which of them start a trial of which class. Several markers may
map to one class; a marker maps to one class only.

Syntax
------
``--events T1=left_hand,T2=right_hand``
    The simple case: comma-separated ``MARKER=CLASS`` pairs. Markers cannot contain commas here.
``--event MARKER=CLASS`` (repeatable)
    One pair per flag; ``MARKER`` is the exact marker string and may contain commas and spaces
    (``--event 'switch,3,0,2=class_0'``). The pair splits at the **last** ``=`` that is not escaped;
    write ``\\=`` for a literal ``=`` in the class name (or anywhere) and ``\\\\`` for a backslash.
    Spaces around the marker and the class are dropped.
``--events-file FILE.toml``
    A TOML table of marker = class, either at the top level or under ``[events]``::

        [events]
        "switch,3,0,2" = "class_0"
        "switch,3,1,2" = "class_1"

The GUI's mapping field takes the simple syntax, or ``MARKER=CLASS`` items separated by ``;`` or new
lines when a marker contains commas (``switch,3,0,2=a; switch,3,1,2=b``).

Everything given is combined; a marker given twice with different classes is an error.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

#: The EEGMMIDB imagery runs' annotations (the default of ``--events``).
DEFAULT_EVENTS = "T1=left_hand,T2=right_hand"


class EventMappingError(ValueError):
    """A mapping text or file that cannot be read (the message names the bad item)."""


def _split_pair(item: str, where: str) -> tuple[str, str]:
    """``MARKER=CLASS`` at the last unescaped ``=``; escapes resolved in both parts."""
    cut = -1
    i = 0
    while i < len(item):
        if item[i] == "\\":
            i += 2
            continue
        if item[i] == "=":
            cut = i
        i += 1
    if cut < 0:
        raise EventMappingError(f"{where} {item!r} is not MARKER=CLASS (e.g. T1=left_hand)")
    marker, cls = _unescape(item[:cut]).strip(), _unescape(item[cut + 1:]).strip()
    if not marker or not cls:
        raise EventMappingError(
            f"{where} {item!r} has an empty {'marker' if not marker else 'class'}; expected "
            "MARKER=CLASS (e.g. T1=left_hand)"
        )
    return marker, cls


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _add(out: dict[str, str], marker: str, cls: str, where: str) -> None:
    if marker in out and out[marker] != cls:
        raise EventMappingError(
            f"{where}: marker {marker!r} mapped to both {out[marker]!r} and {cls!r}; expected one "
            "class per marker"
        )
    out[marker] = cls


def parse_event(text: str) -> tuple[str, str]:
    """One ``MARKER=CLASS`` pair (the marker may contain commas, spaces and ``\\=``)."""
    return _split_pair(str(text), "--event")


def parse_events(text: str) -> dict[str, str]:
    """The simple comma-separated ``T1=left_hand,T2=right_hand`` form.

    Raises
    ------
    EventMappingError
        For an item that is not ``MARKER=CLASS``; the message suggests ``--event`` when the
        markers look like they contain commas.
    """
    out: dict[str, str] = {}
    for item in str(text).split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise EventMappingError(
                f"--events item {item.strip()!r} of {text!r} is not MARKER=CLASS (e.g. "
                "T1=left_hand); for markers that contain commas use --event 'MARKER=CLASS' once "
                "per marker, or --events-file"
            )
        _add(out, *_split_pair(item, "--events item"), where="--events")
    return out


def load_events_file(path: str | Path) -> dict[str, str]:
    """Marker -> class from a TOML file (top-level table or ``[events]``)."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EventMappingError(f"--events-file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EventMappingError(f"--events-file {str(path)!r} is not readable TOML: {exc}") from None
    table = data.get("events", data)
    if not isinstance(table, dict) or not table:
        raise EventMappingError(
            f"--events-file {str(path)!r} has no marker = class table; expected e.g. [events] "
            '"switch,3,0,2" = "class_0"'
        )
    out: dict[str, str] = {}
    for marker, cls in table.items():
        if not isinstance(cls, str) or not cls.strip() or not str(marker).strip():
            raise EventMappingError(
                f"--events-file {str(path)!r}: entry {marker!r} = {cls!r} invalid; expected "
                "\"MARKER\" = \"CLASS\" (both non-empty strings)"
            )
        _add(out, str(marker).strip(), cls.strip(), where=f"--events-file {str(path)!r}")
    return out


def parse_mapping_text(text: str) -> dict[str, str] | None:
    """The GUI's mapping field: empty -> None (automatic); ``;``/new lines or commas separate.

    With a ``;`` or a new line in the text, only those separate items (markers may then contain
    commas); otherwise commas do (the simple form).
    """
    text = str(text).strip()
    if not text:
        return None
    if ";" not in text and "\n" not in text:
        return parse_events(text)
    out: dict[str, str] = {}
    for item in text.replace("\n", ";").split(";"):
        if item.strip():
            _add(out, *_split_pair(item, "mapping item"), where="mapping")
    return out


def format_mapping(mapping: Mapping[str, str]) -> str:
    """Text the GUI's field parses back to ``mapping`` (``;`` separated if a marker has a comma)."""
    def esc(s: str) -> str:
        return str(s).replace("\\", "\\\\").replace("=", "\\=")

    sep = "; " if any(("," in str(k) or ";" in str(k)) for k in mapping) else ", "
    return sep.join(f"{esc(k)}={esc(v)}" for k, v in mapping.items())


def markers_in(paths: Iterable[str | Path]) -> dict[str, int]:
    """Every marker found in recordings and how often, in order of first appearance.

    Parameters
    ----------
    paths : iterable of path
        Recordings :func:`neurodeck.acquisition.io.load_recording` reads.

    Returns
    -------
    counts : dict of str to int
        Marker -> occurrences over all files (``BAD_*`` / ``EDGE_*`` and stream loss/recovery
        annotations left out).
    """
    from neurodeck.acquisition.io import load_recording

    counts: dict[str, int] = {}
    for path in paths:
        raw = load_recording(path)
        for d in raw.annotations.description:
            d = str(d)
            if d.upper().startswith(("BAD", "EDGE")) or d in ("stream_lost", "stream_recovered"):
                continue
            counts[d] = counts.get(d, 0) + 1
    return counts


def event_mapping(
    events: str | None = None,
    event: Iterable[str] | None = None,
    events_file: str | Path | None = None,
    *,
    default: str | None = DEFAULT_EVENTS,
    min_classes: int = 2,
) -> dict[str, str]:
    """Combine ``--events``, every ``--event`` and ``--events-file`` into one mapping.

    Parameters
    ----------
    events : str or None
        The simple form; None when not given.
    event : iterable of str
        ``MARKER=CLASS`` items.
    events_file : path or None
    default : str or None
        Used when nothing is given.
    min_classes : int
        Fewest distinct classes accepted.

    Returns
    -------
    mapping : dict of str to str
        Marker -> class, in the order given.

    Raises
    ------
    EventMappingError
    """
    out: dict[str, str] = {}
    given = False
    if events_file is not None:
        for k, v in load_events_file(events_file).items():
            _add(out, k, v, "--events-file")
        given = True
    for item in event or ():
        _add(out, *parse_event(item), where="--event")
        given = True
    if events is not None:
        for k, v in parse_events(events).items():
            _add(out, k, v, "--events")
        given = True
    if not given and default is not None:
        out = parse_events(default)
    n = len(set(out.values()))
    if n < min_classes:
        raise EventMappingError(
            f"event mapping {out!r} names {n} class(es); expected at least {min_classes} "
            "(e.g. --events T1=left_hand,T2=right_hand)"
        )
    return out


def add_event_arguments(parser, *, default: str | None = DEFAULT_EVENTS) -> None:
    """Add ``--events``, ``--event`` and ``--events-file`` to an argparse parser."""
    parser.add_argument("--events", default=None, metavar="M=C,M=C",
                        help="marker=class pairs, comma separated (default "
                        f"{default or 'none'}: EEGMMIDB runs 4/8/12); markers without commas")
    parser.add_argument("--event", action="append", default=[], metavar="MARKER=CLASS",
                        help="one marker=class pair, repeatable; MARKER is the exact marker "
                        "string and may contain commas and spaces (split at the last '='; write "
                        r"\= for a literal '=')")
    parser.add_argument("--events-file", default=None, metavar="FILE.toml",
                        help='TOML table of "MARKER" = "CLASS" (top level or under [events])')


def mapping_from_args(args, *, default: str | None = DEFAULT_EVENTS, min_classes: int = 2) -> dict[str, str]:
    """:func:`event_mapping` of the flags :func:`add_event_arguments` added."""
    return event_mapping(getattr(args, "events", None), getattr(args, "event", None),
                         getattr(args, "events_file", None), default=default,
                         min_classes=min_classes)


__all__: Sequence[str] = [
    "DEFAULT_EVENTS", "EventMappingError", "add_event_arguments", "event_mapping",
    "format_mapping", "load_events_file", "mapping_from_args", "markers_in", "parse_event",
    "parse_events",
    "parse_mapping_text",
]
