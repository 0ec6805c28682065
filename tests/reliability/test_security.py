"""Security: bundles are never unpickled, session paths stay in the root, LSL names are sanitised.

Already covered elsewhere: tests/decoders/test_onnx.py::test_loading_never_unpickles (pickle and
np.load patched), ::test_bad_sidecar_is_a_clear_error ("os.system" as a step class, kind
"pickle"); tests/app/test_session.py::test_unsafe_names_rejected ("..", "/abs", "a/b", ...),
::test_sanitize_filename, ::test_file_for_stream_stays_inside.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import time

import numpy as np
import pytest

from neurodeck.acquisition.outlet import DataOutlet, local_clock, make_stream_info
from neurodeck.acquisition.recorder import Recorder
from neurodeck.app.session import Session, SessionError, sanitize_filename
from neurodeck.decoders.errors import ModelBundleError
from neurodeck.decoders.onnx import SIDECAR_FILE, load_bundle
from tests.reliability.conftest import push_fast, wait_until


class _Payload:
    """Unpickling this creates a file: proof that something was unpickled."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_bundle_with_pickles_loads_only_onnx_and_json(bundle_dir, tmp_path, monkeypatch, s001):
    dst = shutil.copytree(bundle_dir, tmp_path / "bundle")
    pwned = tmp_path / "PWNED"
    for name in ("model.pkl", "pipeline.pickle", "model.joblib", "model.npy"):
        (dst / name).write_bytes(pickle.dumps(_Payload(str(pwned))))
    meta = json.loads((dst / SIDECAR_FILE).read_text())
    meta["pickle_file"] = "model.pkl"  # an unknown key pointing at it changes nothing
    (dst / SIDECAR_FILE).write_text(json.dumps(meta))

    def boom(*a, **k):
        raise AssertionError("a model bundle must never be unpickled")

    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    monkeypatch.setattr(np, "load", boom)
    X, *_ = s001
    bundle = load_bundle(dst)
    assert bundle.predict_proba(X[:3]).shape == (3, 2)
    assert not pwned.exists()
    # a sidecar that asks for a pickled or arbitrary class is refused
    for bad in ({"kind": "pickle"}, {"kind": "sklearn-pickle"}):
        (dst / SIDECAR_FILE).write_text(json.dumps({**meta, **bad}))
        with pytest.raises(ModelBundleError, match="'kind'"):
            load_bundle(dst)
    steps = json.loads(json.dumps(meta["feature_steps"]))
    steps[0]["class"] = "pickle.loads"
    (dst / SIDECAR_FILE).write_text(json.dumps({**meta, "feature_steps": steps}))
    with pytest.raises(ModelBundleError, match="'pickle.loads' is not an allowed"):
        load_bundle(dst)
    assert not pwned.exists()


@pytest.mark.parametrize("bad", ["..", "../x", "/etc", "a/../../b", "x\x00y", "ev\nil", "<b>x</b>",
                                 "\u202eexe.txt", " ", "C:\\x"])
def test_session_names_cannot_escape_or_smuggle(tmp_path, bad):
    root = tmp_path / "root"
    with pytest.raises(SessionError):
        Session.create(root, bad, "s1")
    with pytest.raises(SessionError):
        Session.create(root, "S01", bad)
    assert not any(p for p in tmp_path.rglob("*") if root not in (p, *p.parents))


def test_session_symlink_out_of_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "S01")  # a subject folder that points elsewhere
    with pytest.raises(SessionError, match="escapes the root"):
        Session.create(root, "S01", "s1")
    assert list(outside.iterdir()) == []


EVIL_NAMES = [
    "../../etc/passwd",
    "..\\..\\Windows\\system.ini",
    "<script>alert(1)</script>\x07\x1b[31m",
    "/tmp/abs name\n\r\t",
    "...",
]


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_stream_names_become_safe_file_names(tmp_path, name):
    safe = sanitize_filename(name)
    assert safe and "/" not in safe and "\\" not in safe and ".." not in safe
    assert all(c.isalnum() or c in "_.-" for c in safe) and not safe.startswith(".")
    sess = Session.create(tmp_path / "root", "S01", "s1")
    p = sess.file_for_stream(name, suffix=".npz")
    assert p.parent == sess.recordings_dir
    assert sess.path.resolve() in p.resolve().parents


def test_recorder_with_hostile_stream_names_writes_only_inside_its_folder(tmp_path, unique_name):
    """An EEG and an extra stream whose LSL names are path traversals with control chars/HTML."""
    eeg_name = f"../../{unique_name}/etc/passwd\x07<script>"
    extra_name = f"..\\..\\{unique_name}\x1b[2J<b>x</b>/../../pwn"
    sf = 128.0
    eeg = DataOutlet(make_stream_info(eeg_name, "EEG", ["C3", "C4"], sf, source_id=unique_name,
                                      units="microvolts"))
    extra = DataOutlet(make_stream_info(extra_name, "Misc", ["x"], sf,
                                        source_id=unique_name + "-x"))
    box = tmp_path / "box"
    out = box / "rec" / "run_raw.fif"
    out.parent.mkdir(parents=True)
    before = set(tmp_path.parent.iterdir())
    rec = Recorder([eeg.info, extra.info], out, drain_quiet=0.3).start()
    try:
        assert eeg.wait_for_consumers(5) and extra.wait_for_consumers(5)
        time.sleep(0.3)
        t0 = local_clock()
        push_fast(eeg, np.random.default_rng(0).standard_normal((256, 2)), sf, t0)
        push_fast(extra, np.arange(256.0)[:, None], sf, t0)
        assert wait_until(lambda: [s.received for s in rec.status.streams] == [256, 256], 10)
        path = rec.stop()
    finally:
        if rec.status.state == "recording":
            rec.abort()
        eeg.close()
        extra.close()
    files = sorted(p.relative_to(box) for p in box.rglob("*") if p.is_file())
    assert path == out
    assert all(f.parts[0] == "rec" and len(f.parts) == 2 for f in files), files
    names = [f.name for f in files]
    npz = [n for n in names if n.endswith(".npz")]
    assert len(npz) == 1 and npz[0].startswith("run_raw.")
    # one plain file-name component: no separator, no control character, no markup
    assert all(c.isalnum() or c in "_.-" for c in npz[0])
    assert set(tmp_path.parent.iterdir()) == before  # nothing created next to tmp_path
    assert not any(unique_name in p.name for p in tmp_path.parent.iterdir())
    # the original names are kept as data (JSON-escaped), never as paths
    side = json.loads(out.with_name("run_raw.json").read_text())
    assert [s["name"] for s in side["streams"]] == [eeg_name, extra_name]


def test_stream_name_with_a_newline_is_refused_clearly(tmp_path, unique_name):
    """liblsl's line-based protocol cannot describe such a stream: a clear error, nothing written."""
    from neurodeck.acquisition.errors import AcquisitionError

    name = f"{unique_name}\nfake: header"
    outlet = DataOutlet(make_stream_info(name, "EEG", ["C3"], 100.0, source_id=unique_name))
    try:
        with pytest.raises(AcquisitionError, match="could not open LSL stream"):
            Recorder([outlet.info], tmp_path / "x_raw.fif", resolve_timeout=1.0).start()
    finally:
        outlet.close()
    assert list(tmp_path.iterdir()) == []
