"""The Qt-free workflow that ``neurodeck`` commands, the GUI pages and the demo share.

- :mod:`.datasets`: recordings -> cue-locked trials (:func:`load_trials`, the one loader).
- :mod:`.features`: spectral feature maps (R², ERD/ERS, node strength) of trials.
- :mod:`.training`: decoder configurations, cross-validation of pipelines, training and saving
  bundles.
- :mod:`.evaluate`: datasets x pipelines cross-validation (and pseudo-online replay), in
  parallel with joblib (local processes or a Dask cluster).
- :mod:`.transfer`: decoding for a new user from other subjects (chronological / leave-one-
  subject-out protocols with sources, population models).
- :mod:`.report`: the HTML calibration report.
- :mod:`.replay`: pseudo-online evaluation of a saved bundle on a recording.
- :mod:`.continuous`: continuous decoding (recordings + a target -> Kalman / DKF bundles).

Nothing here imports Qt (an import-linter contract holds it); front ends parse or ask, call
these functions and show the result.
"""
from __future__ import annotations

from neurodeck.app.workflow.datasets import (
    EEGMMIDB_MAPPING,
    Run,
    Trials,
    dataset_name,
    dataset_paths,
    default_mapping,
    load_trials,
)
from neurodeck.app.workflow.evaluate import evaluate, load_for, pseudo_online_loro
from neurodeck.app.workflow.features import FeatureMaps, clean_name, compute_feature_maps
from neurodeck.app.workflow.population import train_population
from neurodeck.app.workflow.replay import evaluate_recording
from neurodeck.app.workflow.report import write_report
from neurodeck.app.workflow.training import (
    TrainResult,
    confusion,
    fit_and_save,
    fit_bundle,
    make_config,
    run_cross_validation,
    train,
)
from neurodeck.app.workflow.transfer import evaluate_transfer

__all__ = [
    "EEGMMIDB_MAPPING",
    "FeatureMaps",
    "Run",
    "TrainResult",
    "Trials",
    "clean_name",
    "compute_feature_maps",
    "confusion",
    "dataset_name",
    "dataset_paths",
    "default_mapping",
    "evaluate",
    "evaluate_recording",
    "evaluate_transfer",
    "fit_and_save",
    "fit_bundle",
    "load_for",
    "load_trials",
    "make_config",
    "pseudo_online_loro",
    "run_cross_validation",
    "train",
    "train_population",
    "write_report",
]
