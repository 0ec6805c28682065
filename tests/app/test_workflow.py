"""The Qt-free workflow: one dataset loader, and `neurodeck evaluate` in parallel (loky, Dask)
with the same scores as the serial run."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from neurodeck.app.errors import UserError
from neurodeck.app.workflow import load_trials
from tests.cli_server import run_module


def _evaluate(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return run_module("neurodeck", "evaluate", *args, "--no-progress", timeout=timeout,
                      env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def test_load_trials_keeps_runs_and_optional_baselines(asset_edfs):
    paths = [p for p in asset_edfs if p.name in ("S001R04.edf", "S001R08.edf")]
    tr = load_trials(",".join(map(str, paths)), {"T1": "left_hand", "T2": "right_hand"})
    assert tr.name == "S001R04+S001R08" and tr.base is None
    assert tr.X.shape == (30, 64, 481)  # 15 cues per run, 1 s pad + [0.5, 2.5] s at 160 Hz
    assert [len(r.kept) for r in tr.runs] == [15, 15]
    assert np.array_equal(np.concatenate([r.labels[r.kept] for r in tr.runs]), tr.y)
    with_base = load_trials(paths, baseline=True, picks=["C3..", "Cz..", "C4.."])
    assert with_base.mapping == {"T1": "left_hand", "T2": "right_hand"}  # guessed from T1/T2
    assert with_base.ch_names == ["C3..", "Cz..", "C4.."]
    assert with_base.base.shape == (30, 3, 321)
    with pytest.raises(UserError, match="'nope.edf' not found"):
        load_trials("nope.edf")


@pytest.mark.slow  # three CLI runs, two loky workers and a 2-worker Dask cluster start (~30-90 s)
def test_evaluate_parallel_and_dask_give_the_serial_scores(asset_edfs, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    datasets = [str(p) for p in asset_edfs if p.name in ("S001R04.edf", "S001R08.edf")]
    common = [*datasets, "--pipelines", "csp-lda,mdm", "--cv", "3"]
    runs = {"serial": [], "loky": ["--n-jobs", "2"]}
    out = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        runs["dask"] = ["--backend", "dask", "--scheduler", cluster.scheduler_address]
        for mode, extra in runs.items():
            proc = _evaluate([*common, *extra, "--json", str(tmp_path / f"{mode}.json")])
            assert proc.returncode == 0, proc.stderr
            out[mode] = proc.stdout
    rows = {m: json.loads((tmp_path / f"{m}.json").read_text())["results"] for m in runs}
    assert [(r["dataset"], r["pipeline"]) for r in rows["serial"]] == [
        ("S001R04", "csp-lda"), ("S001R04", "mdm"), ("S001R08", "csp-lda"), ("S001R08", "mdm")]
    for mode in ("loky", "dask"):
        assert out[mode] == out["serial"].replace(str(tmp_path / "serial.json"),
                                                  str(tmp_path / f"{mode}.json"))
        for a, b in zip(rows["serial"], rows[mode], strict=True):
            assert list(a) == list(b)
            timing = ("fit_time_s", "predict_time_s")
            assert {k: v for k, v in a.items() if k not in timing} == {
                k: v for k, v in b.items() if k not in timing}


@pytest.mark.parametrize(("flags", "message"), [
    (["--n-jobs", "0"], "'0' invalid; expected -1 (every core) or 1 to 1024 jobs"),
    (["--backend", "dask"], "--backend dask needs --scheduler ADDRESS"),
    pytest.param(["--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"],
                 "cannot reach the Dask scheduler", marks=pytest.mark.slow),  # 10 s connect timeout
])
def test_evaluate_parallel_flags_refuse_bad_values(asset_edfs, flags, message):
    if "tcp://127.0.0.1:9" in flags:
        pytest.importorskip("dask.distributed")
    proc = _evaluate([str(asset_edfs[0]), "--pipelines", "mdm", *flags], timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_transfer_protocols_are_scriptable_without_the_cli(asset_edfs):
    """``neurodeck.evaluate_transfer``: the rows `evaluate --protocol ... --json` writes."""
    import neurodeck as nd

    a = ",".join(str(p) for p in asset_edfs[:2])
    b = str(asset_edfs[2])
    picks = ("FC3", "FC1", "FC2", "FC4", "C3", "C1", "Cz", "C2", "C4", "CP3", "CPz", "CP4")
    cfg = nd.make_config("ts-lr", events={"T1": "left_hand", "T2": "right_hand"}, picks=picks)
    (r,) = nd.evaluate_transfer([b], ["ts-lr"], cfg, sources=[a], calib_trials=[5])
    assert (r["protocol"], r["calib_trials"], r["n_train"], r["n_test"]) == ("chronological", 5, 30 + 10, 5)
    assert r["sources"] == ["S001R04+S001R08"] and r["n_channels"] == len(picks) and 0 <= r["score"] <= 1
    with pytest.raises(UserError, match="loso uses the positional datasets"):
        nd.evaluate_transfer([a, b], ["ts-lr"], cfg, protocol="loso", sources=[a])
    with pytest.raises(UserError, match="protocol 'kfold' unknown"):
        nd.evaluate_transfer([b], ["ts-lr"], cfg, protocol="kfold")
