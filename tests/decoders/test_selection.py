"""R² maps, selection parsing and FeatureSelector: numbers, errors, real EEGMMIDB data."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from neurodeck.decoders.errors import DecoderError
from neurodeck.decoders.selection import FeatureSelector, parse_selection, r2_map, top_features

CH = ["C3", "Cz", "C4", "Pz"]
FREQS = np.arange(8.0, 31.0)


def _planted(n_epochs: int = 200, effect: float = 3.0, seed: int = 0):
    """Unit-noise features with class 1 larger at C4 (2), 13 Hz (index 5) and smaller at C3, 20 Hz."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n_epochs // 2)
    F = rng.standard_normal((n_epochs, len(CH), FREQS.size))
    F[y == 1, 2, 5] += effect
    F[y == 1, 0, 12] -= effect / 2
    return F, y


def test_r2_planted_effect_is_maximal_there_and_near_zero_elsewhere():
    F, y = _planted()
    r2 = r2_map(F, y)
    assert r2.shape == (4, 23)
    assert np.unravel_index(np.argmax(r2), r2.shape) == (2, 5)
    # point-biserial r for a mean shift d with unit noise, balanced classes: d / sqrt(d^2 + 4)
    assert r2[2, 5] == pytest.approx(9 / 13, abs=0.08)
    assert r2[0, 12] < -0.1  # smaller for class 1: negative sign
    rest = np.ones_like(r2, dtype=bool)
    rest[2, 5] = rest[0, 12] = False
    assert np.abs(r2[rest]).max() < 0.06
    # sign flips with the class order, magnitude unchanged
    np.testing.assert_allclose(r2_map(F, 1 - y), -r2)


def test_r2_invariant_to_affine_feature_changes():
    F, y = _planted(80, seed=2)
    r2 = r2_map(F, y)
    np.testing.assert_allclose(r2_map(4.0 * F - 7.0, y), r2, atol=1e-12)
    np.testing.assert_allclose(r2_map(-F, y), -r2, atol=1e-12)
    # labels may be strings; class1 is the larger label
    np.testing.assert_allclose(r2_map(F, np.where(y == 1, "right", "left")), r2)
    # constant features score 0, not NaN
    F[:, 1, 1] = 5.0
    assert r2_map(F, y)[1, 1] == 0.0


def test_r2_matches_scipy_pointbiserial():
    from scipy.stats import pointbiserialr

    F, y = _planted(60, seed=1)
    r2 = r2_map(F, y)
    for c, f in [(0, 0), (2, 5), (3, 22)]:
        r = pointbiserialr(y, F[:, c, f]).statistic
        assert r2[c, f] == pytest.approx(np.sign(r) * r**2, abs=1e-12)


def test_r2_multiclass_raises_or_one_vs_rest():
    F, _ = _planted(90)
    y3 = np.repeat([0, 1, 2], 30)
    with pytest.raises(DecoderError, match="exactly 2 classes.*positive="):
        r2_map(F, y3)
    ovr = r2_map(F, y3, positive=2)
    np.testing.assert_allclose(ovr, r2_map(F, (y3 == 2).astype(int)))
    with pytest.raises(DecoderError, match="positive=7"):
        r2_map(F, y3, positive=7)


def test_feature_selector_multiclass_one_vs_rest():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 60)
    F = rng.standard_normal((180, 4, 23))
    F[y == 2, 3, 10] += 3.0  # class 2 vs rest at Pz 18 Hz
    F[y == 0, 1, 2] -= 2.0  # class 0 vs rest at Cz 10 Hz
    sel = FeatureSelector(CH, FREQS, n_features=2).fit(F, y)
    assert sel.selected_ == [(3, 10), (1, 2)]
    assert sel.r2_[3, 10] > 0.4 and sel.r2_[1, 2] < -0.2
    assert sel.classes_.tolist() == [0, 1, 2]


def test_parse_selection_forms():
    names = ["C3..", "Cz..", "C4..", "Pz.."]
    assert parse_selection("C4:13", names, FREQS) == [(2, 5)]
    assert parse_selection("C4:13-16", names, FREQS) == [(2, 5), (2, 6), (2, 7), (2, 8)]
    assert parse_selection("C3:10, c4..:12-14", names, FREQS) == [(0, 2), (2, 4), (2, 5), (2, 6)]
    assert parse_selection(["C3:10", "C3:10;Pz:30"], names, FREQS) == [(0, 2), (3, 22)]
    assert parse_selection("Cz", names, FREQS) == [(1, i) for i in range(23)]
    assert parse_selection("C4:2-3", names, None, n_freqs=5) == [(2, 2), (2, 3)]
    # half-Hz grid: 13 Hz matches exactly, 13.2 Hz goes to the nearest bin
    half = np.arange(8.0, 30.5, 0.5)
    assert parse_selection("C4:13.2", names, half) == [(2, 10)]


@pytest.mark.parametrize(
    "spec, pattern",
    [
        ("C9:13", r"unknown channel 'C9'.*valid channels: C3, Cz, C4, Pz"),
        ("C4:40", r"'40'.*not available.*8\.\.30 Hz in steps of 1 Hz"),
        ("C4:35-40", r"holds no bin.*8\.\.30 Hz"),
        ("C4:16-13", "reversed"),
        ("C4:abc", r"bad frequency 'abc'"),
        ("", "empty"),
    ],
)
def test_parse_selection_errors(spec, pattern):
    with pytest.raises(DecoderError, match=pattern):
        parse_selection(spec, CH, FREQS)


