"""Recorder: crash-safe partial storage, finalize to FIF + sidecar, recover, export, errors.

Live tests use real loopback LSL (DataOutlet / MarkerOutlet pushing from a thread, first channel
a sample counter) and unique stream names.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import mne
import numpy as np
import pytest

from neurodeck.acquisition.errors import RecordingError
from neurodeck.acquisition.finalize import export_recording, recover
from neurodeck.acquisition.outlet import DataOutlet, MarkerOutlet, local_clock, make_stream_info
from neurodeck.acquisition.partial import PartialStore, partial_dir_for
from neurodeck.acquisition.recorder import Recorder
from neurodeck.acquisition.stream_meta import describe

ROOT = Path(__file__).resolve().parents[2]


def _read_fif(path: Path) -> mne.io.Raw:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*naming conventions.*")
        return mne.io.read_raw_fif(path, preload=True, verbose=False)


def _eeg_desc(name: str, n_ch: int, srate: float) -> dict:
    labels = ["counter"] + [f"EEG{i}" for i in range(1, n_ch)]
    return describe({
        "name": name, "type": "EEG", "n_channels": n_ch, "srate": srate,
        "channel_format": "float32", "labels": labels,
        "units": [""] + ["microvolts"] * (n_ch - 1), "types": ["misc"] + ["EEG"] * (n_ch - 1),
    })


# ---------------------------------------------------------------------------------------------
# storage, finalize and recover without LSL
# ---------------------------------------------------------------------------------------------
def test_recover_truncates_incomplete_sample_and_keeps_markers(tmp_path):
    srate, n_ch = 100.0, 4
    out = tmp_path / "crash_raw.fif"
    eeg = {**_eeg_desc("E", n_ch, srate), "key": "s0"}
    mk = {**describe({"name": "M", "type": "Markers", "n_channels": 1, "srate": 0.0,
                      "channel_format": "string", "is_marker": True}), "key": "s1"}
    aux = {**describe({"name": "Aux", "type": "Misc", "n_channels": 2, "srate": 50.0,
                       "channel_format": "double64"}), "key": "s2"}
    store = PartialStore(partial_dir_for(out), out, [eeg, mk, aux],
                         {"start_wall_time": 1.7e9, "start_lsl_time": 1000.0})
    t0 = 1000.0
    n = 250
    counter = np.arange(n, dtype=np.float32)
    data = np.column_stack([counter] + [np.full(n, 10.0 * c, np.float32) for c in range(1, n_ch)])
    ts = t0 + np.arange(n) / srate
    # a 20-sample gap (lost samples) after sample 199 on the wire
    ts[200:] += 20 / srate
    for i in range(0, n, 32):
        store.append("s0", data[i:i + 32], ts[i:i + 32])
    store.append("s2", np.ones((10, 2)), t0 + np.arange(10) / 50.0)
    store.event({"kind": "marker", "stream": "s1", "t": t0 + 50 / srate, "label": "769"})
    store.event({"kind": "marker", "stream": "s1", "t": t0 + 120 / srate, "label": "T1"})
    store.event({"kind": "state", "stream": "s0", "t": t0 + 150 / srate, "old": "CONNECTED", "new": "LOST"})
    store.flush()
    store.close()
    pdir = partial_dir_for(out)
    # crash artefacts: half a sample on the data file, a truncated JSON line
    with open(pdir / "s0.data.bin", "ab") as f:
        f.write(b"\x00" * 6)
    with open(pdir / "events.jsonl", "ab") as f:
        f.write(b'{"kind": "marker", "stream": "s1", "t": 10')

    path = recover(pdir)
    assert path == out.resolve()
    assert not pdir.exists()
    raw = _read_fif(path)
    assert raw.n_times == n
    assert raw.info["sfreq"] == srate
    assert raw.get_channel_types() == ["misc", "eeg", "eeg", "eeg"]
    np.testing.assert_array_equal(raw.get_data(picks=["counter"])[0], np.arange(n))
    # 10 uV on the wire -> 1e-5 V in the file
    np.testing.assert_allclose(raw.get_data(picks=["EEG1"])[0], 10e-6, rtol=1e-6)
    ann = raw.annotations
    assert list(ann.description) == ["left_hand", "T1", "stream_lost"]
    np.testing.assert_allclose(ann.onset * srate, [50, 120, 150], atol=1e-6)
    assert ann.extras[0] == {"stream": "M", "code": "769"}
    assert ann.extras[2]["stream"] == "E"
    side = json.loads(path.with_name("crash_raw.json").read_text())
    assert side["recovered"] is True
    assert side["first_timestamp"] == t0
    by_name = {s["name"]: s for s in side["streams"]}
    assert by_name["E"]["count"] == n and by_name["E"]["truncated_bytes"] == 6
    assert by_name["E"]["gaps"] == [{"after_sample": 199, "timestamp": ts[199], "duration":
                                     pytest.approx(21 / srate), "missing_samples": 20}]
    assert by_name["M"]["count"] == 2
    assert [m["code"] for m in side["markers"]] == ["769", "T1"]
    assert [m["name"] for m in side["markers"]] == ["left_hand", "T1"]
    aux_file = path.with_name(by_name["Aux"]["file"])
    with np.load(aux_file) as z:
        assert z["data"].shape == (10, 2) and z["timestamps"].shape == (10,)


def test_partial_store_refuses_leftover_and_unwritable(tmp_path):
    out = tmp_path / "x_raw.fif"
    PartialStore(partial_dir_for(out), out, [{**_eeg_desc("E", 2, 10.0), "key": "s0"}]).close()
    with pytest.raises(RecordingError, match="already exists"):
        PartialStore(partial_dir_for(out), out, [{**_eeg_desc("E", 2, 10.0), "key": "s0"}])
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    bad = blocker / "rec_raw.fif"
    with pytest.raises(RecordingError, match="afile"):
        PartialStore(partial_dir_for(bad), bad, [{**_eeg_desc("E", 2, 10.0), "key": "s0"}])


def test_recover_rejects_non_partial(tmp_path):
    with pytest.raises(RecordingError, match="not found"):
        recover(tmp_path / "nothing.partial")
    (tmp_path / "junk.partial").mkdir()
    with pytest.raises(RecordingError, match="meta.json"):
        recover(tmp_path / "junk.partial")


@pytest.mark.parametrize("fmt", ["edf", "brainvision"])
def test_export_reloads_with_annotations(tmp_path, fmt):
    srate, n_ch, n = 128.0, 3, 512
    out = tmp_path / "exp_raw.fif"
    store = PartialStore(partial_dir_for(out), out, [
        {**_eeg_desc("E", n_ch, srate), "key": "s0"},
        {**describe({"name": "M", "type": "Markers", "n_channels": 1, "srate": 0.0,
                     "channel_format": "string", "is_marker": True}), "key": "s1"},
    ])
    rng = np.random.default_rng(0)
    data = np.column_stack([np.arange(n), 20 * rng.standard_normal((n, n_ch - 1))]).astype(np.float32)
    store.append("s0", data, 50.0 + np.arange(n) / srate)
    store.event({"kind": "marker", "stream": "s1", "t": 50.0 + 256 / srate, "label": "770"})
    store.flush()
    store.close()
    fif = recover(partial_dir_for(out))
    exported = export_recording(fif, fmt)
    assert exported.suffix == {"edf": ".edf", "brainvision": ".vhdr"}[fmt]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = mne.io.read_raw(exported, preload=True, verbose=False)
    assert back.n_times == n and back.info["sfreq"] == srate
    assert back.ch_names == ["counter", "EEG1", "EEG2"]
    # EEG in volts survives the round trip (EDF stores 16-bit: compare with its resolution)
    orig = _read_fif(fif).get_data(picks=["EEG1", "EEG2"])
    tol = 1e-7 if fmt == "edf" else 1e-9
    np.testing.assert_allclose(back.get_data(picks=["EEG1", "EEG2"]), orig, atol=tol)
    idx = [i for i, d in enumerate(back.annotations.description) if d.endswith("right_hand")]  # BrainVision: "Comment/right_hand"
    assert len(idx) == 1
    assert abs(back.annotations.onset[idx[0]] * srate - 256) <= 1
    with pytest.raises(RecordingError, match="'gdf'"):
        export_recording(fif, "gdf")


# ---------------------------------------------------------------------------------------------
# live LSL
# ---------------------------------------------------------------------------------------------
def _needs_inlet() -> None:
    """Skip cleanly until acquisition.inlet / streams are on this branch."""
    pytest.importorskip("neurodeck.acquisition.inlet")
    pytest.importorskip("neurodeck.acquisition.streams")


class _Source:
    """EEG outlet (channel 0 = sample counter, others = known microvolt signals) + markers."""

    def __init__(self, name: str, n_ch: int, srate: float, markers: dict[int, str], chunk: int = 16):
        labels = ["counter"] + [f"EEG{i:02d}" for i in range(1, n_ch)]
        info = make_stream_info(name, "EEG", labels, srate, source_id=name,
                                units=[""] + ["microvolts"] * (n_ch - 1),
                                ch_types=["misc"] + ["EEG"] * (n_ch - 1))
        self.name, self.marker_name = name, name + "-markers"
        self.n_ch, self.srate, self.chunk = n_ch, srate, chunk
        self.eeg = DataOutlet(info, chunk_size=chunk)
        self.mk = MarkerOutlet(self.marker_name, source_id=self.marker_name)
        self.markers = dict(markers)
        self.sent = 0
        self.markers_sent: list[tuple[int, str]] = []
        self.stop_evt = threading.Event()
        self.thread: threading.Thread | None = None

    @staticmethod
    def values(idx: np.ndarray, n_ch: int, srate: float) -> np.ndarray:
        """Samples (n, n_ch): counter, then 10*c + 40*sin(2 pi 7 t) microvolts."""
        t = idx / srate
        chans = [10.0 * c + 40.0 * np.sin(2 * np.pi * 7.0 * t) for c in range(1, n_ch)]
        return np.column_stack([idx.astype(float), *chans]).astype(np.float32)

    def wait_for_consumers(self, timeout: float) -> None:
        assert self.eeg.wait_for_consumers(timeout), "recorder never connected to the EEG outlet"
        assert self.mk.wait_for_consumers(timeout), "recorder never connected to the marker outlet"

    def start(self, duration: float | None) -> None:
        self.thread = threading.Thread(target=self._run, args=(duration,), daemon=True)
        self.thread.start()

    def _run(self, duration: float | None) -> None:
        t0 = local_clock() + 0.05
        total = None if duration is None else int(duration * self.srate)
        i = 0
        while not self.stop_evt.is_set() and (total is None or i < total):
            j = i + self.chunk if total is None else min(i + self.chunk, total)
            wait = t0 + (j - 1) / self.srate - local_clock()
            if wait > 0:
                time.sleep(wait)
            self.eeg.push_chunk(self.values(np.arange(i, j), self.n_ch, self.srate),
                                t0 + (j - 1) / self.srate)
            self.sent = j
            for k in range(i, j):
                if k in self.markers:
                    self.mk.push(self.markers[k], t0 + k / self.srate)
                    self.markers_sent.append((k, self.markers[k]))
            i = j

    def join(self) -> None:
        self.stop_evt.set()
        if self.thread is not None:
            self.thread.join(10)


MARKERS = {300: "769", 900: "770", 1500: "T1", 2100: "771", 2555: "800"}
NAMES = {"769": "left_hand", "770": "right_hand", "T1": "T1", "771": "feet", "800": "trial_end"}


def test_record_live_streams_exact_samples_and_markers(tmp_path, unique_name):
    _needs_inlet()
    srate, n_ch, duration = 512.0, 32, 5.0
    from neurodeck.acquisition.streams import resolve_stream

    src = _Source(unique_name, n_ch, srate, MARKERS)
    # a second numeric stream (e.g. an accelerometer), irregular pushes, double precision
    aux_name = unique_name + "-aux"
    aux = DataOutlet(make_stream_info(aux_name, "Accelerometer", ["X", "Y"], 50.0,
                                      fmt="double64", source_id=aux_name))
    out = tmp_path / "live_raw.fif"
    # sources by name and as a resolved StreamInfo
    rec = Recorder([src.name, resolve_stream(name=src.marker_name), aux_name], out, flush_every=0.25)
    rec.start()
    src.wait_for_consumers(10)
    assert aux.wait_for_consumers(10)
    src.start(duration)
    aux_rows = np.column_stack([np.arange(200.0), -np.arange(200.0)])
    for k in range(0, 200, 10):  # 10 rows every 0.2 s = the nominal 50 Hz
        aux.push_chunk(aux_rows[k:k + 10])
        time.sleep(0.2)
    src.thread.join(30)
    assert rec.status.state == "recording" and rec.error is None
    path = rec.stop()
    n_sent = src.sent
    assert n_sent == int(duration * srate)
    assert path == out and not partial_dir_for(out).exists()
    assert rec.counters == {src.name: {"received": n_sent, "written": n_sent},
                            src.marker_name: {"received": len(MARKERS), "written": len(MARKERS)},
                            aux_name: {"received": 200, "written": 200}}

    raw = _read_fif(path)
    assert raw.info["sfreq"] == srate and raw.n_times == n_sent
    counter = raw.get_data(picks=["counter"])[0]
    np.testing.assert_array_equal(counter, np.arange(n_sent))
    expected_uv = _Source.values(np.arange(n_sent), n_ch, srate)[:, 1:].T
    np.testing.assert_allclose(raw.get_data(picks="eeg") * 1e6, expected_uv, atol=1e-3)
    assert set(raw.get_channel_types()) == {"misc", "eeg"}

    ann = raw.annotations
    # the aux stream stops ~1 s before the end: a "stream_lost" of it may be annotated too
    state = [(d, e["stream"]) for d, e in zip(ann.description, ann.extras) if d.startswith("stream_")]
    assert set(state) <= {("stream_lost", aux_name)}
    keep = [i for i, d in enumerate(ann.description) if not d.startswith("stream_")]
    assert [ann.description[i] for i in keep] == [NAMES[c] for c in MARKERS.values()]
    np.testing.assert_allclose(ann.onset[keep] * srate, list(MARKERS), atol=1.0)
    assert [ann.extras[i]["code"] for i in keep] == list(MARKERS.values())

    side = json.loads(out.with_name("live_raw.json").read_text())
    by_name = {s["name"]: s for s in side["streams"]}
    assert by_name[src.name]["count"] == n_sent and by_name[src.name]["gaps"] == []
    assert by_name[src.name]["labels"][0] == "counter"
    assert by_name[src.marker_name]["count"] == len(MARKERS)
    assert [m["code"] for m in side["markers"]] == list(MARKERS.values())
    assert by_name[aux_name]["role"] == "extra" and by_name[aux_name]["count"] == 200
    with np.load(out.with_name(by_name[aux_name]["file"])) as z:
        np.testing.assert_array_equal(z["data"], aux_rows)
        assert z["timestamps"].shape == (200,) and np.all(np.diff(z["timestamps"]) > 0)
        assert list(z["labels"]) == ["X", "Y"]
    assert side["first_timestamp"] == pytest.approx(raw.info["description"] and
                                                    json.loads(raw.info["description"])["neurodeck_first_lsl_timestamp"])
    src.join()


def test_kill9_then_recover_loses_at_most_one_second(tmp_path, unique_name):
    _needs_inlet()
    srate, n_ch = 512.0, 16
    src = _Source(unique_name, n_ch, srate, {200: "769", 700: "770"})
    out = tmp_path / "killed_raw.fif"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurodeck.app.cli", "record", "--stream", src.name, "--stream",
         src.marker_name, "--out", str(out), "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        src.wait_for_consumers(30)
        time.sleep(0.5)  # the inlets are connected; let the recorder start its writer
        src.start(None)
        time.sleep(3.0)
        n_at_kill = src.sent
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        src.join()
    assert proc.returncode == -signal.SIGKILL
    pdir = partial_dir_for(out)
    assert pdir.is_dir() and not out.exists()
    path = recover(pdir)
    raw = _read_fif(path)
    n = raw.n_times
    print(f"kill -9: sent {n_at_kill} samples before the kill, recovered {n} "
          f"({(n_at_kill - n) / srate:.3f} s missing)")
    assert n_at_kill - srate <= n <= src.sent, (n, n_at_kill)
    np.testing.assert_array_equal(raw.get_data(picks=["counter"])[0], np.arange(n))
    assert list(raw.annotations.description) == ["left_hand", "right_hand"]
    assert json.loads(out.with_name("killed_raw.json").read_text())["recovered"] is True


def test_unwritable_output_raises_recording_error_naming_path(tmp_path, unique_name):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with pytest.raises(RecordingError, match="not_a_dir"):
        Recorder([unique_name], blocker / "rec_raw.fif").start()
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "readonly"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(RecordingError, match="readonly"):
                PartialStore(partial_dir_for(ro / "r_raw.fif"), ro / "r_raw.fif",
                             [{**_eeg_desc("E", 2, 10.0), "key": "s0"}])
        finally:
            ro.chmod(0o700)
    if sys.platform.startswith("linux"):
        # /proc exists but nobody (not even root) may create a folder in it
        with pytest.raises(RecordingError, match="/proc/"):
            PartialStore(Path("/proc/nd_rec_raw.fif.partial"), Path("/proc/nd_rec_raw.fif"),
                         [{**_eeg_desc("E", 2, 10.0), "key": "s0"}])


def test_cli_sigterm_finalizes_everything_sent_and_exports_edf(tmp_path, unique_name):
    _needs_inlet()
    srate, n_ch = 256.0, 8
    src = _Source(unique_name, n_ch, srate, {100: "769", 400: "32769"})
    out = tmp_path / "cli_raw.fif"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurodeck.app.cli", "record", "--stream", src.name, "--stream",
         src.marker_name, "--out", str(out), "--format", "edf"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        src.wait_for_consumers(30)
        src.start(2.5)
        src.thread.join(20)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        src.join()
    assert proc.returncode == 0, stderr
    assert "samples" in stdout and f"saved {out}" in stdout, stdout
    raw = _read_fif(out)
    assert raw.n_times == src.sent == int(2.5 * srate)
    np.testing.assert_array_equal(raw.get_data(picks=["counter"])[0], np.arange(src.sent))
    # (a "stream_lost" may follow if the silent source was declared lost before the stop)
    markers = [d for d in raw.annotations.description if not d.startswith("stream_")]
    assert markers == ["left_hand", "experiment_start"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        edf = mne.io.read_raw_edf(out.with_suffix("").with_suffix(".edf"), preload=True, verbose=False)
    # EDF pads the last data record (1 s) to full length; the real samples come first
    assert src.sent <= edf.n_times < src.sent + srate
    np.testing.assert_allclose(edf.get_data(picks=["counter"])[0, :src.sent], np.arange(src.sent),
                               atol=0.05)


def test_write_error_is_surfaced_and_flushed_data_recoverable(tmp_path, unique_name):
    """A file-size limit makes writes fail like a full disk: RecordingError, data kept."""
    _needs_inlet()
    if not sys.platform.startswith("linux"):
        pytest.skip("RLIMIT_FSIZE test is Linux only")
    srate, n_ch = 512.0, 16
    src = _Source(unique_name, n_ch, srate, {})
    out = tmp_path / "full_raw.fif"
    limit = 64 * 1024  # bytes per file: ~1000 samples of 16 float32 channels
    script = f"""
