"""Shared helpers of the benchmark scripts.

Percentiles and medians of repetitions, table printing, machine description, the EEGMMIDB data
every benchmark replays (resampled / tiled to any channel count and rate), model training into a
real ONNX bundle, and an LSL source process that pushes those data with a sample-counter channel.

Nothing here is timed by tests; the scripts print tables (``python -m benchmarks.NAME``).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_EEGMMIDB = ROOT.parent / "shared" / "data" / "eegmmidb"
ASSET_EEGMMIDB = ROOT / "assets" / "eegmmidb"

#: Motor channels first, so that any first-n pick keeps C3/Cz/C4 (EEGMMIDB 10-10 names).
_MOTOR_FIRST = ("C3", "Cz", "C4", "FC3", "FCz", "FC4", "C5", "C1", "C2", "C6", "CP3", "CPz", "CP4")


# ----------------------------------------------------------------------------------- statistics
def pct(values: Iterable[float], q: Sequence[float] = (50, 95, 99)) -> list[float]:
    """Percentiles of ``values`` (NaN when empty)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return [float("nan")] * len(q)
    return np.percentile(v, q).tolist()


def median(values: Iterable[float]) -> float:
    v = [x for x in values if x == x]
    return statistics.median(v) if v else float("nan")


def median_rows(reps: Sequence[dict[str, float]]) -> dict[str, float]:
    """Key-wise median over repetitions (each a dict of numbers)."""
    keys = list(dict.fromkeys(k for r in reps for k in r))
    return {k: median(r[k] for r in reps if k in r) for k in keys}


def timeit(fn: Callable[[], Any], n: int, warmup: int = 3) -> np.ndarray:
    """Per-call wall times (seconds) of ``n`` calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    out = np.empty(n)
    pc = time.perf_counter
    for i in range(n):
        t0 = pc()
        fn()
        out[i] = pc() - t0
    return out


# ----------------------------------------------------------------------------------- printing
def fmt(v: Any, digits: int = 2) -> str:
    if isinstance(v, float | np.floating):
        if v != v:
            return "n/a"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return str(v)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 2,
                note: str = "") -> str:
    """Print (and return) a Markdown table with a title line."""
    cells = [[fmt(c, digits) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    lines = [f"### {title}", ""]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |")
    if note:
        lines += ["", note]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def machine_info() -> dict[str, str]:
    """nproc, CPU model, load, python / numpy / liblsl / onnxruntime versions."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for mod in ("scipy", "sklearn", "pyriemann", "onnxruntime", "pylsl", "mne_lsl"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            pass
    try:
        import pylsl

        info["liblsl"] = str(pylsl.library_version())
    except Exception:  # noqa: BLE001
        pass
    if os.environ.get("OPENBLAS_CORETYPE"):
        info["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
    try:
        info["loadavg"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


_LIMITER: Any = None


def print_header(name: str, args: argparse.Namespace) -> None:
    """Print command, machine and date; apply ``--blas-threads`` if the script has it."""
    global _LIMITER
    blas = getattr(args, "blas_threads", 0)
    if blas and _LIMITER is None:
        from threadpoolctl import threadpool_limits

        _LIMITER = threadpool_limits(blas, user_api="blas")
    cmd = "python -m benchmarks." + name + " " + " ".join(sys.argv[1:])
    print(f"# benchmarks.{name}\n\ncommand: `{cmd.strip()}`  ")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine_info().items()) + "  ")
    if blas:
        print(f"BLAS thread pool limited to {blas} thread(s) (threadpoolctl)  ")
    print(f"code: {code_version()}  ")
    print(time.strftime("date: %Y-%m-%d %H:%M UTC", time.gmtime()) + "\n", flush=True)


