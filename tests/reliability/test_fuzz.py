"""Property-based fuzzing (hypothesis): corrupt files, configs, sidecars and windows.

Each property says: whatever the input, the outcome is a clear error of the documented type
(RecordingError, ProtocolError, DecoderError, ModelBundleError) or a valid result; never another
exception type, never a hang (pytest-timeout). Example counts are fixed (``max_examples``) and
reported in docs/reliability.md.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeck.acquisition.errors import RecordingError
from neurodeck.acquisition.io import load_recording
from neurodeck.acquisition.quality import INVALIDATING, Flag, check_window
from neurodeck.app.protocol import ProtocolConfig, ProtocolError
from neurodeck.decoders.errors import DecoderError, ModelBundleError
from neurodeck.decoders.onnx import SIDECAR_FILE, load_bundle
from neurodeck.decoders.pipelines import DecoderConfig

FILE_EXAMPLES = 100
CONFIG_EXAMPLES = 60
SIDECAR_EXAMPLES = 60
WINDOW_EXAMPLES = 200

_SETTINGS = dict(deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def small_files(asset_edfs, shared_data, tmp_path_factory):
    """Small real files: 4 s of EEGMMIDB S001R04 as EDF and FIF, and minimal.xdf."""
    import mne

    d = tmp_path_factory.mktemp("fuzz-src")
    raw = load_recording(asset_edfs[0]).crop(0, 4.0)
    raw.pick(raw.ch_names[:8])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mne.export.export_raw(d / "small.edf", raw, fmt="edf", verbose="error")
        raw.save(d / "small_raw.fif", verbose="error")
    shutil.copy(shared_data / "xdf" / "minimal.xdf", d / "minimal.xdf")
    for name in ("small.edf", "small_raw.fif", "minimal.xdf"):
        assert load_recording(d / name).n_times > 0  # the originals load
    return {
        "edf": (d / "small.edf").read_bytes(),
        "fif": (d / "small_raw.fif").read_bytes(),
        "xdf": (d / "minimal.xdf").read_bytes(),
    }


_mutation = st.tuples(
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=12),
    st.one_of(st.none(), st.floats(0, 1)),  # truncate at this fraction
    st.booleans(),  # concentrate the flips in the header (first 4 kB)
)


def _mutate(data: bytes, mutation) -> bytes:
    flips, cut, header = mutation
    buf = bytearray(data)
    span = min(len(buf), 4096) if header else len(buf)
    for pos, value in flips:
        buf[int(pos * span)] = value
    if cut is not None:
        buf = buf[: int(cut * len(buf))]
    return bytes(buf)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fmt,suffix", [("edf", ".edf"), ("fif", "_raw.fif"), ("xdf", ".xdf")])
def test_corrupt_recordings_give_recording_error_or_load(small_files, fmt, suffix):
    outcomes = {"error": 0, "loaded": 0}

    @settings(max_examples=FILE_EXAMPLES, **_SETTINGS)
    @given(mutation=_mutation)
    def run(mutation):
        data = _mutate(small_files[fmt], mutation)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"fuzz{suffix}"
            path.write_bytes(data)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    raw = load_recording(path)
            except RecordingError as exc:
                assert str(path) in str(exc) or path.name in str(exc), str(exc)
                outcomes["error"] += 1
                return
            assert raw.n_times > 0 and len(raw.ch_names) > 0
            outcomes["loaded"] += 1

    run()
    assert outcomes["error"] > 0  # the fuzzer did break files
    print(f"{fmt}: {outcomes}")


_toml_values = st.one_of(
    st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.text(max_size=12), st.booleans(),
    st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=CONFIG_EXAMPLES, **_SETTINGS)
@given(text=st.text(max_size=200))
def test_random_text_as_protocol_or_decoder_toml(text, tmp_path):
    p = tmp_path / "cfg.toml"
    p.write_text(text, encoding="utf-8")
    try:
        ProtocolConfig.load(p)
    except ProtocolError:
        pass
    try:
        DecoderConfig.load(p)
    except DecoderError:
        pass


@settings(max_examples=CONFIG_EXAMPLES, **_SETTINGS)
@given(key=st.sampled_from(sorted(ProtocolConfig().to_dict())), value=_toml_values)
def test_protocol_config_with_a_wrong_value_is_a_protocol_error(key, value, tmp_path):
    import tomli_w

    d = ProtocolConfig().to_dict()
    d[key] = value
    p = tmp_path / "protocol.toml"
    try:
        p.write_text(tomli_w.dumps({"protocol": d}), encoding="utf-8")
    except (TypeError, ValueError):
        return  # not representable in TOML (NaN is; None is not)
    try:
        cfg = ProtocolConfig.load(p)
    except ProtocolError as exc:
        assert key in str(exc) or "protocol" in str(exc), str(exc)
        return
    assert isinstance(cfg, ProtocolConfig)


@settings(max_examples=CONFIG_EXAMPLES, **_SETTINGS)
@given(key=st.sampled_from(sorted(DecoderConfig().to_dict())), value=_toml_values)
def test_decoder_config_with_a_wrong_value_is_a_decoder_error(key, value, tmp_path):
    d = {k: v for k, v in DecoderConfig().to_dict().items() if v is not None}
    d[key] = value
    p = tmp_path / "decoder.json"
    p.write_text(json.dumps(d))
    try:
        DecoderConfig.load(p)
    except DecoderError:
        pass


@settings(max_examples=SIDECAR_EXAMPLES, **_SETTINGS)
@given(data=st.data())
def test_mutated_sidecar_is_a_model_bundle_error_or_loads(bundle_dir, tmp_path, data):
    meta = json.loads((bundle_dir / SIDECAR_FILE).read_text())
    key = data.draw(st.sampled_from(sorted(meta)), label="key")
    value = data.draw(st.one_of(st.none(), _toml_values, st.just([]), st.just({})), label="value")
    meta[key] = value
    dst = tmp_path / "b"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(bundle_dir, dst)
    (dst / SIDECAR_FILE).write_text(json.dumps(meta))
    try:
        bundle = load_bundle(dst)
    except ModelBundleError:
        return
    assert bundle.ch_names and bundle.sfreq > 0


@settings(max_examples=WINDOW_EXAMPLES, **_SETTINGS)
@given(
    n_ch=st.integers(1, 6), n_t=st.integers(8, 300),
    nan_at=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 299),
                              st.sampled_from([math.nan, math.inf, -math.inf])), max_size=4),
    flat_ch=st.one_of(st.none(), st.integers(0, 5)), offset=st.floats(-1e4, 1e4),
    seed=st.integers(0, 2**16),
)
def test_quality_flags_exactly_the_injected_faults(n_ch, n_t, nan_at, flat_ch, offset, seed):
    rng = np.random.default_rng(seed)
    w = offset + 10 * rng.standard_normal((n_ch, n_t))
    expect_nonfinite = set()
    for ch, t, v in nan_at:
        if ch < n_ch and t < n_t:
            w[ch, t] = v
            expect_nonfinite.add(ch)
    if flat_ch is not None and flat_ch < n_ch and flat_ch not in expect_nonfinite:
        w[flat_ch] = offset
    q = check_window(w, 256.0)
    got_nonfinite = set(np.flatnonzero(q.bad(Flag.NONFINITE)).tolist())
    assert got_nonfinite == expect_nonfinite
    if flat_ch is not None and flat_ch < n_ch and flat_ch not in expect_nonfinite:
        assert q.bad(Flag.FLAT)[flat_ch]
    # clean Gaussian channels (10 µV) are never invalid, whatever the DC offset
    clean = [c for c in range(n_ch) if c not in expect_nonfinite and c != flat_ch]
    assert not q.bad(INVALIDATING)[clean].any(), [q.reasons[c] for c in clean]
    # flags and reasons agree
    assert all(bool(f) == bool(r) for f, r in zip(q.flags, q.reasons, strict=True))
