"""app.workflow.population: the recommendation from a learning curve, and clear refusals of
recordings a population model cannot take."""
from __future__ import annotations

import pytest

from neurodeck.app.errors import UserError
from neurodeck.app.workflow.population import (
    default_population,
    load_population,
    population_trials,
    recommend,
)


def test_recommend_smallest_k_reaching_the_plateau_fraction():
    # rises to a plateau of 0.80 (smoothed) from 0.50: 90 % of the gain is 0.77
    curve = {1: 0.55, 2: 0.62, 3: 0.70, 4: 0.76, 5: 0.79, 6: 0.80, 7: 0.81, 8: 0.79}
    k, text = recommend(curve, 0.5)
    assert k == 5 and text.startswith("5 trials per class reach 90% of the plateau")
    assert recommend(curve, 0.5, fraction=0.5)[0] == 3
    # smoothed (mean with the neighbours): one point alone does not reach the target
    assert recommend({1: 0.6, 2: 0.9, 3: 0.6, 4: 0.6, 5: 0.85, 6: 0.85, 7: 0.85}, 0.5)[0] == 6


def test_recommend_says_when_nothing_beats_chance():
    k, text = recommend({1: 0.52, 2: 0.49, 3: 0.53}, 0.5)
    assert k is None and "clearly above chance" in text
    k, text = recommend({1: 0.36, 2: 0.40}, 1 / 3, metric="accuracy")
    assert k is None and "accuracy" in text
    assert recommend({}, 0.5)[0] is None


def test_recordings_the_population_model_cannot_take(shared_data, asset_edfs):
    bundle = load_population(default_population())
    xdf = shared_data / "xdf/bci-essentials/sub-P001_ses-S001_task-T1_run-001_eeg.xdf"
    with pytest.raises(UserError, match="sampled at 256 Hz, the population model at 160 Hz"):
        population_trials(bundle, [xdf], {"switch,3,0,2": "left_hand",
                                          "switch,3,2,2": "right_hand"})
    with pytest.raises(UserError, match="knows the classes"):
        population_trials(bundle, asset_edfs[:1], {"T1": "left_hand", "T2": "feet"})
    tr = population_trials(bundle, asset_edfs[:1])
    assert tr.ch_names == bundle.ch_names and tr.X.shape[1:] == (64, bundle.window_samples)
    with pytest.raises(UserError, match="without a re-centering step"):
        import tempfile
        from pathlib import Path

        from neurodeck.app.workflow import load_trials
        from neurodeck.app.workflow.training import fit_bundle, make_config

        t = load_trials(asset_edfs[:1])
        out = Path(tempfile.mkdtemp()) / "csp"
        fit_bundle(t, make_config("csp-lda", events=t.mapping), out)
        load_population(out)


def test_population_work_lives_in_one_module():
    """Building a population model and starting a user from it are app.workflow.population; the
    transfer module keeps the evaluation protocols only (issue 10: one module for one job)."""
    import neurodeck
    from neurodeck.app.workflow import population, transfer

    assert neurodeck.train_population is population.train_population
    assert population.train_population.__module__ == "neurodeck.app.workflow.population"
    assert not hasattr(transfer, "train_population") and hasattr(transfer, "evaluate_transfer")