def code_version() -> str:
    """``git`` commit of the project and how many tracked files differ from it."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"commit {head or '?'}" + (f" + uncommitted edits in {len(dirty)} file(s)" if dirty else "")


def parser(description: str, reps: int = 3, blas_option: bool = False) -> argparse.ArgumentParser:
    """Common flags: ``--quick``, ``--reps`` (and ``--blas-threads`` when ``blas_option``)."""
    p = argparse.ArgumentParser(description=description)
    if blas_option:
        p.add_argument("--blas-threads", type=int, default=1,
                       help="limit the BLAS thread pool with threadpoolctl (default 1: on a busy "
                       "2-core machine OpenBLAS threads only add contention; 0 = as started)")
    p.add_argument("--quick", action="store_true",
                   help="small variant (< ~1 min; what the smoke test runs)")
    p.add_argument("--reps", type=int, default=None,
                   help=f"repetitions whose medians are reported (default {reps}, 1 with --quick)")
    p.set_defaults(default_reps=reps)
    return p


def add_baseline_option(p: argparse.ArgumentParser) -> None:
    """``--baseline REV``: also run the benchmark with neurodeck from git revision REV."""
    p.add_argument("--baseline", default=None, metavar="REV",
                   help="then run the same benchmark (this script) with the neurodeck code of git "
                   "revision REV (a temporary worktree), printed after: before/after in one run")


def run_baseline(module: str, argv: Sequence[str], rev: str) -> int:
    """Run ``python -m benchmarks.<module> argv`` importing ``neurodeck`` from revision ``rev``.

    The benchmark scripts stay the current ones; only the package under test changes. A
    temporary ``git worktree`` of ``rev`` is mapped to ``neurodeck.*`` with a symlinked tree
    (as ``.ci/lint-imports`` does) placed first on the child's ``sys.path``.
    """
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    argv = [a for i, a in enumerate(argv) if a != "--baseline"
            and not (i and argv[i - 1] == "--baseline") and not a.startswith("--baseline=")]
    tmp = Path(tempfile.mkdtemp(prefix="nd-baseline-"))
    code = tmp / "code"
    try:
        subprocess.run(["git", "worktree", "add", "--detach", str(code), rev], cwd=ROOT, check=True,
                       capture_output=True)
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=code, check=True,
                             capture_output=True, text=True).stdout.strip()
        shadow = tmp / "shadow" / "neurodeck"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").symlink_to(code / "neurodeck" / "__init__.py")
        for layer in ("app", "acquisition", "decoders", "assets"):
            if (code / layer).is_dir():
                (shadow / layer).symlink_to(code / layer)
        env = dict(os.environ, PYTHONPATH=f"{shadow.parent}{os.pathsep}{ROOT}")
        print(f"\n## baseline: neurodeck from {rev} ({sha}), benchmark script from this tree\n",
              flush=True)
        proc = subprocess.run([sys.executable, "-c", _BASELINE_CHILD, module, str(code), *argv],
                              cwd=shadow.parent, env=env)
        return proc.returncode
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(code)], cwd=ROOT,
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


_BASELINE_CHILD = """
import os, runpy, sys
module, code = sys.argv[1], sys.argv[2]
import neurodeck.decoders
where = os.path.realpath(neurodeck.decoders.__path__[0])
assert where.startswith(os.path.realpath(code)), f"baseline not imported: {where}"
sys.argv = [f"benchmarks.{module}", *sys.argv[3:]]
runpy.run_module(f"benchmarks.{module}", run_name="__main__", alter_sys=True)
"""


def n_reps(args: argparse.Namespace) -> int:
    if args.reps is not None:
        return max(1, args.reps)
    return 1 if args.quick else args.default_reps


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its threads, seconds."""
    return time.process_time()


# ----------------------------------------------------------------------------------- data
def eegmmidb_run(run: int = 4, subject: int = 1) -> Path:
    """Path of an EEGMMIDB EDF (shared data if present, else the shipped demo recording)."""
    name = f"S{subject:03d}R{run:02d}.edf"
    for cand in (SHARED_EEGMMIDB / f"S{subject:03d}" / name, ASSET_EEGMMIDB / name):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"EEGMMIDB recording {name} not found in {SHARED_EEGMMIDB} or {ASSET_EEGMMIDB}")


