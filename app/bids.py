"""Export a session's recordings as a BIDS dataset (mne-bids), Qt-free.

``neurodeck export-bids SESSION_DIR OUT_DIR`` and the GUI's *Export session as BIDS* call
:func:`export_session`. Every finished recording ``recordings/<kind>-runNN_raw.fif`` becomes
``sub-<subject>/ses-<session>/eeg/sub-…_ses-…_task-<kind>_run-NN_eeg.vhdr`` (BrainVision: BIDS
does not take FIF for EEG), with

* ``events.tsv`` from the recording's annotations (every marker, whatever its vocabulary, under
  ``trial_type``; stream loss/recovery too). ``trial_type`` is the marker exactly as received
  (``switch,3,0,2`` stays ``switch,3,0,2``: pandas and any reader that follows BIDS read it back
  unchanged), except a marker that a TSV cell cannot hold as it is (a ``%``, a tab or line
  break, leading or trailing blanks, the text ``n/a``, which BIDS reserves for "no value"):
  that one is percent-encoded (``urllib.parse.quote`` of those characters; every encoded cell
  holds a ``%`` and no verbatim one does, so :func:`marker_from_bids` knows which to decode).
  ``events.json`` maps every ``value`` code to its exact marker (``value`` -> ``Levels``): the
  mapping to use with mne-bids' reader, which (0.20: ``tsv_handler._from_tsv``, PR #1599)
  rewrites every "digit,digit" of a TSV cell as a decimal point (``switch,3,0,2`` ->
  ``switch,3.0,2``)::

      raw, ids = mne_bids.read_raw_bids(bids_path, return_event_dict=True)
      levels = json.load(open(events_json))["value"]["Levels"]
      raw.annotations.rename({d: levels[str(v)] for d, v in ids.items()})

* ``channels.tsv`` with each channel's type, unit and status (bad channels from the recording);
* ``eeg.json`` with the line frequency (the ``line_freq`` argument) and the recording's device
  stream name.

Subject, session and task names become BIDS labels (letters and digits only).
"""
from __future__ import annotations

import csv
import json
import logging
import re
import urllib.parse
import warnings
from pathlib import Path

from neurodeck.app.errors import UserError

logger = logging.getLogger(__name__)

_RUN_RE = re.compile(r"^(?P<kind>.+?)-run(?P<run>\d+)_raw\.fif$")
#: characters a TSV cell cannot hold as they are (``%`` is the escape itself)
_UNSAFE = re.compile(r"[%\t\n\r]")
_TRIAL_TYPE_NOTE = (
    "The marker exactly as received, except a marker holding '%', a tab or a line break, "
    "leading or trailing blanks, or equal to 'n/a': those characters are percent-encoded "
    "(a cell holding '%' is encoded; urllib.parse.unquote gives the exact marker; no other "
    "cell holds '%'). value -> Levels gives every row's exact marker from its value code "
    "(mne-bids 0.20 reads 'digit,digit' in any TSV cell as a decimal point, e.g. "
    "'switch,3,0,2' as 'switch,3.0,2': map its event ids through value -> Levels).")
_VALUE_NOTE = ("The event code of the row's marker; Levels gives the exact marker (as received, "
               "not encoded) of each code.")


