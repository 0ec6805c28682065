"""Export a session's recordings as a BIDS dataset (mne-bids), Qt-free.

``neurodeck export-bids SESSION_DIR OUT_DIR`` and the GUI's *Export session as BIDS* call
:func:`export_session`. Every finished recording ``recordings/<kind>-runNN_raw.fif`` becomes
``sub-<subject>/ses-<session>/eeg/sub-…_ses-…_task-<kind>_run-NN_eeg.vhdr`` (BrainVision: BIDS
does not take FIF for EEG), with

* ``events.tsv`` from the recording's annotations (every marker, whatever its vocabulary, under
  ``trial_type``; stream loss/recovery too);
* ``channels.tsv`` with each channel's type, unit and status (bad channels from the recording);
* ``eeg.json`` with the line frequency (the ``line_freq`` argument) and the recording's device
  stream name.

Subject, session and task names become BIDS labels (letters and digits only).
"""
from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

from neurodeck.app.errors import UserError

logger = logging.getLogger(__name__)

_RUN_RE = re.compile(r"^(?P<kind>.+?)-run(?P<run>\d+)_raw\.fif$")


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
        bp = BIDSPath(subject=sub, session=ses, task=task, run=run, datatype="eeg", root=root)
        if bp.fpath.with_suffix(".vhdr").exists() and not overwrite:
            raise UserError(f"{bp.fpath.with_suffix('.vhdr')} exists; pass --overwrite to replace it")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mne-bids' notes on converting FIF to BrainVision
            out = write_raw_bids(raw, bp, format="BrainVision", allow_preload=True,
                                 overwrite=overwrite, verbose="error")
        written.append(out.fpath)
        logger.info("%s -> %s", path.name, out.fpath)
    return written
