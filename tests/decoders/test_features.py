"""Numbers, shapes and errors of the PSD, connectivity and covariance features."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.signal import lfilter

from neurodeck.decoders.errors import ChannelMismatchError, DecoderError
from neurodeck.decoders.features.connectivity import (
    NodeStrength,
    coherence,
    cross_spectra,
    node_strength,
)
from neurodeck.decoders.features.covariance import (
    AugmentedCovariances,
    augment,
    fnn_fractions,
    fnn_order,
    mutual_information_curve,
    mutual_information_lag,
)
from neurodeck.decoders.features.psd import PSD, burg_ar, burg_psd, welch_psd

FS = 160.0


def _sines(freq: float, n_epochs: int = 4, n_ch: int = 3, n_times: int = 320, noise: float = 0.1):
    rng = np.random.default_rng(0)
    t = np.arange(n_times) / FS
    phase = rng.uniform(0, 2 * np.pi, (n_epochs, n_ch, 1))
    return np.sin(2 * np.pi * freq * t + phase) + noise * rng.standard_normal((n_epochs, n_ch, n_times))


# ----------------------------------------------------------------------------------------- PSD
@pytest.mark.parametrize("method", ["welch", "burg"])
@pytest.mark.parametrize("freq", [10.0, 13.0, 22.0])
def test_psd_of_sinusoid_peaks_at_its_frequency(method, freq):
    X = _sines(freq)
    est = PSD(FS, fmin=5, fmax=35, method=method).fit(X)
    F = est.transform(X)
    assert F.shape == (4, 3, 31)
    np.testing.assert_allclose(est.freqs_, np.arange(5, 36))
    peak = est.freqs_[F.argmax(axis=-1)]
    assert np.all(peak == freq)
    # dB contrast between the peak and a bin 6 Hz away is large for both methods
    i = int(np.flatnonzero(est.freqs_ == freq)[0])
    j = i + 6 if freq < 25 else i - 6
    assert np.all(F[..., i] - F[..., j] > 15.0)


@pytest.mark.parametrize("fn", [welch_psd, burg_psd])
def test_psd_white_noise_density_level(fn):
    # one-sided density of unit-variance white noise is 2 / sfreq for both estimators
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 2, 640))
    psd, freqs = fn(X, FS, 5, 70)
    np.testing.assert_allclose(psd.mean(), 2 / FS, rtol=0.1)


def test_burg_ar_recovers_ar2_coefficients_vectorised():
    rng = np.random.default_rng(2)
    e = rng.standard_normal((3, 2, 20000))
    x = lfilter([1.0], [1.0, -1.5, 0.75], e, axis=-1)
    a, sigma2 = burg_ar(x, 2)
    assert a.shape == (3, 2, 3) and sigma2.shape == (3, 2)
    np.testing.assert_allclose(a, np.broadcast_to([1.0, -1.5, 0.75], a.shape), atol=0.02)
    np.testing.assert_allclose(sigma2, 1.0, rtol=0.05)


def _burg_reference(x: np.ndarray, order: int):
    """Textbook scalar Burg recursion (one signal), written independently of the library."""
    a = np.array([1.0])
    e = float(np.mean(x**2))
    f, b = x[1:].astype(float), x[:-1].astype(float)
    for _ in range(order):
        k = -2.0 * np.dot(f, b) / (np.dot(f, f) + np.dot(b, b))
        a = np.r_[a, 0.0]
        a = a + k * a[::-1]
        e *= 1.0 - k * k
        f, b = (f + k * b)[1:], (b + k * f)[:-1]
    return a, e


def test_burg_ar_matches_scalar_reference_and_spectrum_formula():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 40))
    a, s2 = burg_ar(x, 7)
    for i in range(2):
        for j in range(3):
            ar, er = _burg_reference(x[i, j], 7)
            np.testing.assert_allclose(a[i, j], ar, atol=1e-12)
            assert s2[i, j] == pytest.approx(er, rel=1e-12)
    # burg_psd on one window = 2 * sigma2 / (sfreq |A(f)|^2) of the mean-removed window
    w = x[:1, :1]
    psd, freqs = burg_psd(w, FS, 8, 30, order=7, win_s=40 / FS, step_s=1 / FS)
    ar, er = _burg_reference(w[0, 0] - w.mean(), 7)
    A = np.array([np.sum(ar * np.exp(-2j * np.pi * f * np.arange(8) / FS)) for f in freqs])
    np.testing.assert_allclose(psd[0, 0], 2 * er / (FS * np.abs(A) ** 2), rtol=1e-10)


def test_burg_psd_matches_loop_over_epochs():
    X = _sines(12.0, n_epochs=3, n_ch=2)
    psd, _ = burg_psd(X, FS, 8, 30)
    one = np.stack([burg_psd(X[i : i + 1], FS, 8, 30)[0][0] for i in range(3)])
    np.testing.assert_allclose(psd, one, rtol=1e-10)


def test_psd_log_is_10log10_of_linear():
    X = _sines(11.0)
    lin = PSD(FS, log=False).fit_transform(X)
    db = PSD(FS, log=True).fit_transform(X)
    np.testing.assert_allclose(db, 10 * np.log10(lin))
    ln = PSD(FS, log="ln").fit_transform(X)
    np.testing.assert_allclose(ln, np.log(lin))
    np.testing.assert_allclose(PSD(FS, log="db").fit_transform(X), db)
    with pytest.raises(DecoderError, match="log='log10'"):
        PSD(FS, log="log10").fit(X)


@pytest.mark.parametrize("method", ["welch", "burg"])
def test_psd_scaling_adds_exactly_20log10_in_db(method):
    X = _sines(12.0)
    est = PSD(FS, method=method).fit(X)
    np.testing.assert_allclose(est.transform(3.0 * X) - est.transform(X), 20 * np.log10(3.0),
                               atol=1e-9)
    # a constant offset per channel changes nothing (each segment/window mean is removed)
    np.testing.assert_allclose(est.transform(X + 50.0), est.transform(X), atol=1e-6)


def test_psd_errors():
    X = _sines(10.0)
    with pytest.raises(DecoderError, match="3-D"):
        PSD(FS).fit(X[0])
    bad = X.copy()
    bad[2, 1, 7] = np.nan
    bad[3, 0, 9] = np.inf
    with pytest.raises(DecoderError, match=r"1 NaN and 1 Inf.*epoch 2, channel 1, sample 7"):
        PSD(FS).fit(bad)
    with pytest.raises(DecoderError, match="method='fft'"):
        PSD(FS, method="fft").fit(X)
    with pytest.raises(DecoderError, match="Nyquist"):
        PSD(FS, fmax=100).fit(X)
    with pytest.raises(DecoderError, match="empty"):
        PSD(FS).fit(np.zeros((0, 3, 320)))
    with pytest.raises(DecoderError, match="AR order"):
        PSD(FS, method="burg", order=50).fit(X)
    est = PSD(FS).fit(X)
    with pytest.raises(ChannelMismatchError, match="3"):
        est.transform(X[:, :2])
    with pytest.raises(DecoderError, match="longer than the epochs"):
        est.transform(X[..., :100])


# -------------------------------------------------------------------------------- connectivity
def _lagged_pair(lag_samples: int, n_epochs: int = 20, n_times: int = 320, mix: float = 0.0):
    rng = np.random.default_rng(3)
    src = lfilter([1.0], [1.0, -1.6, 0.95], rng.standard_normal((n_epochs, n_times + 50)), axis=-1)
    a = src[:, 50:]
    b = src[:, 50 - lag_samples : n_times + 50 - lag_samples]
    noise = 0.3 * rng.standard_normal((n_epochs, 3, n_times))
    X = np.stack([a, b, rng.standard_normal((n_epochs, n_times))], axis=1) + noise
    if mix:
        X[:, 1] += mix * X[:, 0]
    return X


def test_cross_spectra_diagonal_is_welch_psd_and_hermitian():
    X = _lagged_pair(3)
    S, freqs = cross_spectra(X, FS, 5, 40, nperseg=80, noverlap=40, nfft=80)
    psd, f2 = welch_psd(X, FS, 5, 40, nperseg=80, noverlap=40)
    np.testing.assert_allclose(freqs, f2)
    np.testing.assert_allclose(np.einsum("eiif->eif", S).real, psd, rtol=1e-10)
    np.testing.assert_allclose(S, np.conj(S.transpose(0, 2, 1, 3)))


def test_coherence_lagged_source_high_and_imcoh_zero_for_zero_lag():
    X = _lagged_pair(4)
    msc, freqs = coherence(X, FS, 8, 30, "msc")
    band = (freqs >= 8) & (freqs <= 14)  # where the AR(2) source has its power
    assert msc[:, 0, 1][:, band].mean() > 0.7
    assert msc[:, 0, 2][:, band].mean() < 0.3  # unrelated channel
    imc, _ = coherence(X, FS, 8, 30, "imcoh")
    assert imc[:, 0, 1][:, band].mean() > 0.3  # a lag gives an imaginary part
    coh, _ = coherence(X, FS, 8, 30, "coh")
    np.testing.assert_allclose(coh**2, msc, atol=1e-12)
    # zero-lag mixing of one source: coherent, imaginary coherence exactly zero
    rng = np.random.default_rng(9)
    src = rng.standard_normal((10, 1, 320))
    Z = np.array([1.0, -0.5, 2.0])[None, :, None] * src
    imz, _ = coherence(Z, FS, 8, 30, "imcoh")
    mz, _ = coherence(Z, FS, 8, 30, "msc")
    np.testing.assert_allclose(mz, 1.0, atol=1e-9)
    assert np.abs(imz).max() < 1e-9
    # ... and with independent sensor noise on top, imcoh stays small while msc stays high
    Zn = _lagged_pair(0)
    imn, _ = coherence(Zn, FS, 8, 30, "imcoh")
    mn, _ = coherence(Zn, FS, 8, 30, "msc")
    assert mn[:, 0, 1][:, band].mean() > 0.7
    assert imn[:, 0, 1][:, band].mean() < 0.1
    assert np.all(np.diagonal(imc, axis1=1, axis2=2) == 0)
    np.testing.assert_allclose(np.diagonal(msc, axis1=1, axis2=2), 1.0)


@pytest.mark.parametrize("kind", ["msc", "coh", "imcoh"])
def test_coherence_invariant_to_channel_gains(kind):
    X = _lagged_pair(2)
    gains = np.array([5.0, -0.2, 30.0])[None, :, None]
    C1, _ = coherence(X, FS, 8, 30, kind)
    C2, _ = coherence(X * gains, FS, 8, 30, kind)
    np.testing.assert_allclose(C2, C1, atol=1e-10)


def test_node_strength_sums_other_channels():
    rng = np.random.default_rng(4)
    C = rng.uniform(size=(2, 4, 4, 3))
    C = (C + C.transpose(0, 2, 1, 3)) / 2
    s = node_strength(C)
    ref = np.array(
        [[[sum(C[e, i, j, f] for j in range(4) if j != i) for f in range(3)] for i in range(4)]
         for e in range(2)]
    )
    np.testing.assert_allclose(s, ref)
    np.testing.assert_allclose(node_strength(C, normalize=True), ref / 3)
    with pytest.raises(DecoderError, match="expected"):
        node_strength(C[:, :, :3])


def test_node_strength_estimator():
    X = _lagged_pair(4)
    est = NodeStrength(FS, kind="msc").fit(X)
    F = est.transform(X)
    assert F.shape == (20, 3, est.freqs_.size)
    np.testing.assert_allclose(est.freqs_, np.arange(8, 31))
    band = (est.freqs_ >= 8) & (est.freqs_ <= 14)
    # channels 0 and 1 are coupled: their strength exceeds channel 2's
    assert F[:, 0, band].mean() > F[:, 2, band].mean() + 0.3
    with pytest.raises(DecoderError, match="kind='plv'"):
        NodeStrength(FS, kind="plv").fit(X)
    with pytest.raises(DecoderError, match="at least 2"):
        NodeStrength(FS).fit(X[:, :1])


# ---------------------------------------------------------------------------------- covariance
def test_augment_matches_reference_and_differs_from_roll_only_at_the_edge():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((2, 3, 50))
    order, lag = 4, 3
    Xa = augment(X, order, lag)
    n_out = 50 - (order - 1) * lag
    assert Xa.shape == (2, 3 * order, n_out)
    ref = np.empty_like(Xa)
    for e in range(2):
        for k in range(order):
            for c in range(3):
                for t in range(n_out):
                    ref[e, k * 3 + c, t] = X[e, c, t + k * lag]
    np.testing.assert_array_equal(Xa, ref)
    rolled = np.concatenate([np.roll(X, -k * lag, axis=-1) for k in range(order)], axis=1)
    np.testing.assert_array_equal(rolled[..., :n_out], Xa)  # identical before the wrap
    for k in range(1, order):  # each delayed block wraps exactly k*lag samples
        blk = slice(k * 3, (k + 1) * 3)
        wrapped = rolled[:, blk, 50 - k * lag :]
        np.testing.assert_array_equal(wrapped, X[..., : k * lag])
    assert not np.allclose(rolled[..., n_out:], 0)
    # MOABB's AugmentedDataset builds the same blocks but ends each one lag samples earlier
    moabb = np.concatenate(
        [X[..., : -order * lag]] + [X[..., p * lag : -(order - p) * lag] for p in range(1, order)],
        axis=1,
    )
    np.testing.assert_array_equal(moabb, Xa[..., : 50 - order * lag])
    np.testing.assert_array_equal(augment(X, 1, 5), X)
    with pytest.raises(DecoderError, match="order=20"):
        augment(X, 20, 3)


def test_augment_vs_pyriemann_time_delay_covariances():
    # pyRiemann's TimeDelayCovariances stacks np.roll(X, +d): x(t - d), wrapped at the start.
    from pyriemann.estimation import TimeDelayCovariances

    rng = np.random.default_rng(10)
    X = rng.standard_normal((3, 2, 60))
    order, lag = 3, 4
    edge = (order - 1) * lag
    tdc = TimeDelayCovariances(delays=[k * lag for k in range(1, order)], estimator="scm")
    C_td = tdc.fit_transform(X)
    Xtd = tdc.Xtd_
    ours = augment(X, order, lag)
    reversed_blocks = np.concatenate(
        [ours[:, k * 2 : (k + 1) * 2] for k in reversed(range(order))], axis=1
    )
    # past the wrapped edge, the two embeddings hold the same samples (blocks in reverse order)
    np.testing.assert_array_equal(Xtd[..., edge:], reversed_blocks)
    # within the edge, pyRiemann's delayed blocks hold wrapped samples from the epoch's end
    for k in range(1, order):
        d = k * lag
        np.testing.assert_array_equal(Xtd[:, k * 2 : (k + 1) * 2, :d], X[..., -d:])
    # so the covariances differ; ours equals the covariance of the un-wrapped samples
    C_ours = AugmentedCovariances(order, lag, estimator="scm").fit_transform(X)
    assert not np.allclose(C_ours[:, :2, :2], C_td[:, :2, :2])
    ref = np.stack([np.cov(e, bias=True) for e in ours])
    np.testing.assert_allclose(C_ours, ref, rtol=1e-10)


def test_mutual_information_first_minimum_is_quarter_period():
    rng = np.random.default_rng(6)
    t = np.arange(4000) / FS
    for freq, quarter in [(10.0, 4), (8.0, 5), (6.4, 6)]:
        x = np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)
        X = x.reshape(2, 1, 2000)
        mi = mutual_information_curve(X, 10)
        assert mi.shape == (11,)
        assert mi[0] > mi[1:].max()  # I(x; x) is the binned entropy
        assert mutual_information_lag(X, 10) == quarter


def _lorenz_x(dt: float = 0.05, n: int = 2800) -> np.ndarray:
    def f(_t, s, sig=10.0, r=28.0, b=8.0 / 3.0):
        x, y, z = s
        return [sig * (y - x), x * (r - z) - y, x * y - b * z]

    sol = solve_ivp(f, (0, (n + 200) * dt), [1.0, 1.0, 1.0], t_eval=np.arange(n + 200) * dt,
                    rtol=1e-9, atol=1e-9)
    return sol.y[0][200:]


def test_fnn_order_sinusoid_2_lorenz_3():
    # 10.3 Hz: not commensurate with 160 Hz, so the delay vectors fill the circle (an exactly
    # periodic sampled sine only visits a few points and Kennel's ratio degenerates)
    t = np.arange(2000) / FS
    rng = np.random.default_rng(8)
    sine = (np.sin(2 * np.pi * 10.3 * t) + 1e-3 * rng.standard_normal(t.size)).reshape(1, 1, -1)
    fr = fnn_fractions(sine, 4, 6)
    assert fr[0] > 0.5 and fr[1] < 0.01
    assert fnn_order(sine, 4, 6) == 2
    lx = _lorenz_x().reshape(1, 1, -1)
    lag = mutual_information_lag(lx, 10)
    assert 3 <= lag <= 6
    fr = fnn_fractions(lx, lag, 6)
    assert fr[0] > 0.8 and fr[2] < 0.01  # d=1 mostly false, d=3 unfolded
    assert fnn_order(lx, lag, 6) == 3


def test_augmented_covariances_auto_and_fixed():
    rng = np.random.default_rng(7)
    X = lfilter([1.0], [1.0, -1.6, 0.95], rng.standard_normal((6, 3, 320)), axis=-1)
    est = AugmentedCovariances(order=3, lag=2).fit(X)
    C = est.transform(X)
    assert C.shape == (6, 9, 9)
    assert np.all(np.linalg.eigvalsh(C) > 0)
    auto = AugmentedCovariances(order="auto", lag="auto").fit(X)
    # AR(2) oscillation of period 2*pi / acos(0.8 / sqrt(0.95)) = 10.3 samples: the first minimum
    # of the mutual information is near a quarter period, and an oscillation needs order >= 2
    assert auto.lag_ == 3
    assert 2 <= auto.order_ <= 10
    assert auto.lag_ == mutual_information_lag(X, 10)
    assert auto.order_ == fnn_order(X, auto.lag_, 10)
    assert auto.transform(X).shape == (6, 3 * auto.order_, 3 * auto.order_)
    with pytest.raises(DecoderError, match="order=11"):
        AugmentedCovariances(order=11).fit(X)
    with pytest.raises(DecoderError, match="lag=0"):
        AugmentedCovariances(lag=0).fit(X)


# --------------------------------------------------------------------------- input checks
def test_check_helpers_messages():
    from neurodeck.decoders._checks import check_band, check_epochs, check_labels, check_sfreq

    X = np.zeros((2, 3, 10), dtype=np.float32)
    out = check_epochs(X)
    assert out.dtype == np.float64 and out.shape == (2, 3, 10)
    with pytest.raises(DecoderError, match=r"shape \(3, 10\) \(2-D\).*X\[np.newaxis\]"):
        check_epochs(X[0])
    with pytest.raises(DecoderError, match="complex"):
        check_epochs(X + 1j)
    with pytest.raises(DecoderError, match="converted to an array"):
        check_epochs([[[1.0, 2.0]], [[1.0]]])
    bad = np.zeros((2, 3, 10))
    bad[0, 0, :5] = np.nan
    with pytest.raises(DecoderError, match=r"5 NaN and 0 Inf.*epoch 0, channel 0, sample 0.* \.\.\."):
        check_epochs(bad)
    with pytest.raises(DecoderError, match="at least 20"):
        check_epochs(X, min_times=20)
    with pytest.raises(DecoderError, match="3 labels but X has 2"):
        check_labels([0, 1, 1], 2)
    with pytest.raises(DecoderError, match=r"1 class\(es\) \[1\]"):
        check_labels([1, 1], 2)
    with pytest.raises(DecoderError, match="NaN"):
        check_labels([0.0, np.nan], 2)
    assert check_labels([[0], [1]], 2).shape == (2,)
    with pytest.raises(DecoderError, match="sfreq=-1"):
        check_sfreq(-1)
    with pytest.raises(DecoderError, match="sfreq='fast'"):
        check_sfreq("fast")
    with pytest.raises(DecoderError, match="fmin=30.*fmax=8"):
        check_band(30, 8, 160.0)


@pytest.mark.parametrize("nperseg, noverlap, n_times", [(160, None, 481), (161, None, 320), (64, 16, 200), (200, None, 200)])
def test_welch_psd_equals_scipy_welch(nperseg, noverlap, n_times):
    from scipy import signal

    from neurodeck.decoders.features.psd import welch_psd

    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 4, n_times)) * 10 + 5
    psd, freqs = welch_psd(X, 160.0, 8.0, 32.0, nperseg=nperseg, noverlap=noverlap)
    f_ref, p_ref = signal.welch(X, fs=160.0, window="hann", nperseg=nperseg, noverlap=noverlap,
                                detrend="constant", scaling="density", axis=-1)
    band = (f_ref >= 8.0) & (f_ref <= 32.0)
    np.testing.assert_allclose(freqs, f_ref[band])
    np.testing.assert_allclose(psd, p_ref[..., band], rtol=1e-10, atol=1e-12 * p_ref.max())


def test_burg_psd_equals_the_known_spectrum_of_an_ar2_process():
    """Burg (order 2, long windows) on a simulated AR(2) gives its theoretical density
    ``2 s2 / (fs |A(f)|^2)`` (a resonance at ~fs/8 here); Welch of the same data agrees."""
    from scipy.signal import lfilter

    fs, a_true = 128.0, np.array([1.0, -1.2727922, 0.81])  # poles at 0.9 exp(+-i pi/4): 16 Hz
    rng = np.random.default_rng(4)
    x = lfilter([1.0], a_true, rng.standard_normal((4, 1, 64 * 128)), axis=-1)[..., 512:]
    psd, freqs = burg_psd(x, fs, 2, 60, order=2, win_s=16.0, step_s=8.0)
    A = np.polyval(a_true[::-1], np.exp(-2j * np.pi * freqs / fs))
    theory = 2.0 / (fs * np.abs(A) ** 2)
    np.testing.assert_allclose(psd.mean(axis=(0, 1)), theory, rtol=0.1)
    assert freqs[np.argmax(psd.mean(axis=(0, 1)))] == pytest.approx(16.0, abs=1.0)
    welch, wf = welch_psd(x, fs, 2, 60, nperseg=256)
    np.testing.assert_allclose(welch.mean(axis=(0, 1))[np.isin(wf, freqs)],
                               theory[np.isin(freqs, wf)], rtol=0.25)


def test_burg_ar_equals_statsmodels_burg():
    """Our vectorised Burg against statsmodels' (a library we did not write), per signal."""
    sm_lm = pytest.importorskip("statsmodels.regression.linear_model")
    from scipy.signal import lfilter

    rng = np.random.default_rng(5)
    x = lfilter([1.0], [1.0, -0.9, 0.5, -0.2], rng.standard_normal((3, 2, 600)), axis=-1)
    a, sigma2 = burg_ar(x, 8)
    for i in range(3):
        for j in range(2):
            rho, s2 = sm_lm.burg(x[i, j], order=8, demean=False)
            # statsmodels gives x[n] = sum rho_k x[n-k] + e[n]; ours the filter [1, a_1 .. a_p]
            np.testing.assert_allclose(-a[i, j, 1:], rho, rtol=1e-9, atol=1e-12)
            assert sigma2[i, j] == pytest.approx(s2, rel=0.02)  # its residual-variance estimate


