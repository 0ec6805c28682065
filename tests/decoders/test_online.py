"""OnlineDecoder: one window == the batch == the scikit-learn pipeline; clear errors.

The ``@512`` cases run the same checks on S001 resampled to 512 Hz, where the 8-32 Hz models
decimate to a 128 Hz working rate (q = 4: anti-alias low-pass, every 4th sample, band-pass).
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

from neurodeck.decoders.errors import ChannelMismatchError, DecoderError
from neurodeck.decoders.evaluation import pseudo_online, sliding_windows
from neurodeck.decoders.online import OnlineDecoder
from neurodeck.decoders.onnx import save_bundle
from neurodeck.decoders.pipelines import DecoderConfig
from tests.decoders.test_pipelines import load_s001


@functools.cache
def s001_at(sfreq: float = 160.0):
    """:func:`load_s001` at ``sfreq`` (160 Hz: as recorded; 512 Hz: resampled by 16/5)."""
    if sfreq == 160.0:
        return load_s001()
    from scipy.signal import resample_poly

    from neurodeck.decoders.epochs import extract_epochs

    assert sfreq == 512.0
    _, _, ch, sf, runs = load_s001()
    cfg = DecoderConfig()
    runs = [(resample_poly(d, 16, 5, axis=1), on * 16 // 5, lab) for d, on, lab in runs]
    Xs, ys = [], []
    for d, on, lab in runs:
        X, kept = extract_epochs(d, sfreq, on, cfg.tmin, cfg.tmax, cfg.pad)
        Xs.append(X)
        ys.append(lab[kept])
    return np.concatenate(Xs), np.concatenate(ys), ch, sfreq, runs


def _train(name: str, sfreq: float, path, decimate: bool = True):
    X, y, ch, sf, _ = s001_at(sfreq)
    cfg = DecoderConfig(pipeline=name, decimate=decimate)
    pipe = cfg.build(sf, ch).fit(X, y)
    return pipe, OnlineDecoder(save_bundle(pipe, cfg, path, ch_names=ch, sfreq=sf, X_check=X))


@pytest.fixture(scope="module", params=["ts-lr", "psd-lda", "fbts-lr", "ts-lr@512", "psd-lda@512"])
def trained(request, tmp_path_factory):
    name, _, rate = request.param.partition("@")
    pipe, dec = _train(name, float(rate or 160), tmp_path_factory.mktemp(name))
    assert dec.decim == (4 if rate == "512" else 1)
    return pipe, dec


def test_decide_equals_decide_batch_equals_pipeline(trained):
    pipe, dec = trained
    X, *_ = s001_at(dec.sfreq)
    batch = dec.decide_batch(X)
    one_by_one = np.array([dec.decide(w) for w in X])
    # same computation; batching only changes BLAS summation order (rounding, ~1e-14)
    np.testing.assert_allclose(one_by_one, batch, atol=1e-12, rtol=0)
    np.testing.assert_allclose(batch, pipe.predict_proba(X), atol=1e-5, rtol=0)
    assert dec.labels == ["left_hand", "right_hand"]
    assert dec.window_samples == X.shape[2]


def _stream_decisions(dec, data, hop, ends, chunks):
    """Feed ``data`` to a DecoderStream as the engine does (reset on the first clean window or
    after NaN/Inf, then only the new samples, in chunks of varying size) and decide at ``ends``."""
    st = dec.open_stream(hop)
    W = dec.window_samples
    out = np.full((len(ends), len(dec.labels)), np.nan)
    rng = np.random.default_rng(0)
    for k, e in enumerate(ends):
        window = data[:, e - W:e]
        if st.end is not None:
            pos = st.end
            while pos < e:  # what arrived since the last window, in uneven chunks
                step = min(int(rng.integers(1, chunks)), e - pos)
                part = data[:, pos:pos + step]
                if not np.isfinite(part).all():
                    st.invalidate()
                    break
                st.push(part)
                pos += step
        if np.isfinite(window).all():
            if st.end is None:
                st.reset(window, e)
            got = st.decide(window)
            out[k] = np.nan if got is None else got
    return out


def test_pseudo_online_is_the_live_stream_and_close_to_per_window(trained):
    """Replay (band-pass over the recording once) == the live stream filtered chunk by chunk
    (equal numbers); both within 1e-4 of filtering each padded window separately."""
    _, dec = trained
    _, _, ch, sf, runs = s001_at(dec.sfreq)
    data, onsets, labels = runs[0]
    data = data[:, : int(30 * sf)].copy()
    a, b = int(2000 * sf / 160), int(2005 * sf / 160)
    data[3, a:b] = np.nan  # a NaN burst: windows holding it invalid, the filter restarts
    keep = onsets < data.shape[1] - 4 * sf
    res = pseudo_online(dec, data, sf, (onsets[keep], labels[keep]), step_s=0.125)
    hop = dec.hop_samples(0.125)
    assert hop == (20 if sf == 160 else 64)  # 16 samples at the 128 Hz working rate
    W = dec.window_samples
    assert res.outputs.shape == (len(res.ends), 2)
    assert np.all(res.ends % hop == 0) and res.ends[0] == -(-W // hop) * hop
    assert res.ends[-1] == data.shape[1] // hop * hop
    nan_rows = (res.ends - W < b) & (res.ends > a)
    assert np.isnan(res.outputs[nan_rows]).all() and np.isfinite(res.outputs[~nan_rows]).all()
    live = _stream_decisions(dec, data, hop, res.ends, chunks=37)
    np.testing.assert_allclose(live, res.outputs, atol=1e-10, rtol=0)
    per_window = dec.decide_batch(np.stack([data[:, e - W:e] for e in res.ends]))
    # fbts-lr: its 4 Hz sub-bands (order 2) keep ~1e-5 of their impulse energy past the 1 s
    # padding (the 8-32 Hz band: 1e-9), so per-window filtering differs more from the stream
    tol = 2e-3 if dec.bundle.meta["pipeline"] == "fbts-lr" else 1e-4
    np.testing.assert_allclose(res.outputs, per_window, atol=tol, rtol=0)
    ok = np.isfinite(per_window[:, 0])
    assert (res.outputs[ok].argmax(1) == per_window[ok].argmax(1)).all()
    # the first window after a (re)start is filtered exactly like a training epoch
    after = int(np.flatnonzero(nan_rows)[-1]) + 1
    for k in (0, after):
        np.testing.assert_allclose(res.outputs[k], per_window[k], atol=1e-12, rtol=0)
    assert len(res.trial_correct) == keep.sum()
    assert res.realtime_factor > 0 and np.isfinite(res.accuracy)
    if dec.bundle.meta["pipeline"] == "psd-lda":  # only the selected features' channels filtered
        sel = dict(dec.bundle.features)["select"].selected_
        assert sorted(dec._plan.sub.tolist()) == sorted({c for c, _ in sel}) and len(sel) == 10
        assert len(dec._plan.sub) < len(dec.ch_names)


def test_stream_running_sums_forget_an_artifact_exactly(trained):
    """The live stream keeps running sums of its hop blocks' Grams (whitened too, for ts-lr);
    rounding left by a 1000x artifact block is re-summed away within a window: afterwards the
    stream equals the replay to 1e-14 (without the re-sums: 1.9e-11 for the rest of the run)."""
    _, dec = trained
    if not dec._plan or not dec._plan.bands[0].covariance_first:
        pytest.skip("no block covariances in this pipeline")
    # ts-lr, and each band of fbts-lr: the tangent space's whitening is folded in
    assert all(bp.whitening is not None for bp in dec._plan.bands)
    _, _, ch, sf, runs = s001_at(dec.sfreq)
    data = runs[0][0][:, : int(60 * sf)].copy()
    k = sf / 160
    art = int(1632 * k)
    data[:, int(1600 * k):art] *= 1e3
    hop = dec.hop_samples(0.125)
    ends, out = dec.replay(data, hop, batch=64)  # the artifact's last window is #82 (batch 1)
    live = _stream_decisions(dec, data, hop, ends, chunks=int(37 * k))
    np.testing.assert_allclose(live, out, atol=1e-8, rtol=0)
    later = np.arange(len(ends)) >= 128  # replay batches that never summed the artifact
    assert (ends[later] - dec.window_samples > art + dec.window_samples).all() and later.sum() > 200
    np.testing.assert_allclose(live[later], out[later], atol=1e-14, rtol=0)


def test_replay_in_threads_gives_the_same_numbers_in_order(trained):
    """Batches computed two or three at a time (OnlineDecoder.replay threads) give exactly the
    one-at-a-time outputs, NaN rows of invalid windows included, and progress counts up."""
    _, dec = trained
    _, _, ch, sf, runs = s001_at(dec.sfreq)
    data = runs[0][0][:, : int(40 * sf)].copy()
    data[5, int(20 * sf):int(20 * sf) + 7] = np.nan
    hop = dec.hop_samples(0.125)
    ends, one = dec.replay(data, hop, batch=16)
    for threads in (2, 3):
        done = []
        ends_t, out = dec.replay(data, hop, batch=16, threads=threads, progress=done.append)
        np.testing.assert_array_equal(ends_t, ends)
        np.testing.assert_array_equal(out, one)
        assert done == sorted(done) and done[-1] == len(ends) and len(done) > 8
    assert np.isnan(one[:, 0]).any() and np.isfinite(one[:, 0]).sum() > 100


def test_threaded_replay_runs_one_blas_thread_and_restores_it(trained):
    """OpenBLAS threads on top of replay threads spin for the same cores: while its threads run
    the replay holds BLAS at one thread, and gives the caller's setting back after."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> int:
        return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

    _, dec = trained
    _, _, ch, sf, runs = s001_at(dec.sfreq)
    data = runs[0][0][:, : int(40 * sf)]
    seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == 2
        dec.replay(data, dec.hop_samples(0.125), batch=16, threads=2,
                   progress=lambda n: seen.append(blas_threads()))
        assert blas_threads() == 2
        dec.replay(data, dec.hop_samples(0.125), batch=16, threads=1,  # one thread: untouched
                   progress=lambda n: seen.append(blas_threads()))
    assert len(seen) > 4 and set(seen[:len(seen) // 2]) == {1} and set(seen[len(seen) // 2:]) == {2}


def test_a_cancelled_threaded_replay_stops(trained):
    """progress raising (the Replay page's cancel) ends a threaded replay: nothing after it runs."""
    _, dec = trained
    _, _, ch, sf, runs = s001_at(dec.sfreq)
    data = runs[0][0][:, : int(40 * sf)]

    class Cancel(Exception):
        pass

    def progress(n):
        raise Cancel

    with pytest.raises(Cancel):
        dec.replay(data, dec.hop_samples(0.125), batch=8, threads=2, progress=progress)


def test_nan_window_is_invalid_not_garbage(trained):
    _, dec = trained
    X, *_ = s001_at(dec.sfreq)
    W = X[:3].copy()
    W[1, 2, 100] = np.nan
    W[2, 0, 0] = np.inf
    assert dec.decide(W[1]) is None
    assert dec.decide(W[2]) is None
    out = dec.decide_batch(W)
    assert np.isfinite(out[0]).all() and np.isnan(out[1:]).all()
    assert dec.valid_mask(W).tolist() == [True, False, False]


def test_wrong_shapes_are_clear_errors(trained):
    _, dec = trained
    X, *_ = s001_at(dec.sfreq)
    with pytest.raises(DecoderError, match=r"must be \(n_channels, n_times\)"):
        dec.decide(X[:2])
    with pytest.raises(DecoderError, match=r"window shape \(16, 300\) does not match the model"):
        dec.decide(X[0][:, :300])
    with pytest.raises(DecoderError, match="expected \\(16 channels"):
        dec.decide_batch(X[:, :10])
    with pytest.raises(DecoderError, match=r"\(n_windows, n_channels, n_times\)"):
        dec.decide_batch(X[0])


def test_check_stream_names_the_mismatch():
    X, y, ch, sf, _ = load_s001()
    cfg = DecoderConfig(pipeline="csp-lda")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        pipe = cfg.build(sf, ch).fit(X, y)
        dec = OnlineDecoder(save_bundle(pipe, cfg, d, ch_names=ch, sfreq=sf, X_check=X[:8]))
    stream = ["Fp1", *reversed(ch), "Trigger"]
    picks = dec.check_stream(stream, sf)
    assert [stream[i] for i in picks] == ch
    # a stream window (all stream channels) is reordered to the model's channels
    full = np.zeros((len(stream), X.shape[2]))
    full[picks] = X[0]
    np.testing.assert_allclose(dec.decide(full), dec.decide_batch(X[:1])[0], atol=1e-12, rtol=0)
    with pytest.raises(ChannelMismatchError, match="stream rate 250.0 Hz differs from the model's 160.0 Hz"):
        dec.check_stream(stream, 250.0)
    renamed = ["EEG1" if c == "C3.." else c for c in ch]
    with pytest.raises(ChannelMismatchError, match=r"missing from the stream: \['C3..'\].*'EEG1'"):
        dec.check_stream(renamed, sf)
    picks = dec.check_stream(renamed, sf, mapping={"C3": "EEG1"})
    assert [renamed[i] for i in picks][ch.index("C3..")] == "EEG1"
    with pytest.raises(ChannelMismatchError, match=r"C3.. \(mapped to 'EEG9'\)"):
        dec.check_stream(renamed, sf, mapping={"C3": "EEG9"})


def test_sliding_windows_batches_cover_every_hop():
    data = np.arange(3 * 100, dtype=float).reshape(3, 100)
    got = list(sliding_windows(data, window=20, step=10, batch=3))
    ends = np.concatenate([e for e, _ in got])
    assert ends.tolist() == list(range(20, 101, 10))
    e, W = got[1]
    np.testing.assert_array_equal(W[0], data[:, e[0] - 20:e[0]])


def test_single_window_oas_coefficients_are_the_batch_ones():
    """One window's OAS coefficients (the live stream's path: Python floats) equal those the
    batch path gives the same window bit for bit, including a zero matrix (shrink 1)."""
    from neurodeck.decoders.pipelines import oas_coefficients

    rng = np.random.default_rng(3)
    for c, n in [(2, 3), (8, 129), (64, 129), (65, 1000)]:
        for scale in (1e-6, 1.0, 1e4):
            X = scale * rng.standard_normal((1, c, n))
            E = X @ X.transpose(0, 2, 1) / n
            batch = oas_coefficients(np.concatenate([E, 2.0 * E]), n)
            for got, ref in zip(oas_coefficients(E, n), batch, strict=True):
                assert got.shape == (1,) and ref.shape == (2,)
                assert got[0] == ref[0], (c, n, scale)
    zero = np.zeros((1, 5, 5))
    assert [v[0] for v in oas_coefficients(zero, 10)] == [1.0, 0.0]
    assert [v[0] for v in oas_coefficients(np.concatenate([zero, zero]), 10)] == [1.0, 0.0]


def test_amplitude_scale_of_one_window_is_the_documented_statistic():
    """calibration.amplitude_scale of one window (the engine's unit check, every hop) is
    median over channels of mean |first difference|, as numpy computes it (odd and even channel
    counts, ties), and NaN samples are ignored."""
    from neurodeck.decoders.calibration import amplitude_scale

    rng = np.random.default_rng(4)
    for n_ch in (1, 2, 3, 64, 65):
        for n_t in (2, 3, 64):
            X = rng.standard_normal((n_ch, n_t)) * rng.uniform(0.1, 10.0, (n_ch, 1))
            ref = float(np.median(np.abs(np.diff(X, axis=-1)).mean(axis=-1)))
            assert amplitude_scale(X) == ref, (n_ch, n_t)
    X = np.tile(np.array([0.0, 1.0]), (4, 8))  # every channel the same: a tie in the middle
    X[1] *= 2
    assert amplitude_scale(X) == 1.0
    X[0, 3] = np.nan
    assert np.isfinite(amplitude_scale(X))