def _pct(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def marker_to_bids(marker: str) -> str:
    """The ``trial_type`` text of a marker: the marker itself where a TSV cell can hold it,
    else percent-encoded (see the module docstring); :func:`marker_from_bids` inverts it.

    >>> marker_to_bids("switch,3,0,2"), marker_to_bids("left hand"), marker_to_bids("n/a")
    ('switch,3,0,2', 'left hand', 'n%2Fa')
    """
    if marker == "n/a":
        return "n%2Fa"
    text = _UNSAFE.sub(lambda m: _pct(m.group()), marker)
    i, j = len(text) - len(text.lstrip()), len(text.rstrip())  # blanks readers strip
    if j <= i:
        return "".join(map(_pct, text))
    return "".join(map(_pct, text[:i])) + text[i:j] + "".join(map(_pct, text[j:]))


def marker_from_bids(text: str) -> str:
    """The exact marker of a ``trial_type`` cell written by :func:`marker_to_bids`."""
    return urllib.parse.unquote(text) if "%" in text else text


def bids_label(text: str, what: str = "label") -> str:
    """Letters and digits of ``text`` (what BIDS allows in an entity label)."""
    label = re.sub(r"[^A-Za-z0-9]", "", str(text))
    if not label:
        raise UserError(f"{what} {text!r} has no letters or digits; cannot name it in BIDS")
    return label


def session_recordings(session_dir: Path) -> list[tuple[Path, str, int]]:
    """``(file, task, run)`` of every finished FIF recording of a session, in name order."""
    out = []
    for p in sorted((session_dir / "recordings").glob("*_raw.fif")):
        m = _RUN_RE.match(p.name)
        if m:
            out.append((p, bids_label(m["kind"], "recording kind"), int(m["run"])))
        else:
            out.append((p, bids_label(p.name[: -len("_raw.fif")], "recording name"), 1))
    return out


def export_session(session_dir: str | Path, out_dir: str | Path, *, line_freq: float | None = 50.0,
                   overwrite: bool = False) -> list[Path]:
    """Write a session's recordings as a BIDS dataset.

    Parameters
    ----------
    session_dir : path
        A neurodeck session folder (holding ``config.toml`` and ``recordings/``).
    out_dir : path
        BIDS root (created; may already hold other subjects or sessions).
    line_freq : float or None
        Power-line frequency recorded in ``eeg.json`` (BIDS requires the field; None writes "n/a").
    overwrite : bool
        Replace files of this subject/session that exist.

    Returns
    -------
    written : list of Path
        The data files written (``.vhdr``), one per recording.

    Raises
    ------
    UserError
        Not a session, no finished recording, or a file that exists (without ``overwrite``).
    """
    import mne
    import numpy as np
    from mne_bids import BIDSPath, make_dataset_description, write_raw_bids

    from neurodeck.app.session import Session

    session = Session.open(session_dir)
    recs = session_recordings(session.path)
    if not recs:
        raise UserError(f"session {str(session.path)!r} has no finished recording "
                        "(recordings/*_raw.fif); record or recover one first")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    sub = bids_label(session.subject, "subject")
    ses = bids_label(session.name, "session")
    if not (root / "dataset_description.json").exists():
        make_dataset_description(path=root, name="neurodeck recordings", dataset_type="raw",
                                 generated_by=[{"Name": "neurodeck"}], overwrite=False)
    written = []
    for path, task, run in recs:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*naming conventions.*")
            raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
        raw.info["line_freq"] = line_freq
        ann = raw.annotations.copy()  # a new array: the old one has fixed-width strings
        ann.description = np.array([marker_to_bids(d) for d in ann.description], dtype=str)
        raw.set_annotations(ann)
        bp = BIDSPath(subject=sub, session=ses, task=task, run=run, datatype="eeg", root=root)
        if bp.fpath.with_suffix(".vhdr").exists() and not overwrite:
            raise UserError(f"{bp.fpath.with_suffix('.vhdr')} exists; pass --overwrite to replace it")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mne-bids' notes on converting FIF to BrainVision
            out = write_raw_bids(raw, bp, format="BrainVision", allow_preload=True,
                                 overwrite=overwrite, verbose="error")
        _note_trial_type(out.copy().update(suffix="events", extension=".json"))
        written.append(out.fpath)
        logger.info("%s -> %s", path.name, out.fpath)
    return written


def _note_trial_type(events_json) -> None:
    """Describe ``trial_type`` in the recording's events.json, and map every ``value`` code
    (as written in events.tsv) to its exact marker."""
    path = Path(events_json.fpath)
    levels: dict[str, str] = {}
    with open(path.with_suffix(".tsv"), encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for row in rows:
            marker = marker_from_bids(row["trial_type"])
            if levels.setdefault(row["value"], marker) != marker:  # mne-bids' codes are per text
                raise RuntimeError(f"events.tsv value {row['value']} stands for two markers "
                                   f"{levels[row['value']]!r} and {marker!r}")
    meta = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for column, note, extra in (("trial_type", _TRIAL_TYPE_NOTE, {}),
                                ("value", _VALUE_NOTE, {"Levels": levels})):
        entry = meta.get(column) if isinstance(meta.get(column), dict) else {}
        entry.update({"Description": note, **extra})
        meta[column] = entry
    path.write_text(json.dumps(meta, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")
