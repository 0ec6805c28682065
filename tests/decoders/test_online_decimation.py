"""Decimation to the model's working rate (issue 16): the rule, the anti-alias filter, what it
changes in the decisions, and bundles saved before it existed.

Stream == replay equality with decimation is checked with the other pipelines in
``test_online.py`` (its ``@512`` cases).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal

from neurodeck.decoders.epochs import (
    BandPass,
    antialias_sos,
    decimation_factor,
    filter_windows,
    n_working,
)
from neurodeck.decoders.errors import DecoderError
from neurodeck.decoders.evaluation import pseudo_online
from neurodeck.decoders.online import OnlineDecoder
from tests.decoders.test_online import s001_at


@pytest.mark.parametrize("sfreq, h_freq, q", [
    (2048, 32, 16), (512, 32, 4), (256, 32, 2), (160, 32, 1), (250, 32, 1), (1000, 30, 8),
    (500, 30, 4), (128, 32, 1), (2048, 45, 11),
])
def test_working_rate_rule(sfreq, h_freq, q):
    """q = floor(sfreq / (4 h_freq)): the largest integer factor keeping >= 4x the upper edge."""
    assert decimation_factor(sfreq, h_freq) == q
    assert sfreq / q >= 4 * h_freq and (q == 1 or sfreq / (q + 1) < 4 * h_freq)


def test_working_rate_rule_refuses_nonsense():
    with pytest.raises(DecoderError, match=r"sfreq \(0.0\) and h_freq \(32\) must be positive"):
        decimation_factor(0.0, 32)
    with pytest.raises(DecoderError, match="decim must be an integer >= 1, got 2.5"):
        BandPass(512.0, decim=2.5).transform(np.zeros((1, 2, 1024)))


@pytest.mark.parametrize("sfreq", [512.0, 2048.0])
def test_antialias_keeps_the_band_and_stops_what_folds_into_it(sfreq):
    """The whole chain at the working rate: a tone in the band comes out as from the
    undecimated band-pass (within 0.2 dB at 12 and 20 Hz; 0.5-0.7 dB more at 28 Hz: the
    Butterworth designed at 128 Hz has its upper edge at half its Nyquist, where the bilinear
    transform bends its shape more than at 512 or 2048 Hz); a tone that would fold onto the band
    (working rate - 28 Hz -> 28 Hz) comes out >= 60 dB below it. Without the low-pass it would
    pass whole."""
    q = decimation_factor(sfreq, 32.0)
    fw = sfreq / q
    t = np.arange(int(4 * sfreq)) / sfreq
    n_pad = int(sfreq)

    def rms(f, aa=True):
        x = np.sin(2 * np.pi * f * t)[None, None]
        bp = BandPass(sfreq, 8.0, 32.0, pad=1.0, passes=2, decim=q)
        y = filter_windows(x, bp.sos(), n_pad, q, bp.antialias() if aa else np.array([[1.0, 0, 0, 1, 0, 0]]))
        return float(np.sqrt(np.mean(y[0, 0, -int(fw):] ** 2)))

    full = BandPass(sfreq, 8.0, 32.0, pad=1.0, passes=2, decim=1)
    for f, tol in ((12.0, 0.2), (20.0, 0.2), (28.0, 0.8)):
        y_full = full.transform(np.sin(2 * np.pi * f * t)[None, None])
        ref = float(np.sqrt(np.mean(y_full[0, 0, -int(sfreq):] ** 2)))
        assert abs(20 * np.log10(rms(f) / ref)) < tol, f
    alias = fw - 28.0  # folds onto 28 Hz at the working rate
    assert rms(alias) < 1e-3 * rms(28.0)
    assert rms(alias, aa=False) > 0.5 * rms(28.0)  # the test can fail: no low-pass, full alias
    # the design itself: <= 0.1 dB up to 32 Hz, >= 60 dB from fw - 32 Hz to Nyquist
    _, h = signal.sosfreqz(antialias_sos(sfreq, 32.0, q), worN=np.r_[np.linspace(0, 32, 50),
                                                                      np.linspace(fw - 32, sfreq / 2, 400)], fs=sfreq)
    db = 20 * np.log10(np.abs(h) + 1e-300)
    assert db[:50].min() > -0.1 - 1e-6 and db[50:].max() < -60 + 1e-6


def test_training_windows_are_at_the_working_rate():
    X, y, ch, sf, _ = s001_at(512.0)
    bp = BandPass(sf, 8.0, 32.0, pad=1.0, passes=2, decim=4)
    out = bp.transform(X[:3])
    assert bp.working_sfreq == 128.0
    assert out.shape == (3, len(ch), n_working(X.shape[2] - 512, 4)) == (3, len(ch), 257)  # 2 s + 1


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """ts-lr trained on S001 runs 4 and 8 at 512 Hz, with and without decimation."""
    from neurodeck.decoders.epochs import extract_epochs
    from neurodeck.decoders.onnx import save_bundle
    from neurodeck.decoders.pipelines import DecoderConfig

    _, _, ch, sf, runs = s001_at(512.0)
    out = []
    for decimate in (True, False):
        cfg = DecoderConfig(pipeline="ts-lr", decimate=decimate)
        Xs, ys = [], []
        for d, on, lab in runs[:2]:
            X, kept = extract_epochs(d, sf, on, cfg.tmin, cfg.tmax, cfg.pad)
            Xs.append(X)
            ys.append(lab[kept])
        X, y = np.concatenate(Xs), np.concatenate(ys)
        pipe = cfg.build(sf, ch).fit(X, y)
        path = save_bundle(pipe, cfg, tmp_path_factory.mktemp(f"dec{decimate}"), ch_names=ch,
                           sfreq=sf, X_check=X)
        out.append((pipe, OnlineDecoder(path)))
    return out


def test_decisions_move_little_with_the_working_rate(both):
    """How far decimation moves ts-lr's pseudo-online decisions: trained on S001 runs 4+8 at
    512 Hz with and without decimation, both replayed on run 12 (held out; every window, hop
    62.5 ms). Measured: max |dp| 0.115, mean 0.025, correlation 0.978, winning class equal in
    94.7 % of the 1952 windows (99.9 % of those where the full-rate model is not within 0.1 of
    0.5), trial accuracy 0.600 both (15 trials); docs/benchmarks.md, issue 16."""
    (_, dec4), (_, dec1) = both
    assert dec4.bundle.meta["working_sfreq"] == 128.0 and dec1.bundle.meta["working_sfreq"] == 512.0
    assert dec4.decim == 4 and dec1.decim == 1
    _, _, ch, sf, runs = s001_at(512.0)
    data, onsets, labels = runs[2]
    res4 = pseudo_online(dec4, data, sf, (onsets, labels), step_s=0.0625)
    res1 = pseudo_online(dec1, data, sf, (onsets, labels), step_s=0.0625)
    np.testing.assert_array_equal(res4.ends, res1.ends)  # 32 samples: both hop alike
    p4, p1 = res4.outputs[:, 0], res1.outputs[:, 0]
    dp = np.abs(p4 - p1)
    same = (res4.outputs.argmax(1) == res1.outputs.argmax(1))
    sure = np.abs(p1 - 0.5) > 0.1  # the full-rate model is not on the fence
    corr = np.corrcoef(p4, p1)[0, 1]
    print(f"decimated vs full rate: max |dp| {dp.max():.3f}, mean {dp.mean():.4f}, corr {corr:.4f}, "
          f"same class {same.mean():.3f} ({same[sure].mean():.3f} of the {sure.mean():.2f} with "
          f"|p - 0.5| > 0.1), trial accuracy {res4.accuracy:.3f} vs {res1.accuracy:.3f} "
          f"({len(res1.trial_correct)} trials)")
    assert dp.max() < 0.15 and dp.mean() < 0.03 and corr > 0.97
    assert same.mean() > 0.93 and same[sure].mean() > 0.99
    assert abs(res4.accuracy - res1.accuracy) <= 1 / len(res1.trial_correct) + 1e-12


def test_a_bundle_saved_before_decimation_decodes_as_before(both, tmp_path):
    """A sidecar without 'decim' (BandPass params) and 'working_sfreq' loads at the full rate
    and gives the same decisions as the undecimated bundle it was made from."""
    import shutil

    (_, _), (_, dec1) = both
    old = tmp_path / "old"
    shutil.copytree(dec1.bundle.path, old)
    meta = json.loads((old / "model.json").read_text())
    del meta["working_sfreq"]
    bp = next(s for s in meta["feature_steps"] if s["class"].endswith("BandPass"))
    del bp["params"]["decim"]
    del meta["config"]["decimate"]
    (old / "model.json").write_text(json.dumps(meta))
    dec_old = OnlineDecoder(old)
    assert dec_old.decim == 1 and dec_old.working_sfreq == 512.0
    X, *_ = s001_at(512.0)
    np.testing.assert_array_equal(dec_old.decide_batch(X), dec1.decide_batch(X))
    data = s001_at(512.0)[4][0][0][:, :8000]
    np.testing.assert_array_equal(dec_old.replay(data, 32)[1], dec1.replay(data, 32)[1])


def test_hops_are_whole_working_samples(both):
    (_, dec4), _ = both
    assert dec4.hop_samples(0.0625) == 32 and dec4.hop_samples(0.05) == 24  # 25.6 -> 6 x 4
    assert dec4.hop_samples(0.001) == 4
    with pytest.raises(DecoderError, match="hop of 30 samples is not a positive multiple of the "
                                           "model's decimation factor 4"):
        dec4.open_stream(30)
    with pytest.raises(DecoderError, match="hop of 30 samples is not a multiple"):
        dec4.replay(np.zeros((len(dec4.ch_names), 4000)), 30)
