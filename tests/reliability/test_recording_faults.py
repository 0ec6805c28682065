"""Issue 13 (reliability round 2): ways to lose, corrupt or never finish a recording.

Every test records from LSL outlets written here: a counting channel (sample k carries k, or an
offset + k) and numbered markers, under unique names, so a lost, duplicated or moved sample or
marker fails the test.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import mne
import numpy as np
import pytest

from neurodeck.acquisition.errors import AmbiguousStreamError, RecordingError
from neurodeck.acquisition.finalize import recover
from neurodeck.acquisition.inlet import Inlet
from neurodeck.acquisition.outlet import DataOutlet, MarkerOutlet, local_clock, make_stream_info
from neurodeck.acquisition.partial import partial_dir_for
from neurodeck.acquisition.recorder import Recorder
from tests.cli_server import run_module
from tests.reliability.conftest import push_fast, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _read_fif(path: Path) -> mne.io.Raw:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*naming conventions.*")
        return mne.io.read_raw_fif(path, preload=True, verbose=False)


def _counting(name: str, n_ch: int = 3, srate: float = 256.0, fmt: str = "float32",
              stype: str = "EEG") -> DataOutlet:
    """An outlet whose channel 0 is the sample counter (misc), the others microvolt EEG."""
    labels = ["counter"] + [f"C{i}" for i in range(1, n_ch)]
    info = make_stream_info(name, stype, labels, srate, fmt=fmt, source_id=name,
                            units=[""] + ["microvolts"] * (n_ch - 1),
                            ch_types=["misc"] + ["EEG"] * (n_ch - 1))
    return DataOutlet(info)


def _rows(k: np.ndarray, n_ch: int, dtype=np.float32) -> np.ndarray:
    return np.column_stack([k] + [k % 7 for _ in range(1, n_ch)]).astype(dtype)


def _cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return run_module("neurodeck.app.cli", *args, cwd=ROOT, timeout=timeout)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _record(sources: list[str], out: Path, push, expected: dict[str, int], **kw) -> Recorder:
    """Record ``sources`` while ``push()`` sends; stop once ``expected`` counts were received."""
    rec = Recorder(sources, out, flush_every=0.2, drain_quiet=0.5, **kw)
    rec.start()
    push()
    assert wait_until(lambda: all(rec.counters[n]["received"] >= c for n, c in expected.items()), 15), \
        rec.counters
    rec.stop()
    return rec


# ---------------------------------------------------------------------------------------------
# 1. recover on a live recording
# ---------------------------------------------------------------------------------------------
def test_recover_refuses_a_live_recording_and_a_kill9_frees_it(tmp_path, unique_name):
    """`recover` of the folder a running `record` writes is refused (exit 2); after kill -9 it works."""
    srate, n_ch = 256.0, 3
    eeg = _counting(unique_name, n_ch, srate)
    sent = 0

    def push_for(seconds: float, t0: float) -> None:
        nonlocal sent
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            k = np.arange(sent, sent + 16)
            eeg.push_chunk(_rows(k, n_ch), t0 + k[-1] / srate)
            sent += 16
            time.sleep(16 / srate)

    outs = [tmp_path / "live_raw.fif", tmp_path / "killed_raw.fif"]
    for out in outs:
        sent = 0
        proc = subprocess.Popen(
            [sys.executable, "-m", "neurodeck.app.cli", "record", "-s", unique_name, "--out", str(out),
             "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pdir = partial_dir_for(out)
        try:
            assert eeg.wait_for_consumers(30)
            assert wait_until(lambda p=pdir: (p / "meta.json").exists(), 30)
            t0 = local_clock()
            push_for(1.0, t0)
            if out.name.startswith("live"):
                err = _one_line_error(_cli("recover", str(pdir)))
                assert "in use" in err and str(proc.pid) in err, err
                assert pdir.is_dir() and not out.exists()
                push_for(1.0, t0)
                time.sleep(0.5)
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(60) == 0, proc.stderr.read()
                raw = _read_fif(out)
                # every sample sent while recover was refused is in the file, in order
                np.testing.assert_array_equal(raw.get_data(picks=["counter"])[0], np.arange(sent))
            else:
                time.sleep(0.5)  # > one flush period
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                done = _cli("recover", str(pdir))
                assert done.returncode == 0, done.stderr
                counter = _read_fif(out).get_data(picks=["counter"])[0]
                assert sent - srate <= counter.size <= sent
                np.testing.assert_array_equal(counter, np.arange(counter.size))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    eeg.close()


def test_second_record_to_a_live_output_says_in_use(tmp_path, unique_name):
    eeg = _counting(unique_name)
    out = tmp_path / "a_raw.fif"
    rec = Recorder([unique_name], out, flush_every=0.1).start()
    try:
        push_fast(eeg, _rows(np.arange(64), 3), 256.0, local_clock())
        assert wait_until(lambda: rec.counters[unique_name]["written"] == 64, 10)
        with pytest.raises(RecordingError, match="in use by another running recording"):
            Recorder([unique_name], out, overwrite=True).start()
        with pytest.raises(RecordingError, match="in use by a running recorder"):
            recover(partial_dir_for(out))
        assert partial_dir_for(out).is_dir()
    finally:
        rec.abort()
        eeg.close()
    recover(partial_dir_for(out))  # the lock went with abort(): a normal leftover now
    np.testing.assert_array_equal(_read_fif(out).get_data(picks=["counter"])[0], np.arange(64))


# ---------------------------------------------------------------------------------------------
# 2. extra streams whose file names collide
# ---------------------------------------------------------------------------------------------
def test_extra_streams_with_colliding_file_names_each_keep_their_data(tmp_path, unique_name):
    srate, n = 128.0, 256
    eeg = _counting(unique_name, 3, srate)
    names = [f"{unique_name} x", f"{unique_name}_x", f"{unique_name}_X"]
    aux = [_counting(nm, 2, 64.0, fmt="double64", stype="Misc") for nm in names]
    out = tmp_path / "multi_raw.fif"

    def push():
        t0 = local_clock()
        push_fast(eeg, _rows(np.arange(n), 3), srate, t0)
        for i, o in enumerate(aux):  # stream i counts from 1000 * i
            push_fast(o, _rows(1000.0 * i + np.arange(64), 2, np.float64), 64.0, t0)

    rec = _record([unique_name, *names], out, push, {unique_name: n, **dict.fromkeys(names, 64)})
    side = json.loads(out.with_name("multi_raw.json").read_text())
    files = {s["name"]: s["file"] for s in side["streams"]}
    assert len(set(files.values())) == 4, files
    for i, nm in enumerate(names):
        with np.load(out.with_name(files[nm])) as z:
            np.testing.assert_array_equal(z["data"][:, 0], 1000.0 * i + np.arange(64))
    assert rec.path == out
    for o in [eeg, *aux]:
        o.close()


# ---------------------------------------------------------------------------------------------
# 3. device-clock timestamps
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("first_stamp", [100.0, 0.0])
def test_device_clock_stamps_are_delivered_and_recorded(tmp_path, unique_name, first_stamp):
    """A source stamping with its own clock (from 100 s or 0): nothing held for ever, nothing lost."""
    srate, n_ch = 256.0, 3
    eeg = _counting(unique_name, n_ch, srate)
    n_live = 1600
    stamps = first_stamp + np.arange(n_live + 300) / srate
    inlet = Inlet(unique_name, buffer_seconds=20.0).start()
    try:
        assert eeg.wait_for_consumers(10)
        push_fast(eeg, _rows(np.arange(n_live), n_ch), srate, 0.0, timestamps=stamps)
        # all delivered while the source still runs (was: held until 5 s of samples piled up)
        assert inlet.wait_for_samples(n_live, timeout=5.0), inlet.n_received
        data, ts = inlet.latest(n_live)
        np.testing.assert_array_equal(data[0], np.arange(n_live))
        # as sent (+ time_correction, ~us); liblsl reads a stamp of exactly 0.0 as "now"
        first = 16 if first_stamp == 0.0 else 0
        np.testing.assert_allclose(ts[first:], stamps[first:n_live], atol=1e-3)
    finally:
        inlet.stop()

    # a short recording (fewer samples than the inlet may hold): every sample in the FIF
    out = tmp_path / "dev_raw.fif"
    n_rec = 300

    def push():
        push_fast(eeg, _rows(np.arange(n_rec), n_ch), srate, 0.0, timestamps=stamps)

    rec = Recorder([unique_name], out, flush_every=0.2, drain_quiet=0.5).start()
    push()
    time.sleep(0.3)  # the samples reached the inlet (held or not); stop must not drop them
    rec.stop()
    counter = _read_fif(out).get_data(picks=["counter"])[0]
    np.testing.assert_array_equal(counter, np.arange(n_rec))
    eeg.close()


# ---------------------------------------------------------------------------------------------
# 4. integer streams
# ---------------------------------------------------------------------------------------------
def test_int32_stream_above_2_to_24_stays_exact(tmp_path, unique_name):
    srate, n = 128.0, 768
    eeg = _counting(unique_name, 2, srate, fmt="int32")
    out = tmp_path / "int_raw.fif"
    values = 20_000_000 + np.arange(n)  # > 2**24: float32 cannot hold them

    def push():
        push_fast(eeg, _rows(values, 2, np.int32), srate, local_clock())

    _record([unique_name], out, push, {unique_name: n})
    counter = _read_fif(out).get_data(picks=["counter"])[0]
    np.testing.assert_array_equal(counter, values)
    assert np.unique(counter).size == n
    eeg.close()


def test_int64_stream_above_2_to_53_is_kept_exact_next_to_the_fif(tmp_path, unique_name):
    import pylsl

    srate, n = 128.0, 256
    info = pylsl.StreamInfo(unique_name, "EEG", 2, srate, pylsl.cf_int64, unique_name)
    chans = info.desc().append_child("channels")
    for label, kind in (("counter", "misc"), ("C1", "EEG")):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("type", kind)
    eeg = DataOutlet(info)  # make_stream_info has no int64 (few sources send it)
    out = tmp_path / "i64_raw.fif"
    values = 2**53 + np.arange(n, dtype=np.int64)  # doubles (the FIF) cannot tell 2**53 from +1

    def push():
        push_fast(eeg, np.column_stack([values, values % 7]).astype(np.int64), srate, local_clock())

    _record([unique_name], out, push, {unique_name: n})
    side = json.loads(out.with_name("i64_raw.json").read_text())
    exact = out.with_name(side["streams"][0]["exact_file"])
    with np.load(exact) as z:
        assert z["data"].dtype == np.int64
        np.testing.assert_array_equal(z["data"][:, 0], values)
        assert z["timestamps"].shape == (n,)
    assert _read_fif(out).n_times == n
    eeg.close()


# ---------------------------------------------------------------------------------------------
# 5. + 6. outputs never overwritten without --overwrite
# ---------------------------------------------------------------------------------------------
def test_fif_gz_does_not_take_the_sidecar_of_an_earlier_fif(tmp_path, unique_name):
    srate, n = 128.0, 256
    eeg = _counting(unique_name, 2, srate)
    first = tmp_path / "col.fif"
    _record([unique_name], first, lambda: push_fast(eeg, _rows(np.arange(n), 2), srate,
                                                     local_clock()), {unique_name: n})
    side_before = first.with_name("col.json").read_bytes()
    second = tmp_path / "col.fif.gz"
    _record([unique_name], second, lambda: push_fast(eeg, _rows(np.arange(n), 2), srate,
                                                      local_clock()), {unique_name: n})
    assert first.with_name("col.json").read_bytes() == side_before
    side2 = json.loads(second.with_name("col.fif.gz.json").read_text())
    assert side2["file"] == "col.fif.gz" and side2["n_times"] == n
    # an unrelated file under a sidecar name is refused at start, before recording
    third = tmp_path / "other_raw.fif"
    third.with_name("other_raw.json").write_text("{}")
    with pytest.raises(RecordingError, match="other_raw.json.*already exists"):
        Recorder([unique_name], third).start()
    assert not partial_dir_for(third).exists()
    eeg.close()


def test_recover_out_existing_needs_overwrite(tmp_path, unique_name):
    srate, n = 128.0, 256
    eeg = _counting(unique_name, 2, srate)
    out = tmp_path / "p_raw.fif"
    rec = Recorder([unique_name], out, flush_every=0.1).start()
    push_fast(eeg, _rows(np.arange(n), 2), srate, local_clock())
    assert wait_until(lambda: rec.counters[unique_name]["written"] >= n, 10)
    time.sleep(0.3)  # flushed
    rec.abort()  # what a crash leaves (without the kill)
    pdir = partial_dir_for(out)
    existing = tmp_path / "existing_raw.fif"
    existing.write_bytes(b"precious")
    err = _one_line_error(_cli("recover", str(pdir), "--out", str(existing)))
    assert "existing_raw.fif" in err and "already exists" in err
    assert existing.read_bytes() == b"precious" and pdir.is_dir()
    ok = _cli("recover", str(pdir), "--out", str(existing), "--overwrite")
    assert ok.returncode == 0, ok.stderr
    np.testing.assert_array_equal(_read_fif(existing).get_data(picks=["counter"])[0], np.arange(n))
    eeg.close()


# ---------------------------------------------------------------------------------------------
# 7. + 8. recordings that could never be finished
# ---------------------------------------------------------------------------------------------
def test_marker_label_with_mne_colon_escape_is_recorded(tmp_path, unique_name):
    srate, n = 128.0, 512
    eeg = _counting(unique_name, 2, srate)
    mk = MarkerOutlet(unique_name + "-m", source_id=unique_name + "-m")
    labels = ["a{COLON}b", "t:1", "{COLON}", "769"]
    out = tmp_path / "colon_raw.fif"

    def push():
        t0 = local_clock()
        push_fast(eeg, _rows(np.arange(n), 2), srate, t0)
        for i, lab in enumerate(labels):
            mk.push(lab, t0 + (100 * i + 50) / srate)

    _record([unique_name, unique_name + "-m"], out, push, {unique_name: n, unique_name + "-m": 4})
    ann = _read_fif(out).annotations
    assert [e["code"] for e in ann.extras] == labels
    assert list(ann.description) == ["a{colon}b", "t:1", "{colon}", "left_hand"]
    np.testing.assert_allclose(ann.onset * srate, [50, 150, 250, 350], atol=1)
    side = json.loads(out.with_name("colon_raw.json").read_text())
    assert [m["code"] for m in side["markers"]] == labels
    eeg.close()
    mk.close()


def test_only_irregular_or_string_streams_are_refused_at_start(tmp_path, unique_name):
    irregular = _counting(unique_name, 2, 0.0)
    mk = MarkerOutlet(unique_name + "-m", source_id=unique_name + "-m")
    out = tmp_path / "irr_raw.fif"
    t0 = time.monotonic()
    with pytest.raises(RecordingError, match="no regular-rate numeric stream"):
        Recorder([unique_name, unique_name + "-m"], out).start()
    assert time.monotonic() - t0 < 10
    assert not partial_dir_for(out).exists() and not out.exists()
    err = _one_line_error(_cli("record", "-s", unique_name, "--out", str(out), "--duration", "30"))
    assert "no regular-rate numeric stream" in err
    irregular.close()
    mk.close()


# ---------------------------------------------------------------------------------------------
# 9. disk full while finalizing
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE is Linux only")
def test_disk_full_while_finalizing_keeps_partial_and_no_file_under_the_final_name(tmp_path, unique_name):
    srate, n_ch = 512.0, 16
    eeg = _counting(unique_name, n_ch, srate, fmt="int32")  # the FIF holds int32 as doubles
    out = tmp_path / "full_raw.fif"
    limit = 200_000  # bytes per file: the int32 partial data (~130 kB) fit, the FIF (~260 kB) not
    script = f"""
