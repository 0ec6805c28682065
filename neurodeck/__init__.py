"""neurodeck: a real-time motor-imagery brain-computer interface, scriptable from Python.

The installed package is ``neurodeck`` with three layers, kept in the repository's top-level
folders: ``neurodeck.acquisition`` (LSL in/out, buffer, simulator, player, recorder, file I/O),
``neurodeck.decoders`` (features, pipelines, DKF, ONNX bundles, evaluation) and ``neurodeck.app``
(workflow, CLI, online engine, GUI). The names below are the public API for scripts; each is
re-exported from the module named in brackets and imported on first use, so ``import neurodeck``
is fast and loads no Qt. docs/tutorial.md walks through a scripted session with them.

Recordings and trials
---------------------
load_recording
    Any recording (XDF, FIF, EDF/BDF, GDF, BrainVision) as ``mne.io.Raw`` with annotations
    [``acquisition.io``].
get_events
    Events array, shape (n_events, 3), and ``event_id`` from a Raw's annotations
    [``acquisition.io``].
load_trials, Trials
    Recordings -> cue-locked padded windows ``Trials.X``, shape (n_trials, n_channels,
    n_times), in microvolts, with labels ``Trials.y`` [``app.workflow``].

Pipelines and cross-validation
------------------------------
PIPELINES
    ``{name: one-line description}`` of the named pipelines (TOML specs in assets/pipelines)
    [``decoders.pipelines``].
load_pipeline_specs
    Read user pipeline specs from a TOML file, built from the allow-listed steps
    [``decoders.pipelines``].
make_config, DecoderConfig
    A decoder's frozen description: pipeline name, band, window, events, channels
    [``app.workflow``, ``decoders.pipelines``].
run_cross_validation, TrainResult
    Named pipelines on the same shuffled stratified folds of one dataset's trials
    [``app.workflow``].
evaluate
    Datasets x pipelines cross-validation (and pseudo-online replay), in parallel with joblib
    (``n_jobs``) or on a Dask cluster [``app.workflow``].
evaluate_transfer
    Pipelines on new users with other subjects' data: chronological calibration of K trials
    per class, leave-one-subject-out, or pooled folds [``app.workflow``].

Training and model bundles
--------------------------
fit_and_save
    Fit a cross-validated pipeline on every trial and save its bundle [``app.workflow``].
fit_bundle
    Fit a :class:`DecoderConfig` on trials and save its bundle [``app.workflow``].
train_population
    One model from several subjects, each re-centred, whose reference adapts to a new user;
    saved as a bundle [``app.workflow``].
save_bundle
    Save a fitted scikit-learn pipeline as a bundle: ONNX + JSON sidecar, never a pickle
    [``decoders.onnx``].
load_bundle, ModelBundle
    Load and validate a bundle: onnxruntime session and sidecar metadata [``decoders.onnx``].

Decoding
--------
OnlineDecoder
    Window of raw microvolts, shape (n_channels, n_times), in; class probabilities out
    [``decoders.online``].
OnlineEngine
    Ties an LSL inlet to a decoder and publishes a decision every hop [``app.engine``].
evaluate_recording
    Pseudo-online replay of a bundle over a recording, scored trial by trial: the same decoder
    the engine runs, batched [``app.workflow``].

Streams
-------
Simulator, SimulatorConfig
    A synthetic motor-imagery amplifier streaming EEG and cue markers over LSL
    [``acquisition.simulator``].
run_duration
    Seconds of one simulated run of a :class:`SimulatorConfig` (all its trials)
    [``acquisition.simulator``].
Player
    Replays a recording file as LSL streams, in real time or faster [``acquisition.player``].
Recorder
    Crash-safe recording of LSL streams into FIF + JSON sidecar [``acquisition.recorder``].
Inlet, MarkerInlet
    Threaded LSL inlets into a ring buffer (data) or a queue (markers), with clock sync, recovery
    and loss counters [``acquisition.inlet``].
"""
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("neurodeck")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

#: public name -> module it is re-exported from (imported on first attribute access)
_API: dict[str, str] = {
    "load_recording": "neurodeck.acquisition.io",
    "get_events": "neurodeck.acquisition.io",
    "load_trials": "neurodeck.app.workflow",
    "Trials": "neurodeck.app.workflow",
    "PIPELINES": "neurodeck.decoders.pipelines",
    "load_pipeline_specs": "neurodeck.decoders.pipelines",
    "make_config": "neurodeck.app.workflow",
    "DecoderConfig": "neurodeck.decoders.pipelines",
    "run_cross_validation": "neurodeck.app.workflow",
    "TrainResult": "neurodeck.app.workflow",
    "evaluate": "neurodeck.app.workflow",
    "fit_and_save": "neurodeck.app.workflow",
    "fit_bundle": "neurodeck.app.workflow",
    "evaluate_transfer": "neurodeck.app.workflow",
    "train_population": "neurodeck.app.workflow",
    "save_bundle": "neurodeck.decoders.onnx",
    "load_bundle": "neurodeck.decoders.onnx",
    "ModelBundle": "neurodeck.decoders.onnx",
    "OnlineDecoder": "neurodeck.decoders.online",
    "OnlineEngine": "neurodeck.app.engine",
    "evaluate_recording": "neurodeck.app.workflow",
    "Simulator": "neurodeck.acquisition.simulator",
    "SimulatorConfig": "neurodeck.acquisition.simulator",
    "run_duration": "neurodeck.acquisition.simulator",
    "Player": "neurodeck.acquisition.player",
    "Recorder": "neurodeck.acquisition.recorder",
    "Inlet": "neurodeck.acquisition.inlet",
    "MarkerInlet": "neurodeck.acquisition.inlet",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'neurodeck' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
