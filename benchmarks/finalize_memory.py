"""Peak memory and time of finalizing a long recording (partial folder -> FIF + sidecar).

A real :class:`acquisition.recorder.Recorder` records N channels at F Hz (random data plus a
``counter`` channel) and one marker per second over LSL on loopback, pushed as fast as the
recorder writes (back-pressure, nothing dropped), then is aborted so that its partial folder
stays. :func:`acquisition.finalize.finalize_partial` (what ``Recorder.stop`` and
``neurodeck recover`` run) then turns that folder into a FIF file in a fresh Python process,
which reports its peak RSS (``ru_maxrss``) before and after. The FIF is read back and its
counter checked: every sample, in order.

``--baseline REV`` also finalizes the same folder with the code of git revision REV (a temporary
worktree), side by side.

Run: ``python -m benchmarks.finalize_memory [--minutes 10] [--channels 256] [--rate 2048]
[--baseline REV]`` (``--quick``: 1 minute of 64 ch @ 512 Hz).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from benchmarks import _util as u

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from neurodeck.acquisition.finalize import finalize_partial
import mne  # imported before the baseline reading: both revisions import it
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
finalize_partial(Path(sys.argv[1]), Path(sys.argv[2]), remove_partial=False)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "rss_before_mb": rss0,
                  "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def record_partial(folder: Path, minutes: float, n_channels: int, srate: float) -> tuple[Path, int, int]:
    """Record through LSL into ``folder``; abort so the partial folder stays. Returns it."""
    from neurodeck.acquisition.outlet import DataOutlet, MarkerOutlet, make_stream_info
    from neurodeck.acquisition.recorder import Recorder

    tag = uuid.uuid4().hex[:8]
    name = f"bench-finalize-{tag}"
    labels = u.stream_labels(n_channels - 1) + ["counter"]
    outlet = DataOutlet(make_stream_info(name, "EEG", labels, srate, source_id=name,
                                         units="microvolts"))
    mout = MarkerOutlet(name + "-markers", source_id=name + "-markers")
    rec = Recorder([name, name + "-markers"], folder / "long_raw.fif").start()
    n_total = int(round(minutes * 60 * srate))
    per_s = int(srate)
    rng = np.random.default_rng(0)
    block = (10 * rng.standard_normal((per_s, n_channels))).astype(np.float32)
    chunk = max(1, per_s // 16)
    try:
        if not (outlet.wait_for_consumers(10) and mout.wait_for_consumers(10)):
            raise RuntimeError("the recorder did not connect within 10 s")
        from pylsl import local_clock

        t0, k, n_markers = local_clock(), 0, 0  # stamps on the nominal clock from t0
        while k < n_total:
            n = min(per_s, n_total - k)
            data = block[:n].copy()
            data[:, -1] = np.arange(k, k + n)
            for a in range(0, n, chunk):
                b = min(a + chunk, n)
                outlet.push_chunk(data[a:b], t0 + (k + b - 1) / srate)
            mout.push(str(n_markers), t0 + k / srate)
            n_markers += 1
            k += n
            while k - rec.status.streams[0].written > 4 * per_s:  # back-pressure
                time.sleep(0.002)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = rec.status.streams
            if st[0].written >= n_total and st[1].written >= n_markers:
                break
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        rec.abort()
        outlet.close()
        mout.close()
    return rec.partial_dir, n_total, n_markers


def finalize_in_child(code_root: Path, partial: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(partial), str(out)], cwd=code_root,
                          capture_output=True, text=True, env={"PYTHONPATH": str(code_root),
                                                               "PATH": "/usr/bin:/bin"})
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_fif(path: Path, n_total: int) -> str:
    """Every counter value 0..n-1 in order (read back block by block)."""
    import mne

    raw = mne.io.read_raw_fif(path, preload=False, verbose="error")
    if raw.n_times != n_total:
        return f"NO ({raw.n_times} samples, expected {n_total})"
    pick = raw.ch_names.index("counter")
    step, expect = int(60 * raw.info["sfreq"]), 0
    for a in range(0, raw.n_times, step):
        c = np.rint(raw.get_data(picks=[pick], start=a, stop=a + step)[0] * 1e6)
        if not np.array_equal(c, np.arange(expect, expect + c.size)):
            return f"NO (counter wrong after sample {expect})"
        expect += c.size
    return f"yes ({len(raw.annotations)} annotations)"


def main() -> None:
    p = u.parser(__doc__.splitlines()[0], reps=1)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--channels", type=int, default=256, help="EEG channels (+1 counter channel)")
    p.add_argument("--rate", type=float, default=2048.0)
    p.add_argument("--baseline", default=None, metavar="REV",
                   help="also finalize with the code of this git revision")
    p.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = p.parse_args()
    if args.quick:
        args.minutes, args.channels, args.rate = 1.0, 64, 512.0
    u.print_header("finalize_memory", args)
    work = Path(tempfile.mkdtemp(prefix="nd-finalize-", dir=args.dir))
    worktree = None
    try:
        t = time.perf_counter()
        partial, n_total, n_markers = record_partial(work, args.minutes, args.channels + 1,
                                                     args.rate)
        rec_s = time.perf_counter() - t
        data_mb = sum(f.stat().st_size for f in partial.iterdir()) / 2**20
        print(f"recorded {n_total:,} samples x {args.channels + 1} ch, {n_markers} markers over "
              f"LSL in {rec_s:.1f} s; partial folder {data_mb:,.0f} MB\n", flush=True)
        codes = [("this commit", u.ROOT)]
        if args.baseline:
            worktree = work / "baseline"
            subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.baseline],
                           cwd=u.ROOT, check=True, capture_output=True)
            codes.append((f"{args.baseline}", worktree))
        rows = []
        for label, root in codes:
            out = work / f"out-{len(rows)}" / "long_raw.fif"
            res = finalize_in_child(root, partial, out)
            if "error" in res:
                rows.append([label, "n/a", "n/a", "n/a", "n/a", f"failed: {res['error']}"])
                continue
            rows.append([label, res["seconds"], res["rss_before_mb"], res["rss_peak_mb"],
                         res["rss_peak_mb"] - res["rss_before_mb"], check_fif(out, n_total)])
            shutil.rmtree(out.parent, ignore_errors=True)
        u.print_table(
            f"Finalize {args.minutes:g} min of {args.channels}+1 ch @ {args.rate:g} Hz "
            f"({data_mb:,.0f} MB partial)",
            ["code", "seconds", "RSS before MB", "RSS peak MB", "peak - before MB",
             "FIF complete"], rows)
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=u.ROOT,
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
