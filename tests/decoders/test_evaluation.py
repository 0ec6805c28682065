"""Cross-validation records and pseudo-online replay on the bundled real recording."""
from __future__ import annotations

import numpy as np
import pytest

from neurodeck.decoders.errors import DecoderError
from neurodeck.decoders.evaluation import (
    cross_validate_pipelines,
    pseudo_online,
    score_trial,
    score_trials,
)
from neurodeck.decoders.pipelines import make_pipeline
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
    from neurodeck.decoders.evaluation import score_trials

    kw = dict(window=X.shape[2], trial_len=int(4 * sf), sfreq=sf)
    with_pad = score_trials(res.ends, res.outputs, res.labels, onsets, labels, n_pad=160, **kw)
    no_pad = score_trials(res.ends, res.outputs, res.labels, onsets, labels, n_pad=0, **kw)
    np.testing.assert_array_equal(res.time_to_decision, with_pad[1])
    np.testing.assert_array_equal(res.trial_correct, with_pad[0])
    assert not np.array_equal(with_pad[1], no_pad[1], equal_nan=True)


def test_score_trial_is_the_rule_score_trials_applies():
    """Hand-computed: window selection, NaN rows, correctness and time to decision."""
    labels = ["a", "b"]
    # window ends, in seconds after a cue at t=100 (signal part 1 s, trial 3 s)
    rel = np.array([0.75, 1.0, 1.5, 1.75, 2.0, 2.5, 3.0, 3.25])
    p_a = np.array([0.99, 0.2, 0.9, np.nan, 0.1, 0.9, 0.8, 0.01])
    out = np.stack([p_a, 1 - p_a], axis=1)
    s = score_trial(100.0 + rel, out, labels, 100.0, "a", start_s=1.0, trial_s=3.0)
    # kept: 1.0 (0.2), 1.5 (0.9), 2.0 (0.1), 2.5 (0.9), 3.0 (0.8); running mean of p(a):
    # 0.2 b, 0.55 a, 0.4 b, 0.525 a, 0.58 a -> correct from the decision ending at 2.5 s
    assert (s.predicted, s.correct, s.n_decisions) == ("a", True, 5)
    assert s.time_to_decision_s == pytest.approx(2.5)
    wrong = score_trial(100.0 + rel, out, labels, 100.0, "b", start_s=1.0, trial_s=3.0)
    assert (wrong.predicted, wrong.correct, wrong.n_decisions) == ("a", False, 5)
    assert np.isnan(wrong.time_to_decision_s)
    unknown = score_trial(100.0 + rel, out, labels, 100.0, "feet", start_s=1.0, trial_s=3.0)
    assert not unknown.correct and np.isnan(unknown.time_to_decision_s)
    none = score_trial(100.0 + rel, out, labels, 100.0, "a", start_s=3.5, trial_s=4.0)
    assert (none.predicted, none.correct, none.n_decisions) == (None, False, 0)
    empty = score_trial([], [], labels, 0.0, "a", start_s=0.0, trial_s=4.0)
    assert empty.n_decisions == 0 and np.isnan(empty.time_to_decision_s)
    # the same decisions on a 4 Hz sample axis through score_trials: the same score
    sf = 4.0
    onset = 400
    ends = onset + np.round(rel * sf).astype(int)
    correct, ttd = score_trials(ends, out, labels, [onset, onset], ["a", "b"], window=6,
                                n_pad=2, trial_len=12, sfreq=sf)
    np.testing.assert_array_equal(correct, [True, False])
    assert ttd[0] == pytest.approx(2.5) and np.isnan(ttd[1])
