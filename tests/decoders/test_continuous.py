"""Continuous bundles: JSON + ONNX round trip, pseudo-online equals live, invalid windows predict."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from neurodeck.acquisition.simulator import SimulatorConfig, synthesize
from neurodeck.decoders.continuous import (
    ContinuousDecoder,
    FeatureStage,
    band_power,
    make_filter,
    save_continuous_bundle,
)
from neurodeck.decoders.errors import DecoderError, ModelBundleError
from neurodeck.decoders.evaluation import sliding_windows

CHANNELS = ["C3", "Cz", "C4"]


@pytest.fixture(scope="module")
def sim():
    """Windows (n, 3, W), their features and the true velocity at each window's last sample."""
    cfg = SimulatorConfig(n_channels=32, srate=128.0, mode="continuous", seed=4)
    data, _, truth = synthesize(cfg, 90.0)
    rows = [list(cfg.labels).index(c) for c in CHANNELS]
    stage = FeatureStage.bandpower(CHANNELS, cfg.srate, [(8, 13), (18, 26)], 0.5, 0.5)
    ends, wins = zip(*sliding_windows(data[rows], stage.window_samples, 16), strict=True)
    ends, wins = np.concatenate(ends), np.concatenate(wins)
    return stage, wins, band_power(wins, stage), truth[:, ends - 1].T


@pytest.mark.parametrize("pipeline", ["dkf", "kf"])
def test_bundle_roundtrip_and_pseudo_online_equals_live(sim, tmp_path, pipeline):
    stage, wins, X, Z = sim
    n_tr = 400
    filt = make_filter(pipeline, **({} if pipeline == "kf" else {"loo_max_samples": 300}))
    filt.fit(X[:n_tr], Z[:n_tr])
    ref = filt.predict(X[n_tr:])
    path = save_continuous_bundle(filt, tmp_path / "m", pipeline=pipeline, stage=stage,
                                  targets=["vx", "vy"], hop_s=0.125, X_timing=X[:200])
    assert sorted(p.name for p in path.iterdir()) == (
        ["model.json", "model.onnx"] if pipeline == "dkf" else ["model.json"])
    meta = json.loads((path / "model.json").read_text())
    assert meta["format"] == "neurodeck-continuous-model"
    assert meta["features"]["ch_names"] == CHANNELS and meta["features"]["bands"] == [[8, 13],
                                                                                     [18, 26]]
    assert meta["targets"] == ["vx", "vy"] and meta["hop_s"] == 0.125
    assert meta["backend"] in ("onnx", "numpy")
    if pipeline == "dkf":
        assert meta["regressor"] == "nw" and meta["step_timing_us"]["onnx_p50_us"] > 0

    dec = ContinuousDecoder(path)
    assert dec.labels == ["vx", "vy", "var_vx", "var_vy"]
    assert dec.window_samples == wins.shape[2]
    test = wins[n_tr:]
    # live: one window at a time, window 5 is invalid (the engine calls skip: predict only)
    dec.reset()
    live = np.array([dec.skip() if i == 5 else dec.decide(w) for i, w in enumerate(test)])
    # pseudo-online: features in one batch, then the same filter over the sequence
    valid = np.ones(len(test), dtype=bool)
    valid[5] = False
    batch = dec.decide_sequence(dec.features(test), valid)
    np.testing.assert_allclose(batch, live, rtol=0, atol=1e-9)
    # the bundle reproduces the in-process filter (float32 ONNX kernels: ~1e-6)
    dec.reset()
    np.testing.assert_allclose(dec.decide_sequence(X[n_tr:])[:, :2], ref, atol=1e-4)
    # the invalid window predicted: mean A mu, variance grew
    before = live[4]
    A = dec.filter.A_
    np.testing.assert_allclose(live[5, :2] - dec.filter.z_mean_,
                               A @ (before[:2] - dec.filter.z_mean_), atol=1e-12)
    assert np.all(live[5, 2:] > before[2:])


def test_bundle_errors(sim, tmp_path):
    stage, _, X, Z = sim
    kf = make_filter("kf").fit(X[:200], Z[:200])
    path = save_continuous_bundle(kf, tmp_path / "m", pipeline="kf", stage=stage,
                                  targets=["vx", "vy"], hop_s=0.125)
    meta = json.loads((path / "model.json").read_text())
    meta["filter"]["A"] = [[1.0]]
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match="'A'"):
        ContinuousDecoder(path)
    (path / "model.json").write_text("{}")
    with pytest.raises(ModelBundleError, match="not a continuous model bundle"):
        ContinuousDecoder(path)
    table = FeatureStage("table", names=tuple(f"x{j}" for j in range(X.shape[1])))
    tpath = save_continuous_bundle(kf, tmp_path / "t", pipeline="kf", stage=table,
                                   targets=["vx", "vy"], hop_s=0.1)
    with pytest.raises(DecoderError, match="feature table"):
        ContinuousDecoder(tpath).check_stream(CHANNELS, 128.0)
    with pytest.raises(DecoderError, match="target names"):
        save_continuous_bundle(kf, tmp_path / "x", pipeline="kf", stage=stage, targets=["vx"],
                               hop_s=0.1)


def test_lagged_features_online_equal_offline_with_invalid_hops(sim, tmp_path):
    """A bundle whose input is the current and 3 previous feature rows: stepping hop by hop
    (decide_features / skip) equals filtering the offline lag-stacked rows, invalid hops
    included (a row that needs an invalid hop only predicts)."""
    from neurodeck.decoders.continuous import select_lags, stack_lags

    stage, _, X, Z = sim
    lags = (0, 1, 2, 3)
    XL, ok = stack_lags(X, lags)
    assert XL.shape == (len(X), 4 * X.shape[1]) and ok.all()
    np.testing.assert_array_equal(XL[5, X.shape[1]:2 * X.shape[1]], X[4])
    np.testing.assert_array_equal(XL[1, 2 * X.shape[1]:], np.tile(X[0], 2))  # before row 0: row 0
    kf = make_filter("kf").fit(XL[:250], Z[:250])
    path = save_continuous_bundle(kf, tmp_path / "m", pipeline="kf",
                                  stage=dataclasses.replace(stage, lags=lags),
                                  targets=["vx", "vy"], hop_s=0.125)
    dec = ContinuousDecoder(path)
    assert dec.stage.lags == lags
    valid = np.ones(len(X), dtype=bool)
    valid[[310, 311, 340]] = False
    seq = dec.decide_sequence(X[250:], valid[250:])
    XLt, okt = stack_lags(X[250:], lags, valid[250:])
    assert okt.sum() == len(okt) - 5 - 4  # an invalid hop spoils itself and the 3 after
    kf.reset()
    ref = np.array([kf.step(x) if k else kf.predict_step() for x, k in zip(XLt, okt, strict=True)])
    np.testing.assert_allclose(seq[:, :2], ref, atol=1e-10)
    dec.reset()
    live = np.array([dec.decide_features(x) if k else dec.skip()
                     for x, k in zip(X[250:], valid[250:], strict=True)])
    np.testing.assert_allclose(live, seq, atol=1e-12)
    best, scores = select_lags(X[:250], Z[:250], np.ones(250, dtype=bool))
    assert best in ((0,), (0, 1, 2, 3)) and set(scores) == {"0", "0,1,2,3"}