def imagery_runs(subject: int = 1) -> list[Path]:
    return [eegmmidb_run(r, subject) for r in (4, 8, 12)]


@lru_cache(maxsize=8)
def _load_edf(path: str) -> tuple[np.ndarray, float, tuple[str, ...], np.ndarray, tuple[str, ...]]:
    """(data µV (64, n), sfreq, names without dots, onsets (samples), labels) of one EDF."""
    from neurodeck.acquisition.io import get_events, load_recording

    raw = load_recording(Path(path))
    raw.pick("eeg")
    data = raw.get_data() * 1e6
    names = tuple(c.rstrip(".") for c in raw.ch_names)
    mapping = {"T1": "left_hand", "T2": "right_hand"}
    events, event_id = get_events(raw, mapping)
    inv = {v: k for k, v in event_id.items()}
    onsets = events[:, 0] - raw.first_samp
    labels = tuple(inv[c] for c in events[:, 2])
    return data, float(raw.info["sfreq"]), names, onsets, labels


def stream_labels(n_channels: int) -> list[str]:
    """Channel labels of an ``n_channels`` stream built from EEGMMIDB (motor channels first)."""
    _, _, names, _, _ = _load_edf(str(eegmmidb_run(4)))
    order = [c for c in _MOTOR_FIRST if c in names] + [c for c in names if c not in _MOTOR_FIRST]
    if n_channels <= len(order):
        return order[:n_channels]
    return order + [f"EX{i:03d}" for i in range(len(order) + 1, n_channels + 1)]


