"""Every invalid numeric or path argument of the CLI: exit 2, one line naming the value, no traceback.

The property-based tests parse in-process with the real parser (``cli.build_parser``, the same
``app.argtypes`` functions the commands use); the expected ranges below are written out here,
independently of the implementation. A few subprocess runs check the whole program.
"""
from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeck.app.cli import build_parser
from tests.cli_server import run_module

ROOT = Path(__file__).resolve().parents[2]
WEEK = 7 * 24 * 3600.0
PARSER = build_parser()


def _parse(argv: list[str]) -> tuple[int | None, str, object]:
    """(exit code or None, stderr, namespace or None)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            ns = PARSER.parse_args(argv)
        except SystemExit as exc:
            return int(exc.code or 0), err.getvalue(), None
    return None, err.getvalue(), ns


def _assert_refused(argv: list[str], text: str) -> None:
    code, err, _ = _parse(argv)
    assert code == 2, (argv, code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert repr(text) in lines[0] and "expected" in lines[0], lines[0]


def _in(lo: float, hi: float, lo_open: bool = False):
    return lambda v: math.isfinite(v) and (lo < v if lo_open else lo <= v) and v <= hi


# (argv before the option, option, attribute, float or int, accepted range)
FLOAT_OPTIONS = [
    (["record", "-s", "x", "--out", "r.fif"], "--duration", "duration", _in(0, WEEK, True)),
    (["record", "-s", "x", "--out", "r.fif"], "--flush-every", "flush_every", _in(0, WEEK, True)),
    (["record", "-s", "x", "--out", "r.fif"], "--resolve-timeout", "resolve_timeout", _in(0, WEEK, True)),
    (["decode", "--model", "."], "--hop", "hop", _in(0, WEEK, True)),
    (["decode", "--model", "."], "--duration", "duration", _in(0, WEEK, True)),
    (["decode", "--model", "."], "--timeout", "timeout", _in(0, WEEK, True)),
    (["evaluate", "a.edf"], "--tmin", "tmin", _in(-60, 60)),
    (["evaluate", "a.edf"], "--tmax", "tmax", _in(-60, 60)),
    (["evaluate", "a.edf"], "--pad", "pad", _in(0, 60)),
    (["evaluate", "a.edf"], "--step", "step", _in(0, WEEK, True)),
    (["evaluate", "a.edf"], "--trial", "trial", _in(0, WEEK, True)),
    (["train", "a.edf", "--out", "m"], "--pad", "pad", _in(0, 60)),
    (["train", "a.edf", "--out", "m"], "--tmax", "tmax", _in(-60, 60)),
    (["replay", "a.edf"], "--speed", "speed", _in(0, 1000, True)),
    (["simulate"], "--srate", "srate", _in(0, 1e6, True)),
    (["simulate"], "--duration", "duration", _in(0, WEEK, True)),
    (["simulate"], "--speed", "speed", _in(0, 1000, True)),
    (["streams"], "--timeout", "timeout", _in(0, WEEK, True)),
    (["demo"], "--speed", "speed", _in(0, 1000, True)),
    (["gui"], "--quit-after", "quit_after", _in(0, WEEK, True)),
]
INT_OPTIONS = [
    (["evaluate", "a.edf"], "--seed", "seed", lambda v: 0 <= v < 2**32),
    (["evaluate", "a.edf"], "--cv", "cv", lambda v: 2 <= v <= 100),
    (["train", "a.edf", "--out", "m"], "--cv", "cv", lambda v: v == 0 or 2 <= v <= 100),
    (["train", "a.edf", "--out", "m"], "--seed", "seed", lambda v: 0 <= v < 2**32),
    (["simulate"], "--channels", "channels", lambda v: 1 <= v <= 1_000_000),
    (["simulate"], "--seed", "seed", lambda v: 0 <= v < 2**32),
]

number_texts = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["", " ", "nan", "-inf", "inf", "1e999", "-0", "0", "1e-320", "abc", "1,5", "0x10",
                     "5s", "1_0"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(FLOAT_OPTIONS), text=number_texts)
def test_float_arguments_exit_2_with_one_line_or_parse_in_range(case, text):
    prefix, opt, dest, ok = case
    argv = [*prefix, f"{opt}={text}"]
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None and ok(value):
        code, err, ns = _parse(argv)
        assert code is None, (argv, err)
        assert getattr(ns, dest) == value
    else:
        _assert_refused(argv, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(INT_OPTIONS), text=number_texts)
def test_int_arguments_exit_2_with_one_line_or_parse_in_range(case, text):
    prefix, opt, dest, ok = case
    argv = [*prefix, f"{opt}={text}"]
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is not None and ok(value):
        code, err, ns = _parse(argv)
        assert code is None, (argv, err)
        assert getattr(ns, dest) == value
    else:
        _assert_refused(argv, text)


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli-paths")
    (base / "file").write_text("x")
    (base / "dir").mkdir()
    return base


PATH_KINDS = ["", " ", "file/", "dir", "file", "file/x", "dir/new", "new", "a\x00b", "/proc/nd/x"]
# (argv before, option or None for a positional, kinds accepted)
PATH_OPTIONS = [
    (["record", "-s", "x"], "--out", {"file", "dir/new", "new"}),
    (["recover", "{dir}"], "--out", {"file", "dir/new", "new"}),
    (["recover"], None, {"dir"}),
    (["decode"], "--model", {"dir"}),
    (["train", "a.edf"], "--out", {"dir", "dir/new", "new"}),
    (["evaluate", "a.edf"], "--json", {"file", "dir/new", "new"}),
    (["evaluate", "a.edf"], "--pipeline-file", {"file"}),
    (["demo"], "--json", {"file", "dir/new", "new"}),
]


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(PATH_OPTIONS), kind=st.sampled_from(PATH_KINDS))
def test_path_arguments_exit_2_with_one_line_or_parse(places, case, kind):
    prefix, opt, accepted = case
    text = kind if kind.strip() in ("", "a\x00b") or kind.startswith("/") else str(places / kind)
    if kind == "file/":
        text = str(places / "file") + "/"
    prefix = [p.replace("{dir}", str(places / "dir")) for p in prefix]
    argv = [*prefix, text] if opt is None else [*prefix, f"{opt}={text}"]
    if prefix[0] == "decode" and opt != "--model":
        argv += ["--model", str(places / "dir")]
    if kind in accepted:
        code, err, _ = _parse(argv)
        assert code is None, (argv, err)
    else:
        _assert_refused(argv, text)


@pytest.mark.parametrize("text", ["", ",,,", " ,a.edf", "a.edf,"])
def test_empty_datasets_and_name_lists_are_refused(text):
    _assert_refused(["evaluate", text], text)
    _assert_refused(["evaluate", "a.edf", f"--pipelines={text}"], text)


@pytest.mark.parametrize("text", ["", " ", "a\tb", "x\ny"])
def test_empty_or_control_character_names_are_refused(text):
    _assert_refused(["decode", "--model", ".", f"--out-name={text}"], text)
    _assert_refused(["decode", "--model", ".", f"--stream={text}"], text)
    _assert_refused(["record", "--out", "r.fif", f"--stream={text}"], text)


@pytest.mark.parametrize("argv", [
    ["record", "-s", "x", "--out", ""],
    ["decode", "--model", ".", "--hop", "nan"],
    ["decode", "--model", ".", "--duration=-5"],
    ["decode", "--model", ".", "--out-name", ""],
    ["evaluate", "--pipelines", "", "a.edf"],
    ["evaluate", "a.edf", "--seed=-1"],
    ["evaluate", ",,,"],
    ["train", "a.edf", "--out", ""],
    ["train", "a.edf", "--pad", "1e9", "--out", "m"],
    ["record", "-s", "x", "--out", "r.fif", "--resolve-timeout=-1"],
    ["evaluate", "a.edf", "--tmax", "1000"],
], ids=lambda a: " ".join(a) or "''")
def test_the_reported_cases_in_a_subprocess(argv, tmp_path):
    proc = run_module("neurodeck.app.cli", *argv, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "expected" in err, err
    assert not any(tmp_path.iterdir())  # nothing written (train --out '' wrote into the cwd)


def test_train_out_on_a_file_or_read_only_folder_is_refused_before_training(tmp_path, asset_edfs):
    f = tmp_path / "exists.txt"
    f.write_text("x")
    _assert_refused(["train", str(asset_edfs[0]), "--out", str(f)], str(f))
    _assert_refused(["train", str(asset_edfs[0]), "--out", "/proc/neurodeck-model"], "/proc/neurodeck-model")


# ---------------------------------------------------------------------------------------------
# model bundles that must not load (item 14 and "a bundle whose step state has a __class__ key")
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0, 1e9])
def test_bundle_with_a_non_finite_or_absurd_sfreq_is_refused(bundle_dir, tmp_path, value):
    import json
    import shutil

    from neurodeck.decoders.errors import ModelBundleError
    from neurodeck.decoders.onnx import SIDECAR_FILE, load_bundle

    dst = shutil.copytree(bundle_dir, tmp_path / "b")
    meta = json.loads((dst / SIDECAR_FILE).read_text())
    meta["sfreq"] = value
    (dst / SIDECAR_FILE).write_text(json.dumps(meta))  # json writes Infinity / NaN
    with pytest.raises(ModelBundleError, match="'sfreq' must be > 0 and <= 1e6"):
        load_bundle(dst)
    proc = run_module("neurodeck.app.cli", "decode", "--model", dst, "--timeout", "0.5", timeout=60)
    assert proc.returncode == 2 and "'sfreq'" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_bundle_step_state_with_a_dunder_key_is_refused(bundle_dir, tmp_path):
    import json
    import shutil

    from neurodeck.decoders.errors import ModelBundleError
    from neurodeck.decoders.onnx import SIDECAR_FILE, load_bundle

    dst = shutil.copytree(bundle_dir, tmp_path / "b")
    meta = json.loads((dst / SIDECAR_FILE).read_text())
    meta["feature_steps"][0]["state"]["__class__"] = "x"
    (dst / SIDECAR_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match="__class__"):
        load_bundle(dst)


def test_replay_of_a_truncated_fif_is_one_line_not_a_thread_traceback(tmp_path):
    import mne
    import numpy as np

    path = tmp_path / "cut_raw.fif"
    raw = mne.io.RawArray(np.zeros((4, 256 * 20)), mne.create_info(["C3", "C4", "Cz", "Fz"], 256.0, "eeg"),
                          verbose=False)
    raw.save(path, verbose=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    proc = run_module("neurodeck.app.cli", "replay", path, "--speed", "10", "--no-progress",
                      timeout=60)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "cut_raw.fif" in err, err


def test_a_window_that_fits_no_trial_says_so(tmp_path):
    """`--tmax` past every trial's recording: said "need at least 2 classes, got []"."""
    import mne
    import numpy as np

    path = tmp_path / "short_raw.fif"
    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((3, 160 * 20)) * 1e-5,
                          mne.create_info(["C3", "Cz", "C4"], 160.0, "eeg"), verbose=False)
    raw.set_annotations(mne.Annotations([2, 5, 8, 11, 14, 17], [0] * 6, ["T1", "T2"] * 3))
    raw.save(path, verbose=False)
    proc = run_module("neurodeck.app.cli", "evaluate", path, "--pipelines", "mdm", "--no-progress",
                      "--tmax", "30", timeout=120)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "none of the 6 trials fits" in err and "--tmax 30" in err, err
