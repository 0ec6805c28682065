"""`neurodeck evaluate` serial vs `--n-jobs 2` vs a 2-worker local Dask cluster, side by side.

The 13 shared EEGMMIDB subjects (S001-S003, S006-S015; runs 4, 8 and 12 joined as one dataset
each) x 6 pipelines (``csp-lda,mdm,fgmdm,ts-lr,ts-svm,ts-lda``), 5-fold shuffled stratified
cross-validation, exactly as a user runs it: the command in a subprocess, wall time from start
to exit (interpreter start, reading the EDF files, every fold). The Dask cluster
(``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` on 127.0.0.1) is started
before its run, as a user's cluster would already be; its start time is printed apart. The
scores of the three runs are compared: they must be identical.

``--quick``: 3 subjects (S001-S003; S001 from the shipped assets when the shared data is absent).

Run: ``nice -n 10 python -m benchmarks.parallel_evaluate [--quick]``.
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
    args = u.parser(__doc__.splitlines()[0], reps=1).parse_args()
    u.print_header("parallel_evaluate", args)
    specs = datasets(QUICK_SUBJECTS if args.quick else SUBJECTS)
    from dask.distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        walls = {"serial": run_evaluate(specs, [], tmp / "serial.json"),
                 "--n-jobs 2": run_evaluate(specs, ["--n-jobs", "2"], tmp / "loky.json")}
        t0 = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            start = time.perf_counter() - t0
            walls["dask, 2 local workers"] = run_evaluate(
                specs, ["--backend", "dask", "--scheduler", cluster.scheduler_address],
                tmp / "dask.json")
        ref = scores(tmp / "serial.json")
        same = {"serial": True, "--n-jobs 2": scores(tmp / "loky.json") == ref,
                "dask, 2 local workers": scores(tmp / "dask.json") == ref}
    n_pairs = len(ref)
    rows = [(mode, wall, walls["serial"] / wall, "yes" if same[mode] else "NO")
            for mode, wall in walls.items()]
    u.print_table(
        f"neurodeck evaluate, {len(specs)} subjects x 6 pipelines ({n_pairs} pairs, 5 folds)",
        ["mode", "wall (s)", "speed-up", "scores identical to serial"], rows,
        note=f"Dask cluster start (not in its wall time): {start:.1f} s. Pipelines: {PIPELINES}.")
    if not all(same.values()):
        raise SystemExit("parallel scores differ from the serial run")


if __name__ == "__main__":
    main()
