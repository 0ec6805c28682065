"""`neurodeck export-bids`: a session's recordings as BIDS, read back by mne-bids' own reader."""
from __future__ import annotations

import collections
import csv
import json
import urllib.parse

import mne
import numpy as np
import pytest

from neurodeck.app.bids import marker_from_bids, marker_to_bids
from neurodeck.app.session import Session

pytest.importorskip("mne_bids")


def _session_with_recordings(root, asset_edfs):
    """A session holding two runs as the recorder writes them (FIF, volts, markers, one bad)."""
    sess = Session.create(root, "S-01", "day_1")
    for k, edf in enumerate(asset_edfs[:2]):
        raw = mne.io.read_raw_edf(edf, preload=True, verbose="error").crop(0, 20)
        raw.pick(raw.ch_names[:8])
        raw.annotations.append([1.0], [0.0], ["switch,3,0,2"])  # a marker name with commas
        raw.info["bads"] = [raw.ch_names[3]] if k == 0 else []
        raw.save(sess.new_recording_path("calibration"), verbose="error")
    return sess, raw


def test_export_bids_reads_back_with_mne_bids(tmp_path, asset_edfs, cli):
    from mne_bids import BIDSPath, read_raw_bids

    sess, _ = _session_with_recordings(tmp_path / "sessions", asset_edfs)
    out = tmp_path / "bids"
    proc = cli("export-bids", sess.path, out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("wrote ") == 2, proc.stdout
    for run, src in zip((1, 2), sess.recordings(), strict=False):
        bp = BIDSPath(subject="S01", session="day1", task="calibration", run=run, datatype="eeg",
                      root=out)
        got = read_raw_bids(bp, verbose="error")
        ref = mne.io.read_raw_fif(src, preload=True, verbose="error")
        assert got.ch_names == ref.ch_names and got.info["sfreq"] == ref.info["sfreq"]
        # BrainVision stores 0.1 uV resolution by default: data equal to that precision
        np.testing.assert_allclose(got.get_data(), ref.get_data(), rtol=0, atol=0.06e-6)
        assert got.info["bads"] == ref.info["bads"]
        # mne-bids 0.20's reader rewrites every "digit,digit" of a TSV cell as a decimal point
        # ('switch,3,0,2' -> 'switch,3.0,2'); events.json's value Levels map it back exactly
        assert _exact_markers_with_mne_bids(bp) == list(ref.annotations.description)
        np.testing.assert_allclose(got.annotations.onset, ref.annotations.onset, atol=1e-3)
        with open(bp.copy().update(suffix="channels", extension=".tsv").fpath) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        assert {r["units"] for r in rows} == {"µV"}
        assert [r["name"] for r in rows if r["status"] == "bad"] == ref.info["bads"]
        # events.tsv holds the markers as they are: pandas reads them back exactly
        assert _markers_with_pandas(bp) == list(ref.annotations.description)
        note = json.loads(bp.copy().update(suffix="events", extension=".json").fpath.read_text())
        assert "urllib.parse.unquote" in note["trial_type"]["Description"]
        assert "switch,3,0,2" in note["value"]["Levels"].values()
    # a second export without --overwrite refuses, naming the file
    proc = cli("export-bids", sess.path, out)
    assert proc.returncode == 2 and "exists; pass --overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _markers_with_pandas(bp) -> list[str]:
    """events.tsv's trial_type read as BIDS says (only 'n/a' means no value), decoded where a
    cell holds '%' (the documented encoding of what a TSV cell cannot hold)."""
    import pandas as pd

    df = pd.read_csv(bp.copy().update(suffix="events", extension=".tsv").fpath, sep="\t",
                     dtype=str, na_values=["n/a"], keep_default_na=False)
    return [urllib.parse.unquote(t) if "%" in t else t for t in df["trial_type"]]


def _exact_markers_with_mne_bids(bp) -> list[str]:
    """The recipe of events.json (and app/bids.py's docstring): mne-bids' reader and its event
    ids, mapped through ``value`` -> ``Levels``."""
    from mne_bids import read_raw_bids

    raw, ids = read_raw_bids(bp, return_event_dict=True, verbose="error")
    levels = json.loads(bp.copy().update(suffix="events", extension=".json").fpath.read_text(
        encoding="utf-8"))["value"]["Levels"]
    raw.annotations.rename({d: levels[str(v)] for d, v in ids.items()})
    return list(raw.annotations.description)


def test_export_bids_refuses_what_is_not_a_session(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    proc = cli("export-bids", tmp_path / "empty", tmp_path / "out")
    assert proc.returncode == 2 and "is not a neurodeck session" in proc.stderr


MARKERS = ["switch,3,0,2", "marker received : switch,3,1,2", "10,000", "50%", "a%2Cb", " left ",
           "n/a", "tab\there", "1,2\n", "", "µV,1,2", "Trial Started", "left/right", "NA", "None"]


@pytest.mark.parametrize("marker", MARKERS)
def test_marker_cell_is_the_marker_where_a_tsv_cell_can_hold_it(tmp_path, marker):
    """Written verbatim unless it holds '%', a tab/line break, edge blanks or is 'n/a'; read back
    exactly by pandas (BIDS reading: only 'n/a' is no value) and by the csv module."""
    import pandas as pd

    cell = marker_to_bids(marker)
    plain = not any(c in marker for c in "%\t\r\n") and marker == marker.strip() and marker != "n/a"
    assert (cell == marker) == plain and ("%" in cell) == (not plain)
    assert marker_from_bids(cell) == marker
    path = tmp_path / "events.tsv"
    path.write_text("onset\ttrial_type\n1.0\t" + cell + "\n", encoding="utf-8")
    (got,) = pd.read_csv(path, sep="\t", dtype=str, na_values=["n/a"],
                         keep_default_na=False)["trial_type"]
    assert marker_from_bids(got) == marker
    with open(path, newline="", encoding="utf-8") as f:
        (row,) = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
    assert marker_from_bids(row["trial_type"]) == marker


def test_every_marker_exact_through_mne_bids_reader_and_pandas(tmp_path, asset_edfs, cli):
    """Awkward markers in one recording, exported by the CLI: pandas gives them exactly, and
    mne-bids' reader does too through events.json's value Levels (even where its decimal-comma
    rewrite makes two markers one text: 'a,1,2' and 'a,1.2')."""
    from mne_bids import BIDSPath

    sess = Session.create(tmp_path / "sessions", "P1", "S1")
    raw = mne.io.read_raw_edf(asset_edfs[0], preload=True, verbose="error").crop(0, 20)
    raw.pick(raw.ch_names[:4])
    odd = [m for m in MARKERS if m] + ["a,1,2", "a,1.2", "BAD_interrupted", "stream_lost"]
    raw.set_annotations(mne.Annotations(np.arange(len(odd)) * 0.5 + 0.25, 0.0, odd))
    raw.save(sess.new_recording_path("calibration"), verbose="error")
    proc = cli("export-bids", sess.path, tmp_path / "bids")
    assert proc.returncode == 0, proc.stderr
    bp = BIDSPath(subject="P1", session="S1", task="calibration", run=1, datatype="eeg",
                  root=tmp_path / "bids")
    assert _markers_with_pandas(bp) == odd
    assert _exact_markers_with_mne_bids(bp) == odd


def test_bci_essentials_markers_survive_export_and_mne_bids(tmp_path, shared_data, cli):
    """The three bci-essentials LabRecorder files (markers such as 'switch,3,0,2' from two marker
    streams): recorded into a session, exported; events.tsv read by pandas, and by
    mne_bids.read_raw_bids mapped through events.json, gives exactly the markers pyxdf reads."""
    import pyxdf
    from mne_bids import BIDSPath, read_raw_bids

    from neurodeck.acquisition.io import load_recording

    sess = Session.create(tmp_path / "sessions", "P001", "S001")
    originals = []
    for r in (1, 2, 3):
        xdf = shared_data / f"xdf/bci-essentials/sub-P001_ses-S001_task-T1_run-00{r}_eeg.xdf"
        raw = load_recording(xdf)
        raw.save(sess.new_recording_path("T1"), verbose="error")
        streams, _ = pyxdf.load_xdf(xdf)
        eeg = next(s for s in streams if s["info"]["type"][0] == "EEG")
        t0, t1 = eeg["time_stamps"][0], eeg["time_stamps"][-1]
        originals.append(collections.Counter(
            str(x[0]) for s in streams if s["info"]["channel_format"][0] == "string"
            for x, t in zip(s["time_series"], s["time_stamps"], strict=True) if t0 <= t <= t1))
    proc = cli("export-bids", sess.path, tmp_path / "bids")
    assert proc.returncode == 0, proc.stderr
    for run, (src, want) in enumerate(zip(sess.recordings(), originals, strict=True), start=1):
        bp = BIDSPath(subject="P001", session="S001", task="T1", run=run, datatype="eeg",
                      root=tmp_path / "bids")
        got = read_raw_bids(bp, verbose="error")
        ref = mne.io.read_raw_fif(src, verbose="error").annotations
        markers = _markers_with_pandas(bp)
        assert markers == list(ref.description) == _exact_markers_with_mne_bids(bp)
        np.testing.assert_allclose(got.annotations.onset, ref.onset, atol=1 / 256)
        assert collections.Counter(markers) == want
        assert want["switch,3,0,2"] > 0 and "switch,3.0,2" not in markers
        # the cells themselves are the markers (no encoding: none holds %, tab, n/a...)
        with open(bp.copy().update(suffix="events", extension=".tsv").fpath, newline="") as f:
            cells = [r["trial_type"] for r in csv.DictReader(f, delimiter="\t")]
        assert cells == markers
