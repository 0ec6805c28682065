"""`neurodeck evaluate` / `neurodeck train` on the bundled real recording."""
from __future__ import annotations

import json

import numpy as np

from neurodeck.decoders.online import OnlineDecoder

PICKS = "FC3,FC1,FC2,FC4,C5,C3,C1,Cz,C2,C4,C6,CP3,CP1,CPz,CP2,CP4"


def test_evaluate_writes_json_with_the_documented_keys(asset_edfs, tmp_path, cli):
    out = tmp_path / "res" / "out.json"
    spec = ",".join(str(p) for p in asset_edfs)
    proc = cli("evaluate", spec, "--pipelines", "csp-lda,mdm", "--events", "T1=left_hand,T2=right_hand",
            "--tmin", "0.5", "--tmax", "2.5", "--band", "8", "32", "--picks", PICKS, "--cv", "5",
            "--seed", "42", "--json", out, "--no-progress", "--pseudo-online", "--step", "0.25")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["pipeline"] for r in results] == ["csp-lda", "mdm"]
    for r in results:
        assert {"dataset", "pipeline", "metric", "score", "fold_scores", "n_trials", "fit_time_s",
                "predict_time_s"} <= set(r)
        assert r["dataset"] == "S001R04+S001R08+S001R12" and r["metric"] == "roc_auc"
        assert r["n_trials"] == 45 and len(r["fold_scores"]) == 5 and 0 <= r["score"] <= 1
        assert r["n_channels"] == 16 and r["band"] == [8.0, 32.0]
        po = r["pseudo_online"]
        assert po["n_trials"] == 45 and 0 <= po["trial_accuracy"] <= 1 and po["n_windows"] > 1000
    table = proc.stdout
    assert "csp-lda" in table and "S001R04+S001R08+S001R12" in table
    assert "pseudo-online (leave one recording out)" in table


def test_train_writes_a_bundle_that_decodes(asset_edfs, tmp_path, cli):
    spec = ",".join(str(p) for p in asset_edfs)
    proc = cli("train", spec, "--pipeline", "ts-lr", "--picks", PICKS, "--out", tmp_path / "m",
            "--cv", "0", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    dec = OnlineDecoder(tmp_path / "m")
    assert dec.labels == ["left_hand", "right_hand"] and len(dec.ch_names) == 16
    assert dec.bundle.meta["training_scores"]["n_trials"] == 45
    assert "model bundle written" in proc.stdout


def test_bad_flags_exit_2_with_one_line(asset_edfs, tmp_path, cli):
    spec = str(asset_edfs[0])
    for args, expected in [  # (a bad --events item: tests/app/test_events.py)
        (["evaluate", spec, "--pipelines", "ts-lr,nope"], "unknown pipelines ['nope']"),
        (["evaluate", tmp_path / "missing.edf"], "missing.edf"),
        (["train", spec, "--pipeline", "ts-lr", "--picks", "C3,Nope", "--out", tmp_path / "x"],
         "['Nope'] not found"),
    ]:
        proc = cli(*args, "--no-progress")
        assert proc.returncode == 2 and expected in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "x").exists()


def test_pipeline_file_adds_pipelines_and_bad_ones_exit_2(asset_edfs, tmp_path, cli):
    good = tmp_path / "good.toml"
    good.write_text('[my-mdm]\ndescription = "mine"\nsteps = [{step = "bandpass"}, '
                    '{step = "oas_covariance"}, {step = "mdm"}]\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[my-bad]\nsteps = [{step = "bandpass"}, {step = "mdm", metric = [["riemann"]]}]\n')
    spec = ",".join(str(p) for p in asset_edfs)
    out = tmp_path / "r.json"
    p = cli("evaluate", spec, "--picks", PICKS, "--no-progress", "--pipeline-file", good,
            "--pipelines", "my-mdm,mdm", "--json", out, timeout=240)
    assert p.returncode == 0, p.stderr
    mine, shipped = json.loads(out.read_text())["results"]
    assert mine["pipeline"] == "my-mdm" and mine["fold_scores"] == shipped["fold_scores"]
    p = cli("evaluate", spec, "--pipeline-file", bad, "--pipelines", "my-bad", "--no-progress")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"neurodeck evaluate: error: {bad}: pipeline 'my-bad' steps[1] (mdm): metric = "
        "[['riemann']]; expected a value or a non-empty list of values"]