import resource, sys, time
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))  # Python ignores SIGXFSZ: EFBIG
from neurodeck.acquisition.errors import RecordingError
from neurodeck.acquisition.recorder import Recorder
rec = Recorder([{src.name!r}, {src.marker_name!r}], {str(out)!r}, flush_every=0.2)
rec.start()
t0 = time.monotonic()
while rec.error is None and time.monotonic() - t0 < 20:
    time.sleep(0.05)
try:
    rec.stop()
except RecordingError as exc:
    print("ERROR", exc, flush=True)
    sys.exit(3)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        src.wait_for_consumers(30)
        src.start(None)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        src.join()
    assert proc.returncode == 3, (stdout, stderr)
    pdir = partial_dir_for(out)
    assert "ERROR cannot write to" in stdout and str(pdir) in stdout and "recover" in stdout
    raw = _read_fif(recover(pdir))
    n = raw.n_times
    assert limit // (4 * n_ch) - 2 * srate <= n <= limit // (4 * n_ch)
    np.testing.assert_array_equal(raw.get_data(picks=["counter"])[0], np.arange(n))


def test_stream_loss_and_recovery_are_annotated(tmp_path, unique_name):
    _needs_inlet()
    srate, n_ch = 256.0, 4
    labels = ["counter", "C3", "Cz", "C4"]

    def outlet():
        info = make_stream_info(unique_name, "EEG", labels, srate, source_id=unique_name,
                                units=["", "microvolts", "microvolts", "microvolts"],
                                ch_types=["misc", "EEG", "EEG", "EEG"])
        return DataOutlet(info, chunk_size=8)

    def push(o, start, n):
        t0 = local_clock()
        for i in range(start, start + n, 8):
            idx = np.arange(i, i + 8)
            time.sleep(max(0.0, t0 + (i - start + 8) / srate - local_clock()))
            o.push_chunk(_Source.values(idx, n_ch, srate), t0 + (i - start + 7) / srate)

    out = tmp_path / "lost_raw.fif"
    o = outlet()
    rec = Recorder([unique_name], out).start()
    assert o.wait_for_consumers(10)
    push(o, 0, 256)
    time.sleep(0.3)  # let liblsl send the last chunk before the outlet goes away
    o.close()
    del o
    deadline = time.monotonic() + 10
    while rec.status.streams[0].state != "LOST" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rec.status.streams[0].state == "LOST"
    o = outlet()
    assert o.wait_for_consumers(15), "inlet did not reconnect to the restarted outlet"
    push(o, 256, 256)
    path = rec.stop()
    raw = _read_fif(path)
    counter = raw.get_data(picks=["counter"])[0]
    assert np.setdiff1d(np.arange(512), counter).tolist() == []
    np.testing.assert_array_equal(counter, np.arange(512))
    ann = raw.annotations
    assert list(ann.description) == ["stream_lost", "stream_recovered"]
    assert all(e["stream"] == unique_name for e in ann.extras)
    assert abs(ann.onset[0] * srate - 256) <= 1  # where the data stopped
    side = json.loads(out.with_name("lost_raw.json").read_text())
    eeg = side["streams"][0]
    assert len(eeg["gaps"]) == 1 and eeg["gaps"][0]["after_sample"] == 255
    assert eeg["gaps"][0]["duration"] > 2.0
    assert [c["new"] for c in eeg["state_changes"] if c["new"] in ("LOST", "RECOVERED")] == ["LOST", "RECOVERED"]


