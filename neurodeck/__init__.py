"""neurodeck: a real-time motor-imagery brain-computer interface, scriptable from Python.

The installed package is ``neurodeck`` with three layers, kept in the repository's top-level
folders: ``neurodeck.acquisition`` (LSL in/out, buffer, simulator, player, recorder, file I/O),
``neurodeck.decoders`` (features, pipelines, DKF, ONNX bundles, evaluation) and ``neurodeck.app``
(workflow, CLI, online engine, GUI). The names below are the public API for scripts; each is
re-exported from the module named in brackets and imported on first use, so ``import neurodeck``
is fast and loads no Qt. docs/tutorial.md walks through a scripted session with them.

Recordings
----------
load_recording
    Any recording (XDF, FIF, EDF/BDF, GDF, BrainVision) as ``mne.io.Raw`` with annotations
    [``acquisition.io``].
get_events
    Events array, shape (n_events, 3), and ``event_id`` from a Raw's annotations
    [``acquisition.io``].

Pipelines and cross-validation
------------------------------
PIPELINES
    ``{name: one-line description}`` of the named decoding pipelines [``decoders.pipelines``].
make_pipeline
    A named pipeline as an unfitted scikit-learn ``Pipeline`` [``decoders.pipelines``].
DecoderConfig
    Frozen description of a decoder: pipeline name, band, window, events, channels
    [``decoders.pipelines``].
cross_validate_pipelines
    Stratified k-fold scores of several pipelines on the same folds, one :class:`CVResult`
    each [``decoders.evaluation``].
CVResult
    One pipeline's cross-validation result [``decoders.evaluation``].

Training and model bundles
--------------------------
save_bundle
    Save a fitted pipeline as a model bundle: ONNX + JSON sidecar, never a pickle
    [``decoders.onnx``].
load_bundle
    Load and validate a bundle into a :class:`ModelBundle` [``decoders.onnx``].
ModelBundle
    A loaded bundle: onnxruntime session, sidecar metadata [``decoders.onnx``].

Online decoding
---------------
OnlineDecoder
    Window of raw microvolts, shape (n_channels, n_times), in; class probabilities out
    [``decoders.online``].
OnlineEngine
    Ties an LSL inlet to a decoder and publishes a decision every hop [``app.engine``].
pseudo_online
    Replay a continuous recording through a bundle, batched, and score it trial by trial
    [``decoders.evaluation``].

Streams
-------
Simulator, SimulatorConfig
    A synthetic motor-imagery amplifier streaming EEG and cue markers over LSL
    [``acquisition.simulator``].
run_duration
    Seconds of one simulated run of a :class:`SimulatorConfig` (all its trials)
    [``acquisition.simulator``].
Inlet, MarkerInlet
    Threaded LSL inlets into a ring buffer (data) or a queue (markers), with clock sync, recovery
    and loss counters [``acquisition.inlet``].
Player
    Replays a recording file as LSL streams, in real time or faster [``acquisition.player``].
Recorder
    Crash-safe recording of LSL streams into FIF + JSON sidecar [``acquisition.recorder``].
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
    "PIPELINES": "neurodeck.decoders.pipelines",
    "make_pipeline": "neurodeck.decoders.pipelines",
    "DecoderConfig": "neurodeck.decoders.pipelines",
    "cross_validate_pipelines": "neurodeck.decoders.evaluation",
    "CVResult": "neurodeck.decoders.evaluation",
    "save_bundle": "neurodeck.decoders.onnx",
    "load_bundle": "neurodeck.decoders.onnx",
    "ModelBundle": "neurodeck.decoders.onnx",
    "OnlineDecoder": "neurodeck.decoders.online",
    "OnlineEngine": "neurodeck.app.engine",
    "pseudo_online": "neurodeck.decoders.evaluation",
    "Simulator": "neurodeck.acquisition.simulator",
    "SimulatorConfig": "neurodeck.acquisition.simulator",
    "Player": "neurodeck.acquisition.player",
    "Recorder": "neurodeck.acquisition.recorder",
    "Inlet": "neurodeck.acquisition.inlet",
    "MarkerInlet": "neurodeck.acquisition.inlet",
    "run_duration": "neurodeck.acquisition.simulator",
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