def test_evaluate_protocols_chronological_and_loso(asset_edfs, tmp_path, cli):
    """Runs of S001 stand in for subjects: R04+R08 and R12 are each other's sources."""
    a = ",".join(str(p) for p in asset_edfs[:2])
    b = str(asset_edfs[2])
    out = tmp_path / "loso.json"
    p = cli("evaluate", a, b, "--protocol", "loso", "--pipelines", "default", "--calib-trials",
            "0,3", "--picks", PICKS, "--json", out, "--no-progress", timeout=240)
    assert p.returncode == 0, p.stderr
    rows = json.loads(out.read_text())["results"]
    assert [(r["dataset"], r["calib_trials"]) for r in rows] == [
        ("S001R04+S001R08", 0), ("S001R04+S001R08", 3), ("S001R12", 0), ("S001R12", 3)]
    for r in rows:
        assert r["protocol"] == "loso" and r["pipeline"] == "default" and 0 <= r["score"] <= 1
    # K = 0: trained on the other dataset only, every trial of the target tests
    assert (rows[0]["n_train"], rows[0]["n_test"], rows[0]["sources"]) == (15, 30, ["S001R12"])
    assert rows[1]["n_train"] == 15 + 6 and rows[1]["n_test"] <= 30 - 6
    assert "default K=3" in p.stdout
    p = cli("evaluate", b, "--protocol", "chronological", "--sources", a, "--pipelines", "ts-lr",
            "--calib-trials", "5", "--picks", PICKS, "--json", out, "--no-progress", timeout=240)
    assert p.returncode == 0, p.stderr
    (r,) = json.loads(out.read_text())["results"]
    assert (r["protocol"], r["calib_trials"], r["n_train"]) == ("chronological", 5, 30 + 10)
    p = cli("evaluate", b, "--sources", a, "--pipelines", "default", "--cv", "3", "--picks", PICKS,
            "--json", out, "--no-progress", timeout=240)
    assert p.returncode == 0, p.stderr
    (r,) = json.loads(out.read_text())["results"]
    assert (r["protocol"], r["calib_trials"], r["n_train"], r["n_test"]) == ("within", None, 30 + 10, 5)
    assert len(r["fold_scores"]) == 3 and r["sources"] == ["S001R04+S001R08"]
    for args, expected in [
        (["--protocol", "chronological", "--calib-trials", "0"], "K = 0 calibration trials needs sources"),
        (["--protocol", "chronological", "--calib-trials", "5,x"], "'5,x' is not a list of calibration"),
        (["--sources", b], "are both target and source"),
    ]:
        p = cli("evaluate", b, "--picks", PICKS, "--no-progress", *args)
        assert p.returncode == 2 and expected in p.stderr, p.stderr


def test_train_population_writes_an_adaptive_bundle(asset_edfs, tmp_path, cli):
    from tests.decoders.test_pipelines import load_s001

    a = ",".join(str(p) for p in asset_edfs[:2])
    p = cli("train", a, str(asset_edfs[2]), "--population", "--pipeline", "default", "--picks",
            PICKS, "--out", tmp_path / "pop", "--cv", "2", "--no-progress", timeout=240)
    assert p.returncode == 0, p.stderr
    assert "leave-one-subject-out, no calibration: roc_auc" in p.stdout
    dec = OnlineDecoder(tmp_path / "pop")
    scores = dec.bundle.meta["training_scores"]
    assert scores["population"] is True and set(scores["loso_k0_scores"]) == {"S001R04+S001R08", "S001R12"}
    (rc,) = dec.bundle.adaptive_steps
    assert rc.n_seen_ == 0  # no user yet: the reference starts at the first window
    X, *_ = load_s001(tuple(PICKS.split(",")))
    out = dec.decide_batch(X[:10])
    assert np.isfinite(out).all() and rc.n_seen_ == 10 and rc.drift() > 0
    p = cli("train", a, "--population", "--out", tmp_path / "x", "--no-progress")
    assert p.returncode == 2 and "--population needs at least 2 datasets" in p.stderr


def test_train_report_is_the_train_page_report(asset_edfs, tmp_path, cli):
    """`train --report` writes the HTML report of the Train page (workflow.report.write_report):
    per-fold scores as the page computes them, the pipeline, the confusion matrix, the R² maps."""
    import html
    import re

    from neurodeck.app.workflow.training import cross_validate_recordings

    runs = [p for p in asset_edfs if p.name in ("S001R04.edf", "S001R08.edf")]
    out = tmp_path / "rep" / "calibration.html"
    proc = cli("train", ",".join(map(str, runs)), "--pipeline", "csp-lda", "--cv", "3",
               "--out", tmp_path / "m", "--report", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert f"report written to {out}" in proc.stdout
    text = html.unescape(out.read_text())
    page = cross_validate_recordings(runs, ["csp-lda"], cv=3)  # what the Train page shows
    r = page.results[0]
    row = re.search(r"<tr><td>csp-lda</td><td>([0-9.]+)</td><td>[0-9.]+</td><td>([0-9. ]+)</td>",
                    text)
    assert row is not None, "no csp-lda row in the scores table"
    assert row.group(1) == f"{r.score:.3f}"
    assert row.group(2).split() == [f"{x:.3f}" for x in r.fold_scores]
    assert "per fold" in text and "Confusion matrix: csp-lda" in text and "R\u00b2 map (PSD)" in text
    assert "S001R04.edf, S001R08.edf" in text and "3-fold shuffled stratified CV" in text
    # the bundle records the same folds
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["training_scores"]["cv_fold_scores"] == r.fold_scores

    for args, expected in [(["--cv", "0", "--report", out], "needs a cross-validation"),
                           (["--report", tmp_path / "r.txt"], "expected an .html file name")]:
        proc = cli("train", str(runs[0]), "--pipeline", "csp-lda", "--out", tmp_path / "x",
                   *args, "--no-progress")
        assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "r.txt").exists()
