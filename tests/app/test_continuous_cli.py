"""`neurodeck train/evaluate --target` (continuous decoding), run as the user does (subprocess)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurodeck.decoders.continuous import ContinuousDecoder

FIRST_TS = 5000.0


def write_recording(folder: Path, name: str, seed: int, seconds: float = 90.0) -> Path:
    """A continuous-mode simulator recording in the layout `neurodeck record` writes.

    ``<stem>.fif`` (EEG, volts, first LSL timestamp in the description), ``<stem>.json`` (sidecar
    listing the streams) and ``<stem>.<name>-truth.npz`` (the truth stream with its timestamps).
    """
    import mne

    from neurodeck.acquisition.simulator import SimulatorConfig, synthesize

    cfg = SimulatorConfig(n_channels=32, srate=128.0, mode="continuous", seed=seed)
    data, _, truth = synthesize(cfg, seconds)
    info = mne.create_info(list(cfg.labels), cfg.srate, "eeg")
    raw = mne.io.RawArray(data * 1e-6, info, verbose="error")
    raw.info["description"] = json.dumps({"neurodeck_first_lsl_timestamp": FIRST_TS,
                                          "stream": name})
    fif = folder / f"{name}.fif"
    raw.save(fif, verbose="error")
    ts = FIRST_TS + np.arange(truth.shape[1]) / cfg.srate
    npz = folder / f"{name}.{name}-truth.npz"
    np.savez(npz, data=truth.T.astype(np.float32), timestamps=ts, labels=np.array(["vx", "vy"]),
             units=np.array(["a.u.", "a.u."]), srate=np.float64(cfg.srate))
    sidecar = {"format": "neurodeck-recording", "file": fif.name, "streams": [
        {"name": name, "role": "eeg", "file": fif.name},
        {"name": f"{name}-truth", "role": "extra", "file": npz.name},
    ]}
    (folder / f"{name}.json").write_text(json.dumps(sidecar))
    return fif


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rec")
    return write_recording(folder, "simA", 1), write_recording(folder, "simB", 2)


def test_train_and_evaluate_with_a_recorded_target(cli, recordings, tmp_path):
    rec_a, rec_b = recordings
    out = tmp_path / "dkf"
    common = ["--target", "*-truth", "--picks", "C3,Cz,C4", "--window", "0.5", "--hop", "0.125"]
    r = cli("train", rec_a, "--pipeline", "dkf", "--out", out, *common)
    assert r.returncode == 0, r.stderr
    assert "backend" in r.stdout
    dec = ContinuousDecoder(out)
    assert dec.ch_names == ["C3", "Cz", "C4"] and dec.labels[:2] == ["vx", "vy"]
    assert dec.meta["hop_s"] == 0.125 and dec.meta["backend"] in ("onnx", "numpy")
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in out.iterdir())

    js = tmp_path / "rows.json"
    r = cli("evaluate", rec_a, "--test", rec_b, "--pipelines", "dkf,kf", "--json", js, *common)
    assert r.returncode == 0, r.stderr
    rows = {row["pipeline"]: row for row in json.loads(js.read_text())}
    assert set(rows) == {"dkf", "kf"}
    for row in rows.values():
        assert row["metric"] == "nrmse" and row["score"] == row["nrmse"]
        assert {"corr", "angle_error", "n_train", "n_test"} <= set(row)
        assert row["dataset"] == "simB.fif" and row["n_test"] > 500
        assert row["corr"] > 0.3  # the simulator's velocity is decodable
    # chronological split on one recording
    r = cli("evaluate", rec_a, "--pipelines", "kf", "--split", "0.6", "--json", js, *common)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(js.read_text())
    assert row["n_train"] == pytest.approx(0.6 * (row["n_train"] + row["n_test"]), abs=12)
    assert row["window_s"] == 0.5
    # several windows: one is chosen on the training part and reported with its lags
    r = cli("evaluate", rec_a, "--pipelines", "kf", "--split", "0.6", "--json", js, *common,
            "--window", "0.5,1")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(js.read_text())
    assert row["window_s"] in (0.5, 1.0) and row["lags"][0] == 0
    assert f" {row['window_s']:g} " in r.stdout.splitlines()[-1]


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "nope", "--pipeline", "dkf"], "not a recorded numeric stream"),
    (["--target", "*-truth", "--pipeline", "dkf-xx"], "unknown continuous pipelines"),
    (["--target", "*-truth", "--pipeline", "dkf", "--bands", "8:13"], "--bands"),
])
def test_bad_input_is_one_line_exit_2(cli, recordings, tmp_path, args, message):
    r = cli("train", recordings[0], "--out", tmp_path / "m", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr


@pytest.mark.slow
def test_flint_dkf_beats_kf_through_evaluate(cli, shared_data, tmp_path):
    """Flint reaching (Burkhart et al. 2020 split): DKF nRMSE at least 20 % below the KF's."""
    flint = shared_data / "flint_dkf"
    js = tmp_path / "flint.json"
    r = cli("evaluate", flint / "x.csv", "--target", flint / "z.csv", "--pipelines", "dkf,kf",
            "--split", "5000", "--test-hops", "1000", "--json", js, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = {row["pipeline"]: row for row in json.loads(js.read_text())}
    assert rows["dkf"]["n_train"] == 5000 and rows["dkf"]["n_test"] == 1000
    assert rows["dkf"]["nrmse"] <= 0.8 * rows["kf"]["nrmse"], rows
    assert rows["dkf"]["corr"] > rows["kf"]["corr"]


@pytest.mark.slow
def test_decode_live_publishes_velocity_and_variance(cli, recordings, tmp_path, unique_name):
    """Simulator on LSL -> `neurodeck decode` on a DKF bundle -> an independent pylsl inlet."""
    import os
    import subprocess
    import sys
    import time

    import pylsl

    out = tmp_path / "dkf"
    r = cli("train", recordings[0], "--pipeline", "dkf", "--out", out, "--target", "*-truth",
            "--window", "0.5", "--hop", "0.125")
    assert r.returncode == 0, r.stderr
    name, dec_name = unique_name, unique_name + "-dec"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = [sys.executable, "-m", "neurodeck"]
    sim = subprocess.Popen([*run, "simulate", "--mode", "continuous", "--name", name, "--seed", "7",
                            "--channels", "32", "--srate", "128", "--duration", "60"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dec = subprocess.Popen([*run, "decode", "--model", str(out), "--stream", name, "--out-name",
                            dec_name, "--hop", "0.125", "--duration", "40", "--quiet"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = pylsl.resolve_byprop("name", dec_name, timeout=30)
        truth = pylsl.resolve_byprop("name", name + "-truth", timeout=10)
        assert found and truth, dec.stderr.read() if dec.poll() is not None else "no streams"
        di, ti = pylsl.StreamInlet(found[0]), pylsl.StreamInlet(truth[0])
        assert [di.info().desc().child("channels").child("channel").child_value("label")]
        D, DT, T, TT = [], [], [], []
        t_end = time.monotonic() + 30
        while time.monotonic() < t_end and dec.poll() is None:
            d, dt = di.pull_chunk(timeout=0.2)
            t, tt = ti.pull_chunk(timeout=0.0)
            D += d
            DT += dt
            T += t
            TT += tt
    finally:
        dec.terminate()
        sim.terminate()
        dec.wait(10)
        sim.wait(10)
    D, DT, T, TT = map(np.asarray, (D, DT, T, TT))
    assert D.shape[1] == 5 and len(D) > 150  # vx, vy, var_vx, var_vy, valid; 8 per second
    assert D[:, 4].mean() > 0.95 and np.all(D[D[:, 4] > 0, 2:4] > 0)
    # stamped with the window's last sample: a truth sample (same clock as the EEG) at that time,
    # up to the two inlets' clock-offset estimates (far below a sample period, 7.8 ms)
    assert np.abs(DT[-50:, None] - TT[None, -2000:]).min(axis=1).max() < 1e-3
    sel = (D[:, 4] > 0) & (DT >= TT[0]) & (DT <= TT[-1])
    Tz = np.column_stack([np.interp(DT[sel], TT, T[:, j]) for j in range(2)])
    corr = np.mean([np.corrcoef(D[sel, j], Tz[:, j])[0, 1] for j in range(2)])
    assert corr > 0.3, corr


def test_classifier_outputs_as_features(cli, recordings, tmp_path):
    """--features-from BUNDLE: a classifier's probabilities per hop feed the filter (cursor path)."""
    from neurodeck.acquisition.simulator import SimulatorConfig, simulate_raw

    cued = tmp_path / "cued_raw.fif"
    simulate_raw(SimulatorConfig(n_channels=32, srate=128.0, seed=5), 120.0).save(
        cued, verbose="error")
    clf = tmp_path / "clf"
    r = cli("train", cued, "--events", "left_hand=left_hand,right_hand=right_hand", "--pipeline",
            "ts-lr", "--cv", "0", "--out", clf)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "cursor"
    r = cli("train", recordings[0], "--target", "*-truth", "--features-from", clf, "--pipeline",
            "kf", "--hop", "0.125", "--out", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (out / "features").iterdir()) == ["model.json", "model.onnx"]
    dec = ContinuousDecoder(out)
    assert dec.meta["features"]["kind"] == "classifier"
    assert dec.meta["features"]["names"] == ["p(left_hand)", "p(right_hand)"]
    assert len(dec.ch_names) == 32 and dec.sfreq == 128.0
    window = np.random.default_rng(0).standard_normal((32, dec.window_samples)) * 10
    values = dec.decide(window)
    assert values.shape == (4,) and np.all(np.isfinite(values)) and np.all(values[2:] > 0)


def test_decode_refuses_a_table_bundle_and_another_hop(cli, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    Z = np.cumsum(rng.standard_normal((300, 2)), axis=0) * 0.1
    Z -= np.linspace(0, 1, 300)[:, None] * Z[-1]  # keep it stationary enough for the state model
    np.save(tmp_path / "x.npy", X + Z @ rng.standard_normal((2, 3)))
    np.save(tmp_path / "z.npy", Z)
    r = cli("train", tmp_path / "x.npy", "--target", tmp_path / "z.npy", "--pipeline", "kf",
            "--out", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    for extra, message in (([], "feature table"), (["--hop", "0.5"], "feature table")):
        r = cli("decode", "--model", tmp_path / "t", "--timeout", "1", *extra)
        assert r.returncode == 2, r.stdout + r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and message in lines[0], r.stderr
    meta = json.loads((tmp_path / "t" / "model.json").read_text())
    meta["features"] = {"kind": "bandpower", "ch_names": ["C3"], "sfreq": 128.0,
                        "bands": [[8, 13]], "names": ["C3:8-13"], "window_s": 0.5, "pad_s": 0.5}
    meta["filter"]["n_features"], meta["filter"]["H"] = 1, meta["filter"]["H"][:1]
    meta["filter"]["b"], meta["filter"]["R"] = meta["filter"]["b"][:1], [[1.0]]
    (tmp_path / "t" / "model.json").write_text(json.dumps(meta))
    r = cli("decode", "--model", tmp_path / "t", "--timeout", "1", "--hop", "0.5")
    assert r.returncode == 2 and "differs from the continuous model's hop" in r.stderr, r.stderr


def test_window_and_lags_chosen_on_the_training_rows_only():
    """`--window auto`/`--lags auto`: the candidate window whose features a ridge predicts the state
    from best (blocked CV) wins, judged on the training rows only; the spaced lag candidates are
    one and two windows back."""
    from neurodeck.app.errors import UserError
    from neurodeck.app.workflow.continuous import (
        ContinuousData,
        choose_features,
        lag_candidates,
        parse_windows,
        window_span,
    )
    from neurodeck.decoders.continuous import FeatureStage

    assert parse_windows("auto") == (0.25, 0.5, 1.0) and parse_windows(0.5) == (0.5,)
    assert parse_windows("0.25,1") == (0.25, 1.0)
    with pytest.raises(UserError, match="--window"):
        parse_windows("0.5,-1")
    assert window_span(0.5, 0.0625) == 8 and window_span(0.1, 0.0625) == 4
    assert lag_candidates(8) == ((0,), (0, 1, 2, 3), (0, 8), (0, 8, 16))

    rng = np.random.default_rng(0)
    n = 800
    Z = np.zeros((n, 2))
    for t in range(1, n):  # a stationary AR(1) state
        Z[t] = 0.97 * Z[t - 1] + 0.1 * rng.standard_normal(2)
    Z -= Z.mean(axis=0)

    def data(window: float, noise: np.ndarray) -> ContinuousData:
        X = Z @ rng.normal(size=(2, 6)) + noise
        stage = FeatureStage.bandpower(["C3", "C4", "Cz"], 128.0, [(8, 13), (18, 26)], window, 0.5)
        return ContinuousData(X, Z, np.ones(n, dtype=bool), ["vx", "vy"], stage, 0.0625, "d")

    # window 1 s: little noise on the first 500 rows, much after; window 0.5 s: the opposite
    quiet, loud = 0.05 * rng.standard_normal((n, 6)), 5.0 * rng.standard_normal((n, 6))
    mask = (np.arange(n) < 500)[:, None]
    w05 = data(0.5, np.where(mask, loud, quiet))
    w05.alternatives = [data(1.0, np.where(mask, quiet, loud))]
    k, lags, scores = choose_features([w05], "0", part=lambda d: slice(0, 500))
    assert (k, lags) == (1, (0,)) and scores["1"] < scores["0.5"]
    k, _, scores = choose_features([w05], "0", part=lambda d: slice(500, n))
    assert k == 0 and scores["0.5"] < scores["1"]
    k, lags, scores = choose_features([w05], "auto", part=lambda d: slice(0, 500))
    assert k == 1 and lags in lag_candidates(16)


def test_feature_choice_survives_a_drifting_target():
    """A random-walk target (its fitted state model is not stationary, e.g. a position): the
    feature sets are compared by the ridge's CV error instead of failing."""
    from neurodeck.decoders.continuous import select_lags
    from neurodeck.decoders.dkf.regression import linear_filter_cv

    rng = np.random.default_rng(0)
    Z = np.cumsum(rng.standard_normal((500, 2)), axis=0)  # fitted A: spectral radius 1.00007
    X = Z @ rng.normal(size=(2, 5)) + rng.standard_normal((500, 5))
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    nmse, q = linear_filter_cv(Xs, Z - Z.mean(axis=0), np.array([0.5, 1.0]), gap=5)
    assert np.isnan(q) and 0 < nmse < 1
    best, scores = select_lags(X, Z, np.ones(500, dtype=bool))
    assert best in ((0,), (0, 1, 2, 3)) and all(0 < v < 1 for v in scores.values())