def test_welch_psd_cached_grid_does_not_leak_between_calls():
    """welch_psd keeps its DFT matrix per grid (the engine computes a spectrum every hop): a
    caller writing into the returned arrays changes nothing for the next call, and another
    grid gets its own matrix (equal to scipy's welch)."""
    from scipy import signal

    from neurodeck.decoders.features.psd import welch_psd

    rng = np.random.default_rng(8)
    X = rng.standard_normal((2, 3, 321))
    psd, freqs = welch_psd(X, 160.0, 8.0, 30.0)
    ref_psd, ref_freqs = psd.copy(), freqs.copy()
    psd[:] = 0.0
    freqs[:] = -1.0
    again, freqs2 = welch_psd(X, 160.0, 8.0, 30.0)
    np.testing.assert_array_equal(again, ref_psd)
    np.testing.assert_array_equal(freqs2, ref_freqs)
    for sf, n_t in ((128.0, 129), (250.0, 500)):
        Y = rng.standard_normal((1, 2, n_t))
        got, f = welch_psd(Y, sf, 8.0, 30.0)
        fs, ps = signal.welch(Y, sf, nperseg=int(min(n_t, round(sf))), detrend="constant")
        keep = (fs >= 8.0) & (fs <= 30.0)
        np.testing.assert_allclose(f, fs[keep])
        np.testing.assert_allclose(got, ps[..., keep], rtol=1e-10)
