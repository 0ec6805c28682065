"""Cross-validation records and pseudo-online replay on the bundled real recording."""
from __future__ import annotations

import numpy as np
import pytest

from decoders.errors import DecoderError
from decoders.evaluation import cross_validate_pipelines, pseudo_online
from decoders.pipelines import make_pipeline
from tests.decoders.test_pipelines import load_s001

KEYS = {"dataset", "pipeline", "metric", "score", "fold_scores", "n_trials", "fit_time_s",
        "predict_time_s"}


def test_cross_validation_records_on_real_eeg():
    X, y, ch, sf, _ = load_s001()
    pipes = {n: make_pipeline(n, sf, ch) for n in ("csp-lda", "ts-lr")}
    res = cross_validate_pipelines(X, y, pipes, cv=5, seed=42, dataset="S001")
    assert [r.pipeline for r in res] == ["csp-lda", "ts-lr"]
    for r in res:
        d = r.as_dict()
        assert KEYS <= set(d)
        assert d["metric"] == "roc_auc" and d["n_trials"] == 45 and len(d["fold_scores"]) == 5
        assert d["score"] == pytest.approx(np.mean(d["fold_scores"]))
        assert d["fit_time_s"] > 0 and d["predict_time_s"] > 0
    # S001 is a good performer on 16 sensorimotor channels: clearly above chance
    assert max(r.score for r in res) > 0.75
    again = cross_validate_pipelines(X, y, {"ts-lr": make_pipeline("ts-lr", sf, ch)}, seed=42)
    assert again[0].fold_scores == res[1].fold_scores


def test_cross_validation_metric_and_errors():
    X, y, ch, sf, _ = load_s001()
    y3 = y.copy()
    y3[::3] = "feet"
    res = cross_validate_pipelines(X, y3, {"csp-lda": make_pipeline("csp-lda", sf, ch)}, cv=3)
    assert res[0].metric == "accuracy" and res[0].n_classes == 3
    with pytest.raises(DecoderError, match="fewer than cv=30 folds"):
        cross_validate_pipelines(X, y, {"x": make_pipeline("mdm", sf, ch)}, cv=30)
    with pytest.raises(DecoderError, match="need at least 2 classes"):
        cross_validate_pipelines(X, np.array(["a"] * len(X)), {"x": make_pipeline("mdm", sf, ch)})
    with pytest.raises(DecoderError, match="n_trials, n_channels, n_times"):
        cross_validate_pipelines(X[0], y, {})


def test_pseudo_online_with_a_plain_pipeline_per_trial_accuracy():
    """Train on runs 4 and 8, replay run 12 continuously: per-trial decisions above chance."""
    X, y, ch, sf, runs = load_s001()
    pipe = make_pipeline("ts-lr", sf, ch).fit(X[:30], y[:30])
    data, onsets, labels = runs[2]
    res = pseudo_online(pipe, data, sf, (onsets, labels), window_s=X.shape[2] / sf, step_s=0.25)
    s = res.summary()
    assert s["n_trials"] == 15 and s["n_windows"] == len(res.ends)
    assert res.accuracy >= 0.6
    ok = np.isfinite(res.time_to_decision)
    assert ok.sum() == res.trial_correct.sum()
    # decisions start once the 2 s signal part of the window is after the cue, and end by 4 s
    assert np.all((res.time_to_decision[ok] >= 2.0) & (res.time_to_decision[ok] <= 4.0))
    with pytest.raises(DecoderError, match="window_s is required"):
        pseudo_online(pipe, data, sf, (onsets, labels))


def test_pseudo_online_takes_the_padding_from_a_filter_bank_first_step():
    """fbts-lr has no 'bandpass' step: the padding still comes from its first (filter-bank) step."""
    X, y, ch, sf, runs = load_s001()
    pipe = make_pipeline("fbts-lr", sf, ch).fit(X[:30], y[:30])
    data, onsets, labels = runs[2]
    res = pseudo_online(pipe, data, sf, (onsets, labels), window_s=X.shape[2] / sf, step_s=0.5)
    from decoders.evaluation import score_trials

    kw = dict(window=X.shape[2], trial_len=int(4 * sf), sfreq=sf)
    with_pad = score_trials(res.ends, res.outputs, res.labels, onsets, labels, n_pad=160, **kw)
    no_pad = score_trials(res.ends, res.outputs, res.labels, onsets, labels, n_pad=0, **kw)
    np.testing.assert_array_equal(res.time_to_decision, with_pad[1])
    np.testing.assert_array_equal(res.trial_correct, with_pad[0])
    assert not np.array_equal(with_pad[1], no_pad[1], equal_nan=True)
