"""`neurodeck export-bids`: a session's recordings as BIDS, read back by mne-bids' own reader."""
from __future__ import annotations

import csv
import re

import mne
import numpy as np
import pytest

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
        # comma (mne-tools/mne-bids PR #1599): it reads our 'switch,3,0,2' as 'switch,3.0,2'.
        # The events.tsv we write holds the marker exactly (checked below).
        decimal = [re.sub(r"(\d),(\d)", r"\1.\2", d) for d in ref.annotations.description]
        assert list(got.annotations.description) in (list(ref.annotations.description), decimal)
        np.testing.assert_allclose(got.annotations.onset, ref.annotations.onset, atol=1e-3)
        with open(bp.copy().update(suffix="channels", extension=".tsv").fpath) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        assert {r["units"] for r in rows} == {"µV"}
        assert [r["name"] for r in rows if r["status"] == "bad"] == ref.info["bads"]
        with open(bp.copy().update(suffix="events", extension=".tsv").fpath) as f:
            types = [r["trial_type"] for r in csv.DictReader(f, delimiter="\t")]
        assert "switch,3,0,2" in types and {"T0", "T1", "T2"} <= set(types)
    # a second export without --overwrite refuses, naming the file
    proc = cli("export-bids", sess.path, out)
    assert proc.returncode == 2 and "exists; pass --overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_export_bids_refuses_what_is_not_a_session(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    proc = cli("export-bids", tmp_path / "empty", tmp_path / "out")
    assert proc.returncode == 2 and "is not a neurodeck session" in proc.stderr