def eeg_data(n_channels: int, srate: float, seconds: float | None = None, run: int = 4,
             seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """EEGMMIDB S001 run ``run`` resampled to ``srate`` and tiled to ``n_channels``.

    Extra channels are copies of the 64 real ones plus 1 µV white noise (so that covariances
    stay full rank).

    Returns
    -------
    data : ndarray, shape (n_channels, n_times), float32, microvolts
    labels : list of str, length n_channels
    onsets : ndarray of int, shape (n_events,)
        T1/T2 cue onsets in samples at ``srate``.
    y : ndarray of str, shape (n_events,)
    """
    from fractions import Fraction

    from scipy.signal import resample_poly

    data, sf, names, onsets, labels = _load_edf(str(eegmmidb_run(run)))
    if seconds is not None:
        data = data[:, : int(seconds * sf)]
    labs = stream_labels(n_channels)
    index = {c: i for i, c in enumerate(names)}
    rows = [index[c] if c in index else i % len(names) for i, c in enumerate(labs)]
    ratio = Fraction(float(srate) / sf).limit_denominator(1000)
    base = data[sorted(set(rows))]
    pos = {r: i for i, r in enumerate(sorted(set(rows)))}
    if ratio != 1:
        base = resample_poly(base, ratio.numerator, ratio.denominator, axis=1)
    out = base[[pos[r] for r in rows]].astype(np.float32)
    rng = np.random.default_rng(seed)
    extra = [i for i, c in enumerate(labs) if c not in index]
    if extra:
        out[extra] += rng.standard_normal((len(extra), out.shape[1])).astype(np.float32)
    on = np.round(np.asarray(onsets) * float(srate) / sf).astype(int)
    keep = on < out.shape[1]
    return np.ascontiguousarray(out), labs, on[keep], np.asarray(labels)[keep]


# ----------------------------------------------------------------------------------- models
#: Pipelines of the latency budgets; acm-ts-svm gets a fixed (order, lag, C) instead of its grid.
FIXED_OVERRIDES: dict[str, dict[str, Any]] = {
    "acm-ts-svm": {"search__param_grid": {"acm__order": [6], "acm__lag": [2], "svm__estimator__C": [1.0]}},
}


def decoder_config(pipeline: str, window_s: float = 1.0, pad: float = 1.0):
    from neurodeck.decoders.pipelines import DecoderConfig

    return DecoderConfig(pipeline=pipeline, tmin=0.5, tmax=0.5 + window_s, pad=pad,
                         window=window_s,
                         overrides=tuple(FIXED_OVERRIDES.get(pipeline, {}).items()))


def train_bundle(pipeline: str, n_channels: int, srate: float, out_dir: Path,
                 window_s: float = 1.0, seconds: float = 90.0, decimate: bool | None = None):
    """Fit ``pipeline`` on EEGMMIDB S001 R04 (tiled/resampled) and save an ONNX bundle.

    Returns
    -------
    decoder : decoders.online.OnlineDecoder
    fitted : sklearn Pipeline
    X : ndarray, shape (n_trials, n_channels, window_samples)
        The training windows.
    """
    import warnings

    from neurodeck.decoders.epochs import extract_epochs
    from neurodeck.decoders.online import OnlineDecoder
    from neurodeck.decoders.onnx import save_bundle

    cfg = decoder_config(pipeline, window_s)
    if decimate is not None:  # (None: the config's default; code before decimation has no field)
        import dataclasses

        cfg = dataclasses.replace(cfg, decimate=decimate)
    data, labs, onsets, y = eeg_data(n_channels, srate, seconds)
    X, kept = extract_epochs(data.astype(np.float64), srate, onsets, cfg.tmin, cfg.tmax, cfg.pad)
    y = y[kept]
    pipe = cfg.build(srate, labs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    path = out_dir / f"{pipeline}{'' if decimate is None else f'-d{int(decimate)}'}-{n_channels}x{int(srate)}"
    save_bundle(pipe, cfg, path, ch_names=labs, sfreq=srate, X_check=X[:4])
    return OnlineDecoder(path), pipe, X


# ----------------------------------------------------------------------------------- LSL source
def synthetic_bundle(pipeline: str, n_channels: int, srate: float, out_dir: Path,
                     window_s: float = 1.0, decimate: bool | None = None) -> Path:
    """Save a bundle of ``pipeline`` fitted on 8 synthetic trials; return its folder.

    For per-hop cost measurements: the work of a hop does not depend on what the model learned.
    ``decimate``: None keeps the config's default.
    """
    import dataclasses
    import warnings

    from neurodeck.decoders.onnx import save_bundle

    cfg = decoder_config(pipeline, window_s)
    if decimate is not None:
        cfg = dataclasses.replace(cfg, decimate=decimate)
    W = cfg.window_samples(srate)
    rng = np.random.default_rng(1)
    X = 10 * rng.standard_normal((8, n_channels, W))
    X[::2, 0] *= 2.0  # a class difference, so that the head is not degenerate
    y = np.array(["left_hand", "right_hand"] * 4)
    labs = [f"E{i:03d}" for i in range(n_channels)]
    pipe = cfg.build(srate, labs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    tag = "" if decimate is None else f"-d{int(decimate)}"
    return save_bundle(pipe, cfg, out_dir / f"{pipeline}{tag}-{n_channels}x{int(srate)}",
                       ch_names=labs, sfreq=srate, X_check=X[:2])


def _source_main(name: str, source_id: str, n_channels: int, srate: float, chunk: int,
                 seconds: float, ready, stop, pushed, marker_every: float = 0.0,
                 markers_pushed=None) -> None:
    """Subprocess body: push EEGMMIDB data + a COUNTER channel in real time (nominal clock)."""
    from neurodeck.acquisition.outlet import DataOutlet, local_clock, make_stream_info

    # the recording loops; above 256 ch @ 1 kHz only its first 30 s (memory: 512 ch @ 2048 Hz
    # would be 0.5 GB of float32 for the whole run)
    data, labs, _, _ = eeg_data(n_channels, srate, None if n_channels * srate <= 262_144 else 30.0)
    n_total = data.shape[1]
    info = make_stream_info(name, "EEG", [*labs, "COUNTER"], srate, fmt="double64",
                            source_id=source_id, units=["microvolts"] * n_channels + ["samples"],
                            ch_types=["EEG"] * n_channels + ["MISC"])
    outlet = DataOutlet(info, chunk_size=chunk)
    marker_out = None
    if marker_every > 0:
        from neurodeck.acquisition.outlet import MarkerOutlet

        marker_out = MarkerOutlet(name + "-markers", source_id=source_id + "-markers")
    next_marker, n_markers = marker_every, 0
    block = np.empty((chunk, n_channels + 1), dtype=np.float64)
    ready.set()
    outlet.wait_for_consumers(10.0)
    time.sleep(0.2)
    t0 = local_clock()
    i = 0
    limit = int(seconds * srate) if seconds > 0 else None
    while not stop.is_set() and (limit is None or i < limit):
        due = t0 + (i + chunk - 1) / srate  # when the chunk's last sample is due
        delay = due - local_clock()
        if delay > 0:
            time.sleep(delay)
        k = np.arange(i, i + chunk) % n_total
        block[:, :n_channels] = data[:, k].T
        block[:, n_channels] = np.arange(i, i + chunk)
        # nominal sample clock: pushed at (or, on a busy machine, after) its last sample's time
        outlet.push_chunk(block, t0 + (i + chunk - 1) / srate)
        i += chunk
        pushed.value = i
        if marker_out is not None and i / srate >= next_marker:
            marker_out.push(str(n_markers), t0 + (i - 1) / srate)  # label = sequence number
            n_markers += 1
            markers_pushed.value = n_markers
            next_marker += marker_every
    time.sleep(0.5)


class Source:
    """An EEGMMIDB LSL stream with a sample counter, pushed from a separate process.

    Real time on a nominal sample clock: the chunk holding sample ``i`` is pushed as soon as
    ``local_clock() >= t0 + i_last / srate`` and its last sample is stamped ``t0 + i_last / srate``;
    ``receive time - timestamp`` therefore measures from the moment the sample was due (any lateness
    of the source process on a busy machine is counted against us, never hidden).
    """

    def __init__(self, n_channels: int, srate: float, chunk: int, seconds: float = 0.0,
                 marker_every: float = 0.0):
        self.n_channels, self.srate, self.chunk = n_channels, srate, chunk
        self.name = f"ndbench-{uuid.uuid4().hex[:10]}"
        self.source_id = self.name
        ctx = mp.get_context("spawn")
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self._pushed = ctx.Value("q", 0)
        self._markers = ctx.Value("q", 0)
        self._proc = ctx.Process(
            target=_source_main,
            args=(self.name, self.source_id, n_channels, srate, chunk, seconds, self._ready,
                  self._stop, self._pushed, marker_every, self._markers),
            daemon=True,
        )

    @property
    def pushed(self) -> int:
        """Samples pushed so far."""
        return int(self._pushed.value)

    @property
    def markers_pushed(self) -> int:
        """Markers pushed so far (``marker_every`` > 0; labels "0", "1", ...)."""
        return int(self._markers.value)

    def marker_info(self):
        """Resolve the marker stream (pylsl.StreamInfo)."""
        import pylsl

        found = pylsl.resolve_byprop("source_id", self.source_id + "-markers", 1, 10.0)
        if not found:
            raise RuntimeError(f"marker stream {self.name}-markers not found")
        return found[0]

    def start(self) -> Source:
        self._proc.start()
        if not self._ready.wait(120):
            raise RuntimeError("source process did not start")
        return self

    def info(self):
        """Resolve the stream (pylsl.StreamInfo) by its unique source id."""
        import pylsl

        found = pylsl.resolve_byprop("source_id", self.source_id, 1, 10.0)
        if not found:
            raise RuntimeError(f"stream {self.name} not found")
        return found[0]

    def stop(self) -> None:
        """Stop pushing (the outlets then close with the process)."""
        self._stop.set()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()

    def __enter__(self) -> Source:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class DecisionReceiver:
    """An independent pylsl inlet on a decision stream: receive time - decision timestamp."""

    def __init__(self, name: str):
        import threading

        import pylsl

        found = pylsl.resolve_byprop("name", name, 1, 10.0)
        if not found:
            raise RuntimeError(f"decision stream {name} not found")
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=10)
        self.inlet.open_stream(5.0)
        self.latencies: list[float] = []
        self.n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import pylsl

        inlet = self.inlet
        while not self._stop.is_set():
            sample, ts = inlet.pull_sample(timeout=0.2)
            if ts is None:
                continue
            now = pylsl.local_clock()
            if sample[-1] > 0.5:  # the "valid" channel
                self.latencies.append(now - ts)
            self.n += 1

    def reset(self) -> None:
        self.latencies = []

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        try:
            self.inlet.close_stream()
        except Exception:  # noqa: BLE001
            pass
        self.inlet = None


# ----------------------------------------------------------------------------------- DKF decoder
class DKFDecoder:
    """Engine adapter for continuous decoding: motor-channel log band power -> DKF step.

    Features of one window: causal 8-32 Hz band-pass of the padded window (the same function as
    the classifier pipelines), log-variance of each of the motor channels. The DKF (NW observation
    model, ``f`` and ``Q`` from onnxruntime) is trained on the simulator's continuous mode
    (hidden 2-D velocity). Outputs ``vx, vy``.
    """

    labels = ("vx", "vy")

    def __init__(self, dkf, motor: Sequence[str], sfreq: float, window_s: float = 1.0,
                 pad: float = 1.0):
        from neurodeck.decoders.epochs import bandpass_sos, n_samples

        self.dkf = dkf
        self.motor = list(motor)
        self.sfreq = float(sfreq)
        self.n_pad = n_samples(pad, sfreq)
        self._window = self.n_pad + n_samples(window_s, sfreq)
        self.sos = bandpass_sos(sfreq, 8.0, 32.0)

    @property
    def window_samples(self) -> int:
        return self._window

    def stream_picks(self, ch_names: Sequence[str], sfreq: float) -> np.ndarray:
        from neurodeck.decoders.epochs import pick_indices

        return pick_indices(list(ch_names), self.motor)

    def features(self, windows: np.ndarray) -> np.ndarray:
        from neurodeck.decoders.epochs import bandpass_windows

        Xf = bandpass_windows(np.asarray(windows, dtype=float), self.sos, self.n_pad)
        return np.log(Xf.var(axis=-1) + 1e-12)

    def decide(self, window: np.ndarray) -> np.ndarray:
        return self.dkf.step(self.features(window[None])[0])


def train_dkf(sfreq: float, seconds: float = 120.0, hop_s: float = 0.0625) -> DKFDecoder:
    """A DKF decoder trained on ``seconds`` of simulated continuous-mode EEG at ``sfreq``."""
    from neurodeck.acquisition.simulator import SimulatorConfig, synthesize
    from neurodeck.decoders.dkf import DiscriminativeKalmanFilter
    from neurodeck.decoders.epochs import n_samples
    from neurodeck.decoders.pipelines import MOTOR_CHANNELS

    cfg = SimulatorConfig(n_channels=64, srate=float(sfreq), mode="continuous", seed=3)
    data, _, truth = synthesize(cfg, seconds)
    labels = list(cfg.labels)
    rows = [labels.index(c) for c in MOTOR_CHANNELS]
    dec = DKFDecoder(None, MOTOR_CHANNELS, sfreq)
    W, hop = dec.window_samples, n_samples(hop_s, sfreq)
    ends = np.arange(W, data.shape[1] + 1, hop)
    windows = np.stack([data[rows, e - W:e] for e in ends])
    X = dec.features(windows)
    Z = truth[:, ends - 1].T
    dkf = DiscriminativeKalmanFilter(regressor="nw", loo_max_samples=1000).fit(X, Z)
    dkf.use_onnx(dkf.to_onnx())
    dec.dkf = dkf
    dec.training_rows = (X, Z)  # the raw features (the DKF may keep only their projection)
    return dec
