"""OnlineDecoder: one window == the batch == the scikit-learn pipeline; clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from neurodeck.decoders.errors import ChannelMismatchError, DecoderError
from neurodeck.decoders.evaluation import pseudo_online, sliding_windows
from neurodeck.decoders.online import OnlineDecoder
from neurodeck.decoders.onnx import save_bundle
from neurodeck.decoders.pipelines import DecoderConfig
from tests.decoders.test_pipelines import load_s001


@pytest.fixture(scope="module", params=["ts-lr", "psd-lda", "fbts-lr"])
def trained(request, tmp_path_factory):
    X, y, ch, sf, _ = load_s001()
    cfg = DecoderConfig(pipeline=request.param)
    pipe = cfg.build(sf, ch).fit(X, y)
    path = save_bundle(pipe, cfg, tmp_path_factory.mktemp(request.param), ch_names=ch, sfreq=sf,
                       X_check=X)
    return pipe, OnlineDecoder(path)


def test_decide_equals_decide_batch_equals_pipeline(trained):
    X, *_ = load_s001()
    pipe, dec = trained
    batch = dec.decide_batch(X)
    one_by_one = np.array([dec.decide(w) for w in X])
    # same computation; batching only changes BLAS summation order (rounding, ~1e-14)
    np.testing.assert_allclose(one_by_one, batch, atol=1e-12, rtol=0)
    np.testing.assert_allclose(batch, pipe.predict_proba(X), atol=1e-5, rtol=0)
    assert dec.labels == ["left_hand", "right_hand"]
    assert dec.window_samples == X.shape[2]


def test_pseudo_online_windows_are_the_online_windows(trained):
    """Batched replay over the recording gives exactly what decide() gives on each live window."""
    _, dec = trained
    _, _, ch, sf, runs = load_s001()
    data, onsets, labels = runs[0]
    data = data[:, : int(30 * sf)]
    keep = onsets < data.shape[1] - 4 * sf
    res = pseudo_online(dec, data, sf, (onsets[keep], labels[keep]), step_s=0.5)
    assert res.outputs.shape == (len(res.ends), 2)
    assert np.all(res.ends % 80 == 0) and res.ends[0] >= dec.window_samples
    for k in (0, len(res.ends) // 2, len(res.ends) - 1):
        end = res.ends[k]
        np.testing.assert_allclose(dec.decide(data[:, end - dec.window_samples:end]),
                                   res.outputs[k], atol=1e-12, rtol=0)
    assert len(res.trial_correct) == keep.sum()
    assert res.realtime_factor > 0 and np.isfinite(res.accuracy)


def test_nan_window_is_invalid_not_garbage(trained):
    X, *_ = load_s001()
    _, dec = trained
    W = X[:3].copy()
    W[1, 2, 100] = np.nan
    W[2, 0, 0] = np.inf
    assert dec.decide(W[1]) is None
    assert dec.decide(W[2]) is None
    out = dec.decide_batch(W)
    assert np.isfinite(out[0]).all() and np.isnan(out[1:]).all()
    assert dec.valid_mask(W).tolist() == [True, False, False]


def test_wrong_shapes_are_clear_errors(trained):
    X, *_ = load_s001()
    _, dec = trained
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