def test_feature_selector_top_n_and_user_selection():
    F, y = _planted()
    sel = FeatureSelector(CH, FREQS, n_features=2).fit(F, y)
    assert sel.selected_ == [(2, 5), (0, 12)]
    assert list(sel.get_feature_names_out()) == ["C4:13Hz", "C3:20Hz"]
    out = sel.transform(F)
    assert out.shape == (200, 2)
    np.testing.assert_array_equal(out[:, 0], F[:, 2, 5])
    np.testing.assert_array_equal(sel.r2_, r2_map(F, y))
    user = FeatureSelector(CH, FREQS, selection="Pz:8-9").fit(F, y)
    assert user.selected_ == [(3, 0), (3, 1)]
    np.testing.assert_array_equal(user.transform(F), F[:, 3, :2])
    # no freqs: the selection refers to bin indices
    idx = FeatureSelector(CH, None, selection="C4:5").fit(F, y)
    assert idx.selected_ == [(2, 5)] and idx.feature_names_ == ["C4:5"]
    assert top_features(sel.r2_, 3)[:2] == [(2, 5), (0, 12)]


def test_feature_selector_errors(caplog):
    F, y = _planted(20)
    with pytest.raises(DecoderError, match="3-D"):
        FeatureSelector(CH).fit(F[:, 0], y)
    with pytest.raises(DecoderError, match="5 names but F has 4 channels"):
        FeatureSelector(CH + ["O1"]).fit(F, y)
    with pytest.raises(DecoderError, match="freqs has 3 values"):
        FeatureSelector(CH, [8, 9, 10]).fit(F, y)
    with pytest.raises(DecoderError, match="unknown channel 'O1'"):
        FeatureSelector(CH, FREQS, selection="O1:10").fit(F, y)
    with pytest.raises(DecoderError, match="n_features=0"):
        FeatureSelector(CH, n_features=0).fit(F, y)
    with pytest.raises(DecoderError, match="20 labels but X has 19"):
        FeatureSelector(CH).fit(F[:19], y)
    bad = F.copy()
    bad[3, 1, 2] = np.nan
    with pytest.raises(DecoderError, match="epoch 3, channel 1, frequency 2"):
        FeatureSelector(CH).fit(bad, y)
    sel = FeatureSelector(CH, n_features=3).fit(F, y)
    with pytest.raises(DecoderError, match="expected 4 x 23"):
        sel.transform(F[:, :3])
    with caplog.at_level(logging.WARNING):
        big = FeatureSelector(CH, n_features=1000).fit(F, y)
    assert len(big.selected_) == 4 * 23 and "keeping all" in caplog.text


# ------------------------------------------------------------------ real EEGMMIDB recording
LEFT = ["FC5", "FC3", "FC1", "C5", "C3", "C1", "CP5", "CP3", "CP1"]
RIGHT = ["FC6", "FC4", "FC2", "C6", "C4", "C2", "CP6", "CP4", "CP2"]


@pytest.fixture(scope="module")
def s001_epochs(asset_edfs):
    """S001 imagery runs 4/8/12: 0.5-2.5 s after T1 (left fist, y=0) / T2 (right fist, y=1), uV."""
    mne = pytest.importorskip("mne")
    Xs, ys = [], []
    for path in asset_edfs:
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
        events, ids = mne.events_from_annotations(raw, verbose="error")
        ep = mne.Epochs(raw, events, {"T1": ids["T1"], "T2": ids["T2"]}, tmin=0.5, tmax=2.5,
                        baseline=None, preload=True, verbose="error")
        Xs.append(ep.get_data() * 1e6)
        ys.append((ep.events[:, 2] == ids["T2"]).astype(int))
        names = [c.rstrip(".").upper() for c in ep.ch_names]
    return np.concatenate(Xs), np.concatenate(ys), names, raw.info["sfreq"]


@pytest.mark.parametrize("method", ["welch", "burg"])
def test_r2_map_on_eegmmidb_left_vs_right_fist(s001_epochs, method):
    from neurodeck.decoders.features.psd import PSD

    X, y, names, sfreq = s001_epochs
    assert X.shape == (45, 64, 321) and np.bincount(y).tolist() == [23, 22]
    psd = PSD(sfreq, 8, 30, method=method).fit(X)
    F = psd.transform(X)
    sel = FeatureSelector(names, psd.freqs_, n_features=10).fit(F, y)
    r2 = sel.r2_
    assert r2.shape == (64, 23) and np.all(np.abs(r2) <= 1)
    print(f"\n{method} top features:",
          ", ".join(f"{n} {r2[c, f]:+.3f}" for n, (c, f) in zip(sel.feature_names_, sel.selected_)))
    # 45 trials: the single best R² is not above chance level, but the sign pattern over the
    # sensorimotor strip is: right-fist imagery desynchronises the LEFT hemisphere, so R²
    # (positive = more power for right fist) is larger over the right than over the left strip.
    li = [names.index(c) for c in LEFT]
    ri = [names.index(c) for c in RIGHT]

    def lat(labels):
        m = r2_map(F, labels)
        return m[ri].mean() - m[li].mean()

    observed = lat(y)
    rng = np.random.default_rng(42)
    null = np.array([lat(rng.permutation(y)) for _ in range(200)])
    p = (1 + np.sum(null >= observed)) / (1 + null.size)
    print(f"{method} lateralisation {observed:+.4f}, permutation p = {p:.3f}")
    assert observed > 0
    assert p < 0.1
    # the strongest sensorimotor feature is in the mu/beta band and clearly non-zero
    sm = li + ri + [names.index(c) for c in ("FCZ", "CZ", "CPZ")]
    assert np.abs(r2[sm]).max() > 0.08
