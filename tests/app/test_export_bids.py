"""`neurodeck export-bids`: a session's recordings as BIDS, read back by mne-bids' own reader."""
from __future__ import annotations

import collections
import csv
import json

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
        # mne-bids >= 0.18's reader rewrites every "digit,digit" in a TSV cell as a decimal
        # comma: it read 'switch,3,0,2' as 'switch,3.0,2'. It reads our encoding unchanged, and
        # decoding it gives the exact markers
        assert list(got.annotations.description) == [
            marker_to_bids(d) for d in ref.annotations.description]
        assert [marker_from_bids(d) for d in got.annotations.description] == list(
            ref.annotations.description)
        np.testing.assert_allclose(got.annotations.onset, ref.annotations.onset, atol=1e-3)
        with open(bp.copy().update(suffix="channels", extension=".tsv").fpath) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        assert {r["units"] for r in rows} == {"µV"}
        assert [r["name"] for r in rows if r["status"] == "bad"] == ref.info["bads"]
        with open(bp.copy().update(suffix="events", extension=".tsv").fpath) as f:
            types = [r["trial_type"] for r in csv.DictReader(f, delimiter="\t")]
        assert "switch,3%2C0%2C2" in types and {"T0", "T1", "T2"} <= set(types)
        note = json.loads(bp.copy().update(suffix="events", extension=".json").fpath.read_text())
        assert "urllib.parse.unquote" in note["trial_type"]["Description"]
    # a second export without --overwrite refuses, naming the file
    proc = cli("export-bids", sess.path, out)
    assert proc.returncode == 2 and "exists; pass --overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_export_bids_refuses_what_is_not_a_session(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    proc = cli("export-bids", tmp_path / "empty", tmp_path / "out")
    assert proc.returncode == 2 and "is not a neurodeck session" in proc.stderr


@pytest.mark.parametrize("marker", ["switch,3,0,2", "marker received : switch,3,1,2", "10,000",
                                    "50%", "a%2Cb", " left ", "n/a", "tab\there", "1,2\n", "",
                                    "µV,1,2", "Trial Started"])
def test_marker_encoding_round_trips_through_mne_bids_tsv_reader(tmp_path, marker):
    """mne-bids' own TSV reader (every cell goes through it) leaves the encoded text unchanged."""
    from mne_bids.tsv_handler import _from_tsv

    path = tmp_path / "events.tsv"
    path.write_text("onset\ttrial_type\n1.0\t" + marker_to_bids(marker) + "\n", encoding="utf-8")
    (got,) = _from_tsv(path)["trial_type"]
    assert got == marker_to_bids(marker) and marker_from_bids(got) == marker


def test_bci_essentials_markers_survive_export_and_mne_bids(tmp_path, shared_data, cli):
    """The three bci-essentials LabRecorder files (markers such as 'switch,3,0,2' from two marker
    streams): recorded into a session, exported, read back by mne_bids.read_raw_bids; the decoded
    descriptions are exactly the markers pyxdf reads from the files."""
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
        markers = [marker_from_bids(d) for d in got.annotations.description]
        ref = mne.io.read_raw_fif(src, verbose="error").annotations
        assert markers == list(ref.description)
        np.testing.assert_allclose(got.annotations.onset, ref.onset, atol=1 / 256)
        assert collections.Counter(markers) == want
        assert want["switch,3,0,2"] > 0 and "switch,3.0,2" not in markers
