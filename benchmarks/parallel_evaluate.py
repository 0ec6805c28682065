"""`neurodeck evaluate` serial vs `--n-jobs 2` vs a 2-worker local Dask cluster, side by side.

The 13 shared EEGMMIDB subjects (S001-S003, S006-S015; runs 4, 8 and 12 joined as one dataset
each) x 6 pipelines (``csp-lda,mdm,fgmdm,ts-lr,ts-svm,ts-lda``), 5-fold shuffled stratified
cross-validation, exactly as a user runs it: the command in a subprocess, wall time from start
to exit (interpreter start, reading the EDF files, every fold). The Dask cluster
(``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` on 127.0.0.1) is started
before its run, as a user's cluster would already be; its start time is printed apart. The
scores of the three runs are compared: they must be identical.

``--quick``: 3 subjects (S001-S003; S001 from the shipped assets when the shared data is absent).
``--subjects 1,2,3,6``: these subjects (a subset that fits the time at hand).

Run: ``nice -n 10 python -m benchmarks.parallel_evaluate [--quick | --subjects N,N,...]``.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import _util as u

logger = logging.getLogger(__name__)

SUBJECTS = (1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
QUICK_SUBJECTS = (1, 2, 3)
PIPELINES = "csp-lda,mdm,fgmdm,ts-lr,ts-svm,ts-lda"


def datasets(subjects) -> list[str]:
    out = []
    for s in subjects:
        try:
            out.append(",".join(str(u.eegmmidb_run(r, s)) for r in (4, 8, 12)))
        except FileNotFoundError as exc:
            logger.warning("subject S%03d skipped: %s", s, exc)
    return out


def subject_list(text: str) -> tuple[int, ...]:
    """``--subjects``: EEGMMIDB subject numbers separated by commas."""
    import argparse

    try:
        out = tuple(int(t) for t in text.split(","))
    except ValueError:
        out = ()
    if not out or any(not 1 <= s <= 109 for s in out):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of EEGMMIDB subject numbers; "
                                         "expected integers 1-109 separated by commas (e.g. 1,2,3)")
    return out


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children and their descendants."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_evaluate(specs: list[str], extra: list[str], out: Path) -> float:
    """Wall seconds of one ``neurodeck evaluate`` run (JSON written to ``out``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "neurodeck", "evaluate", *specs, "--pipelines", PIPELINES,
           "--no-progress", "--json", str(out), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"neurodeck evaluate {' '.join(extra)} failed:\n{proc.stderr[-3000:]}")
    return wall


def scores(path: Path) -> list[tuple]:
    return [(r["dataset"], r["pipeline"], r["score"], tuple(r["fold_scores"]))
            for r in json.loads(path.read_text())["results"]]


def main() -> None:
    p = u.parser(__doc__.splitlines()[0], reps=1)
    p.add_argument("--subjects", type=subject_list, default=None, metavar="N,N,...",
                   help="EEGMMIDB subject numbers (default: the 13 shared subjects)")
    args = p.parse_args()
    u.print_header("parallel_evaluate", args)
    subjects = args.subjects or (QUICK_SUBJECTS if args.quick else SUBJECTS)
    specs = datasets(subjects)
    from dask.distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        walls, cpus = {}, {}
        for mode, extra, out in (("serial", [], "serial.json"),
                                 ("--n-jobs 2", ["--n-jobs", "2"], "loky.json")):
            c0 = children_cpu()
            walls[mode] = run_evaluate(specs, extra, tmp / out)
            cpus[mode] = children_cpu() - c0
        c0 = children_cpu()
        t0 = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            start = time.perf_counter() - t0
            walls["dask, 2 local workers"] = run_evaluate(
                specs, ["--backend", "dask", "--scheduler", cluster.scheduler_address],
                tmp / "dask.json")
        cpus["dask, 2 local workers"] = children_cpu() - c0  # workers are reaped at close
        ref = scores(tmp / "serial.json")
        same = {"serial": True, "--n-jobs 2": scores(tmp / "loky.json") == ref,
                "dask, 2 local workers": scores(tmp / "dask.json") == ref}
    n_pairs = len(ref)
    rows = [(mode, wall, walls["serial"] / wall, cpus[mode], "yes" if same[mode] else "NO")
            for mode, wall in walls.items()]
    u.print_table(
        f"neurodeck evaluate, {len(specs)} subjects "
        f"({','.join(f'S{s:03d}' for s in subjects)}) x 6 pipelines ({n_pairs} pairs, 5 folds)",
        ["mode", "wall (s)", "speed-up", "CPU (s)", "scores identical to serial"], rows,
        note=f"Dask cluster start (not in its wall time, in its CPU): {start:.1f} s. CPU: user + "
        f"system of the command and its workers (Dask: the cluster's processes). Pipelines: "
        f"{PIPELINES}.")
    if not all(same.values()):
        raise SystemExit("parallel scores differ from the serial run")


if __name__ == "__main__":
    main()
