"""Bad input with a known shape: each gives one clear error of the documented type.

Already covered elsewhere (see docs/reliability.md): truncated / garbage EDF, FIF, XDF
(tests/acquisition/test_io.py), unknown event labels (test_io), broken sidecar JSON and bad
sidecar values (tests/decoders/test_onnx.py), protocol config validation
(tests/app/test_protocol.py). Random corruption of the same inputs: test_fuzz.py.
"""
from __future__ import annotations

import json
import shutil
import warnings

import mne
import numpy as np
import pytest

from neurodeck.acquisition.errors import RecordingError
from neurodeck.acquisition.io import get_events, load_recording, read_xdf_streams
from neurodeck.app.protocol import ProtocolConfig, ProtocolError
from neurodeck.decoders.errors import DecoderError, ModelBundleError
from neurodeck.decoders.onnx import MODEL_FILE, SIDECAR_FILE, load_bundle
from neurodeck.decoders.pipelines import DecoderConfig


@pytest.fixture(scope="module")
def short_raw(asset_edfs):
    return load_recording(asset_edfs[0]).crop(0, 20.0)


def _save(raw, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw.save(path, verbose="error", overwrite=True)
    return path


def test_empty_streams_xdf(shared_data, tmp_path):
    """An XDF whose streams hold no samples: the empty ones are listed, not loaded as EEG."""
    path = shared_data / "xdf" / "empty_streams.xdf"
    streams = read_xdf_streams(path)
    assert any(s.n_samples == 0 for s in streams)
    try:
        raw = load_recording(path)
    except RecordingError as exc:
        assert "empty_streams.xdf" in str(exc)
    else:
        assert raw.n_times > 0 and np.isfinite(raw.get_data()).all()


def test_recording_without_events(short_raw, tmp_path, cli):
    raw = short_raw.copy().set_annotations(None)
    path = _save(raw, tmp_path / "noevents_raw.fif")
    loaded = load_recording(path)
    assert len(loaded.annotations) == 0
    with pytest.raises(RecordingError, match=r"\['T1', 'T2'\] not found .* labels present: \[\]"):
        get_events(loaded, {"T1": "left_hand", "T2": "right_hand"})
    # the command line says so in one line and exits 2 (no traceback)
    proc = cli("train", path, "--out", tmp_path / "bundle", "--cv", "0")
    err = proc.stderr
    assert proc.returncode == 2 and "error:" in err and "Traceback" not in err
    assert not (tmp_path / "bundle").exists()


def test_unknown_event_labels_on_the_command_line(short_raw, tmp_path, cli):
    raw = short_raw.copy()
    raw.set_annotations(mne.Annotations([1.0, 5.0, 9.0], [0, 0, 0], ["foo", "bar", "foo"]))
    path = _save(raw, tmp_path / "foreign_raw.fif")
    proc = cli("train", path, "--out", tmp_path / "bundle", "--cv", "0")
    err = proc.stderr
    assert proc.returncode == 2 and "Traceback" not in err
    assert "foo" in err and "bar" in err  # the labels that are there are named
    assert not (tmp_path / "bundle").exists()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[protocol\ntrials_per_class = 3", "not valid TOML"),
        ("[protocol]\ntrials_per_clas = 3\n", "unknown protocol settings \\['trials_per_clas'\\]"),
        ("[protocol]\ntrials_per_class = -3\n", "trials_per_class"),
        ("[protocol]\ncue_s = 'long'\n", "cue_s"),
        ("[protocol]\nclasses = ['left_hand']\n", "classes"),
    ],
)
def test_malformed_protocol_toml(tmp_path, text, match):
    p = tmp_path / "protocol.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ProtocolError, match=match):
        ProtocolConfig.load(p)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("pipeline = 'ts-lr'\n[band\n", "cannot parse decoder config"),
        ("pipeline = 'no-such-pipeline'\n", "no-such-pipeline"),
        ("pipline = 'ts-lr'\n", "unknown decoder config keys \\['pipline'\\]"),
        ("pipeline = 'ts-lr'\nband = [30.0, 8.0]\n", "band"),
    ],
)
def test_malformed_decoder_toml(tmp_path, text, match):
    p = tmp_path / "decoder.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DecoderError, match=match):
        DecoderConfig.load(p)


def test_sidecar_that_is_not_an_object_or_not_utf8(bundle_dir, tmp_path):
    dst = shutil.copytree(bundle_dir, tmp_path / "b")
    for content, match in ((b"[1, 2, 3]", "expected a JSON object"),
                           (b"\xff\xfe\x00garbage", "model.json"),
                           (b"", "not valid JSON")):
        (dst / SIDECAR_FILE).write_bytes(content)
        with pytest.raises(ModelBundleError, match=match):
            load_bundle(dst)


def test_onnx_whose_inputs_do_not_match_the_sidecar(s001, bundle_dir, tmp_path):
    """model.onnx of a ts-lr bundle on 3 channels, sidecar of the psd-lda one on all of them."""
    from neurodeck.decoders.onnx import save_bundle

    X, y, ch, sf, _ = s001
    cfg = DecoderConfig(pipeline="ts-lr")
    other = save_bundle(cfg.build(sf, ch[:3]).fit(X[:, :3], y), cfg, tmp_path / "three",
                        ch_names=ch[:3], sfreq=sf, X_check=X[:4, :3])
    mixed = shutil.copytree(bundle_dir, tmp_path / "mixed")
    shutil.copy(other / MODEL_FILE, mixed / MODEL_FILE)
    n_feat = json.loads((bundle_dir / SIDECAR_FILE).read_text())["n_features"]
    n_other = json.loads((other / SIDECAR_FILE).read_text())["n_features"]
    assert n_feat != n_other
    with pytest.raises(ModelBundleError, match="ONNX input .* has shape"):
        load_bundle(mixed)
    # an ONNX file that is not ONNX at all
    (mixed / MODEL_FILE).write_bytes(b"\x08\x07garbage-not-a-model" * 10)
    with pytest.raises(ModelBundleError, match="onnxruntime cannot load it"):
        load_bundle(mixed)