import resource, sys
from neurodeck.app.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))  # Python ignores SIGXFSZ: EFBIG
sys.exit(main(["record", "-s", {unique_name!r}, "--out", {str(out)!r}, "--duration", "4", "-q"]))
"""
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert eeg.wait_for_consumers(30)
        k0 = 0
        t0 = local_clock()
        while proc.poll() is None and k0 < 40 * 512:
            k = np.arange(k0, k0 + 64)
            due = t0 + k[-1] / srate - local_clock()
            if due > 0:  # pushed when its last sample is due (never stamped ahead of time)
                time.sleep(due)
            eeg.push_chunk(_rows(k, n_ch, np.int32), t0 + k[-1] / srate)
            k0 += 64
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, (stdout, stderr)
    err = stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    pdir = partial_dir_for(out)
    assert "kept" in err and str(pdir) in err and "--out" in err, err
    assert pdir.is_dir() and not out.exists() and not out.with_name("full_raw.json").exists()
    path = recover(pdir, tmp_path / "elsewhere_raw.fif")  # no limit here
    counter = _read_fif(path).get_data(picks=["counter"])[0]
    np.testing.assert_array_equal(counter, np.arange(counter.size))
    assert counter.size >= 3 * srate
    eeg.close()


# ---------------------------------------------------------------------------------------------
# tampered partial folders
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tamper", ["n_channels_0", "marker_without_label"])
def test_tampered_partial_folder_is_a_one_line_error_or_recovers(tmp_path, unique_name, tamper):
    srate, n = 128.0, 256
    eeg = _counting(unique_name, 2, srate)
    mk = MarkerOutlet(unique_name + "-m", source_id=unique_name + "-m")
    out = tmp_path / "t_raw.fif"
    rec = Recorder([unique_name, unique_name + "-m"], out, flush_every=0.1).start()
    t0 = local_clock()
    push_fast(eeg, _rows(np.arange(n), 2), srate, t0)
    mk.push("769", t0 + 10 / srate)
    mk.push("770", t0 + 20 / srate)
    assert wait_until(lambda: rec.counters[unique_name + "-m"]["written"] == 2, 10)
    time.sleep(0.3)
    rec.abort()
    pdir = partial_dir_for(out)
    if tamper == "n_channels_0":
        meta = json.loads((pdir / "meta.json").read_text())
        meta["streams"][0]["n_channels"] = 0
        (pdir / "meta.json").write_text(json.dumps(meta))
        err = _one_line_error(_cli("recover", str(pdir)))
        assert "n_channels 0" in err and "expected an integer >= 1" in err
        assert pdir.is_dir()
    else:
        lines = (pdir / "events.jsonl").read_text().splitlines()
        evs = [json.loads(x) for x in lines]
        first = next(i for i, e in enumerate(evs) if e["kind"] == "marker")
        del evs[first]["label"]
        (pdir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evs))
        done = _cli("recover", str(pdir))
        assert done.returncode == 0, done.stderr
        side = json.loads(out.with_name("t_raw.json").read_text())
        assert [m["code"] for m in side["markers"]] == ["770"] and side["damaged_events_skipped"] == 1
    eeg.close()
    mk.close()


# ---------------------------------------------------------------------------------------------
# 10. backward clock jump
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # live-paced LSL source (6-26 s); `pytest -m slow`
def test_markers_stay_on_their_samples_across_a_backward_clock_jump(tmp_path, unique_name):
    """The source's clock jumps back 2 s mid-run; EEG and markers share it. Each numbered marker
    must land on the sample it was stamped with (was: 2 of 12 markers 320 samples off)."""
    srate, n, jump_at, back = 256.0, 1536, 768, 2.0
    eeg = _counting(unique_name, 2, srate)
    mname = unique_name + "-m"
    mk = MarkerOutlet(mname, source_id=mname)
    at = list(range(64, n, 128))  # 12 markers; 8 of them at times the other stretch also covers
    out = tmp_path / "jump_raw.fif"
    rec = Recorder([unique_name, mname], out, flush_every=0.2, drain_quiet=0.5).start()
    t0 = local_clock()

    def stamp(k):
        return t0 + k / srate - (back if k >= jump_at else 0.0)

    chunk = 16
    for start in range(0, n, chunk):  # paced: markers arrive among their samples, as live
        k = np.arange(start, start + chunk)
        due = t0 + k[-1] / srate - local_clock()
        if due > 0:
            time.sleep(due)
        eeg.push_chunk(_rows(k, 2), stamp(k[-1]))
        for m in at:
            if start <= m < start + chunk:
                mk.push(f"m{m}", stamp(m))
    assert wait_until(lambda: rec.counters[unique_name]["received"] == n
                      and rec.counters[mname]["received"] == len(at), 10), rec.counters
    rec.stop()
    raw = _read_fif(out)
    np.testing.assert_array_equal(raw.get_data(picks=["counter"])[0], np.arange(n))
    ann = raw.annotations
    assert list(ann.description) == [f"m{m}" for m in at]
    np.testing.assert_allclose(ann.onset * srate, at, atol=1.0)
    eeg.close()
    mk.close()


# ---------------------------------------------------------------------------------------------
# stop while markers keep coming
# ---------------------------------------------------------------------------------------------
def test_stop_while_markers_arrive_every_quarter_second_drains_without_timeout(tmp_path, unique_name,
                                                                                caplog):
    """Markers at 4/s never leave a quiet second: stop() waited the whole drain timeout and
    logged "final drain timed out". Now a marker stamped after the stop time ends the drain."""
    import threading

    srate = 256.0
    eeg = _counting(unique_name, 2, srate)
    mname = unique_name + "-m"
    mk = MarkerOutlet(mname, source_id=mname)
    rec = Recorder([unique_name, mname], tmp_path / "busy_raw.fif", flush_every=0.2,
                   drain_timeout=5.0).start()
    stop = threading.Event()
    sent: list[str] = []

    def source():
        t0, k, i = local_clock(), 0, 0
        while not stop.is_set():
            due = int((local_clock() - t0) * srate)
            if due - k >= 16:
                ks = np.arange(k, k + 16)
                eeg.push_chunk(_rows(ks, 2), t0 + ks[-1] / srate)
                k += 16
            if local_clock() - t0 >= 0.25 * i:
                mk.push(f"n{i}")
                sent.append(f"n{i}")
                i += 1
            time.sleep(0.005)

    th = threading.Thread(target=source, daemon=True)
    th.start()
    assert wait_until(lambda: rec.counters[mname]["received"] >= 6, 10)
    with caplog.at_level("WARNING", logger="neurodeck.acquisition.recorder"):
        path = rec.stop()
    stop.set()
    th.join(5)
    assert "final drain timed out" not in caplog.text
    side = json.loads(path.with_name("busy_raw.json").read_text())
    codes = [m["code"] for m in side["markers"]]
    assert codes == sent[: len(codes)] and len(codes) >= 6  # numbered, in order, none skipped
    eeg.close()
    mk.close()


# ---------------------------------------------------------------------------------------------
# 12. markers stamped in Unix time
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # live-paced LSL source (6-26 s); `pytest -m slow`
def test_markers_stamped_in_unix_time_are_placed_on_their_samples(tmp_path, unique_name):
    """A marker source stamping with time.time(): all 11 markers were left out of the FIF."""
    srate, n = 256.0, 1280
    eeg = _counting(unique_name, 2, srate)
    mname = unique_name + "-m"
    mk = MarkerOutlet(mname, source_id=mname)
    at = list(range(79, n, 112))  # 11 numbered markers, each on the last sample of a pushed chunk
    out = tmp_path / "unix_raw.fif"
    rec = Recorder([unique_name, mname], out, flush_every=0.2, drain_quiet=0.5).start()
    unix_minus_lsl = time.time() - local_clock()
    t0 = local_clock()
    for start in range(0, n, 16):  # live pace: a marker is pushed when its sample is
        k = np.arange(start, start + 16)
        due = t0 + k[-1] / srate - local_clock()
        if due > 0:
            time.sleep(due)
        eeg.push_chunk(_rows(k, 2), t0 + k[-1] / srate)
        for m in at:
            if start <= m < start + 16:
                mk.push(f"m{m}", t0 + m / srate + unix_minus_lsl)
    assert wait_until(lambda: rec.counters[mname]["received"] == len(at), 10)
    rec.stop()
    ann = _read_fif(out).annotations
    assert list(ann.description) == [f"m{m}" for m in at]
    # placed by arrival: within the transport latency (a few ms = a few samples) of their sample
    np.testing.assert_allclose(ann.onset * srate, at, atol=4.0)
    side = json.loads(out.with_name("unix_raw.json").read_text())
    assert side["markers_outside_eeg"] == 0
    assert side["marker_clock_offsets"][mname] == pytest.approx(-unix_minus_lsl, abs=0.5)  # added
    assert side["markers"][0]["timestamp_sent"] > 1e9  # the original stamps are kept
    eeg.close()
    mk.close()


# ---------------------------------------------------------------------------------------------
# 11. a stream whose real rate is not its nominal rate
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # live-paced LSL source (6-26 s); `pytest -m slow`
def test_stream_claiming_160_hz_but_sending_150_hz_is_reported(tmp_path, unique_name):
    nominal, real, n = 160.0, 150.0, 600  # 4 s
    eeg = _counting(unique_name, 2, nominal)
    out = tmp_path / "rate_raw.fif"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurodeck.app.cli", "record", "-s", unique_name, "--out", str(out),
         "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert eeg.wait_for_consumers(30)
        assert wait_until(lambda: partial_dir_for(out).is_dir(), 30)
        t0 = local_clock()
        for start in range(0, n, 15):  # every sample stamped at the real 150 Hz, paced live
            k = np.arange(start, start + 15)
            due = t0 + k[-1] / real - local_clock()
            if due > 0:
                time.sleep(due)
            eeg.push_chunk(_rows(k, 2), t0 + k[-1] / real)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "claims 160 Hz but its timestamps say 150" in stderr, stderr
    side = json.loads(out.with_name("rate_raw.json").read_text())
    assert side["streams"][0]["measured_srate"] == pytest.approx(real, rel=0.005)
    assert any("claims 160 Hz" in w for w in side["warnings"])
    np.testing.assert_array_equal(_read_fif(out).get_data(picks=["counter"])[0], np.arange(n))
    eeg.close()


# ---------------------------------------------------------------------------------------------
# 13. two streams with the same name
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # live-paced LSL source (6-26 s); `pytest -m slow`
def test_two_streams_with_one_name_are_an_error_listing_both_unless_source_id_picks(tmp_path, unique_name,
                                                                                   bundle_dir):
    srate, n = 128.0, 256
    labels = ["counter", "C1"]
    outlets = [DataOutlet(make_stream_info(unique_name, "EEG", labels, srate, source_id=f"{unique_name}-{i}",
                                           units=["", "microvolts"], ch_types=["misc", "EEG"]))
               for i in (1, 2)]
    out = tmp_path / "dup_raw.fif"
    with pytest.raises(AmbiguousStreamError) as info:
        Recorder([unique_name], out).start()
    for i in (1, 2):
        assert f"{unique_name}-{i}" in str(info.value)
    assert "source id" in str(info.value) and not partial_dir_for(out).exists()
    err = _one_line_error(_cli("record", "-s", unique_name, "--out", str(out), "--duration", "1"))
    assert err.count(unique_name + "-") == 2 and "host" in err, err
    err = _one_line_error(_cli("decode", "--model", str(bundle_dir), "--stream", unique_name, "--timeout", "2"))
    assert err.count(unique_name + "-") == 2, err
    # --source-id picks one: record it
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurodeck.app.cli", "record", "--source-id", f"{unique_name}-2",
         "--out", str(out), "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert outlets[1].wait_for_consumers(30)
        assert wait_until(lambda: partial_dir_for(out).is_dir(), 30)
        time.sleep(0.3)
        push_fast(outlets[1], _rows(np.arange(n), 2), srate, local_clock())
        push_fast(outlets[0], _rows(1000 + np.arange(n), 2), srate, local_clock())
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    np.testing.assert_array_equal(_read_fif(out).get_data(picks=["counter"])[0], np.arange(n))
    for o in outlets:
        o.close()


def test_decode_refuses_an_out_name_equal_to_the_eeg_stream(tmp_path, unique_name, bundle_dir):
    eeg = _counting(unique_name, 2, 128.0)
    err = _one_line_error(_cli("decode", "--model", str(bundle_dir), "--stream", unique_name,
                               "--out-name", unique_name, "--timeout", "5"))
    assert "--out-name" in err and "EEG stream" in err, err
    eeg.close()


@pytest.mark.slow  # live-paced LSL source (6-26 s); `pytest -m slow`
def test_eeg_and_markers_both_on_a_device_clock_keep_their_relative_placement(tmp_path, unique_name):
    """EEG and markers stamped by the same device clock (from 100 s): markers on their samples
    (the Unix-time correction must not move markers that share the EEG's clock)."""
    srate, n = 256.0, 1024
    eeg = _counting(unique_name, 2, srate)
    mname = unique_name + "-m"
    mk = MarkerOutlet(mname, source_id=mname)
    at = list(range(95, n, 128))  # on the last sample of a pushed chunk
    out = tmp_path / "devm_raw.fif"
    rec = Recorder([unique_name, mname], out, flush_every=0.2, drain_quiet=0.5).start()
    t0 = local_clock()
    for start in range(0, n, 16):
        k = np.arange(start, start + 16)
        due = t0 + k[-1] / srate - local_clock()
        if due > 0:
            time.sleep(due)
        eeg.push_chunk(_rows(k, 2), 100.0 + k[-1] / srate)
        for m in at:
            if start <= m < start + 16:
                mk.push(f"m{m}", 100.0 + m / srate)
    assert wait_until(lambda: rec.counters[unique_name]["received"] == n
                      and rec.counters[mname]["received"] == len(at), 10), rec.counters
    rec.stop()
    raw = _read_fif(out)
    np.testing.assert_array_equal(raw.get_data(picks=["counter"])[0], np.arange(n))
    assert list(raw.annotations.description) == [f"m{m}" for m in at]
    np.testing.assert_allclose(raw.annotations.onset * srate, at, atol=1.0)
    assert json.loads(out.with_name("devm_raw.json").read_text())["marker_clock_offsets"] == {}
    eeg.close()
    mk.close()


@pytest.mark.parametrize("fmt, existing", [("edf", "exp_raw.edf"), ("brainvision", "exp_raw.vmrk")])
def test_record_export_refuses_to_overwrite_before_recording(tmp_path, unique_name, fmt, existing):
    """`record --format edf` replaced an existing exp_raw.edf (a variant of items 5 and 6)."""
    victim = tmp_path / existing
    victim.write_bytes(b"precious")
    err = _one_line_error(_cli("record", "-s", unique_name, "--out", str(tmp_path / "exp_raw.fif"),
                               "--format", fmt, "--resolve-timeout", "1"))
    assert existing in err and "already exists" in err
    assert victim.read_bytes() == b"precious" and not partial_dir_for(tmp_path / "exp_raw.fif").exists()


def test_recover_after_a_finalize_killed_half_way_replaces_its_own_unfinished_files(tmp_path, unique_name):
    """kill -9 during finalize leaves a half-written FIF under the final name; `recover` (no
    --overwrite) must still finish: the files are its own (meta.json says it was finalizing
    to that path), while an unrelated existing file is refused (item 6)."""
    srate, n = 128.0, 256
    eeg = _counting(unique_name, 2, srate)
    out = tmp_path / "half_raw.fif"
    rec = Recorder([unique_name], out, flush_every=0.1).start()
    push_fast(eeg, _rows(np.arange(n), 2), srate, local_clock())
    assert wait_until(lambda: rec.counters[unique_name]["written"] == n, 10)
    time.sleep(0.3)
    rec.abort()
    pdir = partial_dir_for(out)
    meta = json.loads((pdir / "meta.json").read_text())
    meta["finalizing_to"] = str(out.resolve())  # what finalize writes before its first byte
    (pdir / "meta.json").write_text(json.dumps(meta))
    out.write_bytes(b"half a FIF")  # what the kill left
    out.with_name("half_raw.json").write_text("{")
    done = _cli("recover", str(pdir))
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(_read_fif(out).get_data(picks=["counter"])[0], np.arange(n))
    assert json.loads(out.with_name("half_raw.json").read_text())["recovered"] is True
    eeg.close()


# ---------------------------------------------------------------------------------------------
# decode's latency figures are the recent ones
# ---------------------------------------------------------------------------------------------
def test_engine_latency_statistics_follow_the_recent_decisions(unique_name):
    """keep_stats decisions in, the statistics froze (decode's "recent" latency after 100,000)."""
    from neurodeck.app.engine import OnlineEngine
    from tests.app.test_engine import LABELS, SRATE, CounterDecoder, _push

    outlet = DataOutlet(make_stream_info(unique_name, "EEG", LABELS, SRATE, fmt="double64",
                                         source_id=unique_name))
    inlet = Inlet(unique_name, buffer_seconds=10).start()
    engine = OnlineEngine(CounterDecoder(), inlet, hop_s=32 / SRATE, out_name=None, keep_stats=8)
    got = []
    engine.add_decision_listener(got.append)
    engine.start()
    n_total = int(SRATE * 2)
    _push(outlet, n_total, 16)
    assert wait_until(lambda: got and got[-1].index == n_total, 10)
    engine.stop()
    inlet.stop()
    lat = engine.stats.latency_s
    assert len(got) > 8 and 4 <= len(lat) <= 8
    assert lat == [d.latency for d in got[-len(lat):]]  # the newest decisions, not the first 8
    assert len(engine.stats.read_s) == len(lat)
    outlet.close()