def test_missing_stream_leaves_nothing_behind(tmp_path, unique_name):
    _needs_inlet()
    from neurodeck.acquisition.errors import StreamNotFoundError

    out = tmp_path / "none_raw.fif"
    with pytest.raises(StreamNotFoundError, match=unique_name):
        Recorder([unique_name], out, resolve_timeout=0.3).start()
    assert list(tmp_path.iterdir()) == []


def test_recover_command_line(tmp_path, cli):
    out = tmp_path / "cmd_raw.fif"
    store = PartialStore(partial_dir_for(out), out, [{**_eeg_desc("E", 2, 100.0), "key": "s0"}])
    store.append("s0", np.column_stack([np.arange(300), np.zeros(300)]), 5.0 + np.arange(300) / 100.0)
    store.flush()
    store.close()
    proc = cli("recover", partial_dir_for(out), "--format", "brainvision")
    assert proc.returncode == 0, proc.stderr
    assert f"recovered {out}" in proc.stdout
    assert _read_fif(out).n_times == 300 and out.with_name("cmd_raw.vhdr").exists()
    proc = cli("recover", tmp_path / "nope.partial")
    assert proc.returncode == 2 and "nope.partial" in proc.stderr, proc.stderr


def test_recording_our_fast_replay_is_not_a_wrong_rate(tmp_path, unique_name):
    """A replay declares its speed; the recorder expects stamps that much faster (no false alarm).

    At 8x the stamps say 1280 Hz for a 160 Hz stream: before the declaration, finalize warned
    "claims 160 Hz but its timestamps say 1280 Hz ... check the amplifier's rate setting" (seen in
    the README's demo). A stream that does not declare a speed is still checked against srate.
    """
    from neurodeck.acquisition.player import Player
    from neurodeck.acquisition.streams import resolve_stream

    speed, n = 8.0, 3840  # 24 s at 160 Hz: 3 s of stamps at 8x (the rate is measured over >= 2 s)
    raw = mne.io.RawArray(np.tile(np.arange(n) * 1e-6, (2, 1)),
                          mne.create_info(["C3", "C4"], 160.0, "eeg"), verbose=False)
    out = tmp_path / f"replay{speed:g}_raw.fif"
    player = Player(raw, speed=speed, name=unique_name)
    rec = Recorder([resolve_stream(source_id=player.source_ids[0], timeout=5.0)], out,
                   drain_quiet=0.3).start()
    player.start()
    assert player.wait(30.0)
    rec.stop()
    player.stop()
    side = json.loads(out.with_name(out.name.replace(".fif", ".json")).read_text())
    entry = side["streams"][0]
    assert entry["count"] == n
    assert entry["measured_srate"] == pytest.approx(160.0 * speed, rel=0.01)
    assert entry.get("replay_speed", 1.0) == speed
    assert not any("claims" in w for w in side.get("warnings", [])), side.get("warnings")
    assert _read_fif(out).info["sfreq"] == 160.0
