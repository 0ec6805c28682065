"""The end-to-end demo on the embedded recording, Qt-free (``neurodeck demo`` drives it).

Every step goes through the real data path, accelerated:

1. *Calibration*: the first 10 trials of each class of runs 4 and 8 of EEGMMIDB subject S001
   (``assets/eegmmidb``; 21 cues in 175 s instead of the two runs' 30 in 250 s) are replayed as
   LSL streams (EEG + markers) at ``speed`` x real time and recorded by the crash-safe
   :class:`~acquisition.recorder.Recorder` into a session folder, as a live calibration would be.
2. *Training*: the shipped population model (``assets/population/eegmmidb-default``: 12 other
   EEGMMIDB subjects, S001 not among them) is fine-tuned on the calibration
   (:func:`app.workflow.population.fine_tune_population`: the Riemannian mean of its trials starts
   the re-centering reference; the classifier stays the population's) and saved as the session's
   model bundle (ONNX + JSON). For comparison, the ``pipelines`` are cross-validated from
   scratch on the same trials.
3. *Online*: run 12 (never seen in training) is replayed over LSL; the
   :class:`~app.engine.OnlineEngine` decodes it live through onnxruntime (the re-centering
   reference keeps adapting to the incoming windows, without labels) and publishes decisions on
   an LSL stream that an independent inlet reads back; trials are scored from the live decisions
   and the live markers with the same rule as pseudo-online evaluation.
"""
from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "eegmmidb"
CALIBRATION_RUNS = ("S001R04.edf", "S001R08.edf")
ONLINE_RUN = "S001R12.edf"
EVENTS = {"T1": "left_hand", "T2": "right_hand"}
#: Pipelines cross-validated from scratch on the calibration, for comparison (one quick one: the
#: short calibration is the point; ``--pipelines`` asks for more).
DEFAULT_PIPELINES = ("ts-lr",)
#: The population model the demo fine-tunes (built without S001).
POPULATION = ASSETS.parent / "population" / "eegmmidb-default"
#: Calibration trials per class: the calibration replay ends once each class has had this many.
CALIB_TRIALS = 10
#: Name of the fine-tuned population model in the results and the session's models folder.
MODEL_NAME = "population-finetuned"
#: The recorder's final drain waits this long for more data once the replay has pushed
#: everything (over loopback); the default 1 s is longer than an inlet's 0.5 s stall limit.
REPLAY_DRAIN_QUIET_S = 0.4
#: Online decoding: one decision every 1/16 s.
HOP_S = 0.0625


@dataclasses.dataclass
class DemoResult:
    session_dir: Path
    calibration_file: Path
    bundle_dir: Path
    cv: list[dict]
    best: str
    population: dict = dataclasses.field(default_factory=dict)
    speed: float = 1.0
    online_trials: int = 0
    online_accuracy: float = float("nan")
    online_time_to_decision_s: float = float("nan")
    decisions_published: int = 0
    decisions_received: int = 0
    skipped_hops: int = 0
    latency_ms_p50: float = float("nan")
    latency_ms_p99: float = float("nan")
    samples_lost: int = 0


Report = Callable[[str], None]
#: ``on_stage(stage, info)``: called on the demo's thread when a step starts or ends (the window
#: of ``neurodeck demo`` follows the streams with it). Stages and their ``info`` keys:
#: ``"session"`` (path), ``"calibration"`` (eeg, markers: LSL stream names; before the replay
#: starts), ``"calibration-end"`` (before the replay's streams stop), ``"training"`` (recording),
#: ``"trained"`` (bundle, best, cv), ``"online"`` (eeg, markers, decisions, labels, bundle, speed;
#: before the replay starts), ``"online-end"`` (before the replay's streams stop).
StageHook = Callable[[str, dict], None]


class DemoCancelled(Exception):
    """The demo was stopped on request (``should_stop`` returned True)."""


def _stage(on_stage: StageHook | None, stage: str, **info) -> None:
    if on_stage is not None:
        on_stage(stage, info)


def _check_stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise DemoCancelled("the demo was stopped before the end")


def _wait_until(pred: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _ticks(player, every_s: float = 1.0, poll_s: float = 0.05):
    """Yield about every ``every_s`` seconds until ``player`` has pushed everything; notice the
    end within ``poll_s`` (the inlets on the replay call a stream that stays silent for 2 s
    lost: the end must be acted on at once, not up to a second later)."""
    next_tick = time.monotonic() + every_s
    while not player.wait(poll_s):
        if time.monotonic() >= next_tick:
            next_tick += every_s
            yield


def _asset(name: str) -> Path:
    path = ASSETS / name
    if not path.is_file():
        raise FileNotFoundError(f"embedded recording {path} is missing; reinstall neurodeck")
    return path


def calibration_end(raw, k: int) -> float:
    """Seconds into ``raw`` where the calibration stops: half a second (of rest) before the first
    cue after both classes have had ``k`` cued trials (the end of the recording if that never
    happens)."""
    counts = dict.fromkeys(EVENTS, 0)
    for onset, desc in zip(raw.annotations.onset, raw.annotations.description, strict=True):
        if desc not in EVENTS:
            continue
        if min(counts.values()) >= k:
            return float(onset) - 0.5
        counts[desc] += 1
    return float(raw.times[-1])


def record_calibration(session, speed: float, report: Report, on_stage: StageHook | None = None,
                       should_stop: Callable[[], bool] | None = None) -> Path:
    """Replay the calibration runs over LSL and record them into ``session``."""
    import mne

    from neurodeck.acquisition.io import load_recording
    from neurodeck.acquisition.player import Player
    from neurodeck.acquisition.recorder import Recorder
    from neurodeck.acquisition.streams import resolve_stream

    raws = [load_recording(_asset(name)) for name in CALIBRATION_RUNS]
    raw = mne.concatenate_raws(raws) if len(raws) > 1 else raws[0]
    full_s = raw.times[-1]
    raw.crop(0.0, calibration_end(raw, CALIB_TRIALS))
    name = f"demo-eeg-{uuid.uuid4().hex[:6]}"
    out = session.new_recording_path("calibration")
    player = Player(raw, speed=speed, name=name)
    report(
        f"calibration: replaying {' + '.join(CALIBRATION_RUNS)} up to the {CALIB_TRIALS}th trial "
        f"of each class ({raw.times[-1]:.0f} of {full_s:.0f} s, {len(raw.ch_names)} ch @ "
        f"{raw.info['sfreq']:.0f} Hz) as LSL stream {name!r} at {speed:g}x"
    )
    # The window (if any) connects its own viewer before the recorder does, so that no inlet
    # sits connected but idle (and says the stream stalled or was lost) while another connects.
    # The recorder drains and stops while the replay's streams are still there: the planned end
    # of a calibration is not a lost stream (no "stream_lost" annotation in the recording).
    # Our own replay's streams are resolved by source id: given names, the recorder would wait
    # for other streams of the same name (0.5 s each), and the window's viewer, connected at the
    # "calibration" stage, would sit idle long enough to call the stream lost.
    sources = [resolve_stream(source_id=sid, timeout=5.0) for sid in player.source_ids]
    ended = False
    try:
        _stage(on_stage, "calibration", eeg=player.eeg_name, markers=list(player.marker_names))
        with Recorder(sources, out,
                      drain_quiet=REPLAY_DRAIN_QUIET_S) as recorder:
            player.start()
            for _ in _ticks(player):
                _check_stop(should_stop)
                report(f"  recording... {player.progress * 100:3.0f}%  {recorder.status.line()}")
            _stage(on_stage, "calibration-end")
            ended = True
    finally:
        if not ended:
            _stage(on_stage, "calibration-end")
        player.stop()
    report(f"calibration recorded to {out}")
    return out


def train(session, calibration: Path, pipelines: Sequence[str], report: Report):
    """Fine-tune the population model on the calibration and save it in the session; also
    cross-validate ``pipelines`` from scratch on the same trials, for comparison.

    Returns the bundle, the from-scratch CV rows and the population model's calibration score
    (``metric``, ``score``, ``n_trials``, ``population``).
    """
    from sklearn.metrics import roc_auc_score

    from neurodeck.app.workflow.evaluate import load_for
    from neurodeck.app.workflow.population import fine_tune_population, population_trials
    from neurodeck.app.workflow.training import make_config
    from neurodeck.decoders.evaluation import cross_validate_pipelines
    from neurodeck.decoders.onnx import load_bundle

    report(f"training: the population model {POPULATION.name} (12 other subjects, not S001) "
           "fine-tuned on the calibration: its re-centering reference starts from these trials")
    out = fine_tune_population(POPULATION, [calibration], session.models_dir / MODEL_NAME,
                               mapping=EVENTS)
    bundle = load_bundle(out)
    trials = population_trials(bundle, [calibration], EVENTS)
    p = bundle.predict_proba(trials.X)[:, bundle.classes.index("right_hand")]
    population = {"population": POPULATION.name, "metric": "roc_auc", "n_trials": int(len(trials.y)),
                  "score": float(roc_auc_score(trials.y == "right_hand", p))}
    report(f"  population model on the {len(trials.y)} calibration trials (no label used): "
           f"roc_auc {population['score']:.3f}; bundle saved to {out}")
    results = []
    if pipelines:
        configs = {p: make_config(p, events=EVENTS, band=(8.0, 32.0), tmin=0.5, tmax=2.5)
                   for p in pipelines}
        trials = load_for(calibration, configs[pipelines[0]])
        X, y = trials.X, trials.y
        report(f"  from scratch on the same {len(y)} trials, 5-fold CV of {', '.join(pipelines)}")
        pipes = {p: c.build(trials.sfreq, trials.ch_names, seed=42) for p, c in configs.items()}
        results = [r.as_dict() for r in cross_validate_pipelines(X, y, pipes, cv=5, seed=42,
                                                                dataset="S001 calibration")]
        for r in results:
            report(f"    {r['pipeline']:<10} {r['metric']} {r['score']:.3f} "
                   f"(folds {' '.join(f'{s:.2f}' for s in r['fold_scores'])})")
    return out, results, population


def run_online(bundle_dir: Path, speed: float, report: Report, on_decision=None,
               on_stage: StageHook | None = None,
               should_stop: Callable[[], bool] | None = None) -> dict:
    """Replay the online run over LSL, decode it live, read decisions back, score trials."""
    import pylsl

    from neurodeck.acquisition.inlet import Inlet, MarkerInlet
    from neurodeck.acquisition.io import load_recording
    from neurodeck.acquisition.player import Player
    from neurodeck.app.engine import OnlineEngine
    from neurodeck.decoders.evaluation import score_trials
    from neurodeck.decoders.online import OnlineDecoder

    decoder = OnlineDecoder(bundle_dir)
    raw = load_recording(_asset(ONLINE_RUN))
    tag = uuid.uuid4().hex[:6]
    player = Player(raw, speed=speed, name=f"demo-online-{tag}")
    inlet = Inlet(player.eeg_name, buffer_seconds=60)
    markers = MarkerInlet(player.marker_names[0])
    out_name = f"demo-decisions-{tag}"
    engine = OnlineEngine(decoder, inlet, hop_s=HOP_S, out_name=out_name)
    history = []
    engine.add_decision_listener(history.append)
    if on_decision is not None:
        engine.add_decision_listener(on_decision)
    # the EEG timestamps of every sample, to place the live markers on the sample axis
    stamps: list[np.ndarray] = []
    inlet.add_chunk_listener(lambda data, ts: stamps.append(ts))
    received = 0
    try:
        # the window first (see record_calibration), then our inlets, right before the replay
        _stage(on_stage, "online", eeg=player.eeg_name, markers=list(player.marker_names),
               decisions=out_name, labels=list(engine.labels), bundle=bundle_dir, speed=speed)
        inlet.start()
        markers.start()
        engine.start()
        consumer = pylsl.StreamInlet(pylsl.resolve_byprop(
            "source_id", engine.outlet_info.source_id(), timeout=5)[0])
        consumer.open_stream(timeout=5)
        player.wait_for_consumers(5.0)
        report(f"online: replaying {ONLINE_RUN} ({raw.times[-1]:.0f} s, unseen in training) at "
               f"{speed:g}x; decoding live with {decoder.bundle.meta.get('pipeline')} via onnxruntime")
        player.start()
        for _ in _ticks(player):
            _check_stop(should_stop)
            got, _ = consumer.pull_chunk(timeout=0.0, max_samples=100_000)
            received += len(got)
            last = engine.last_decision
            out = "-" if last is None or not last.valid else " ".join(
                f"{lab}={v:.2f}" for lab, v in zip(engine.labels, last.values, strict=True))
            report(f"  decoding... {player.progress * 100:3.0f}%  {engine.stats.decisions} "
                   f"decisions, stream {inlet.state.value}  {out}")
        # the end: every sample in, the last hop decided, every decision read back; without
        # idle waits, so that no inlet sits long enough on the finished replay to call it stalled
        hop = engine.hop_samples
        inlet.wait_for_samples(raw.n_times, 5.0)
        _wait_until(lambda: engine.last_decision is not None
                    and engine.last_decision.index + hop > raw.n_times, 5.0)
        deadline = time.monotonic() + 5.0
        while received < engine.stats.decisions and time.monotonic() < deadline:
            got, _ = consumer.pull_chunk(timeout=0.05, max_samples=100_000)
            received += len(got)
    finally:
        _stage(on_stage, "online-end")
        engine.stop()
        markers.stop()  # before the replay's streams go away: a planned end, not a lost stream
        inlet.stop()
        player.stop()
    ts = np.concatenate(stamps) if stamps else np.zeros(0)
    live = [(t, lab) for t, lab in markers.drain() if lab in ("T1", "T2")]
    onsets = np.searchsorted(ts, [t for t, _ in live]) if len(ts) else np.zeros(0, int)
    labels = [EVENTS[lab] for _, lab in live]
    ends, outputs = [], []
    for d in history:
        ends.append(d.index)
        outputs.append(d.values)
    window = decoder.window_samples
    n_pad = decoder.pad_samples
    correct, ttd = score_trials(np.asarray(ends), np.asarray(outputs), list(engine.labels),
                                onsets, labels, window=window, n_pad=n_pad,
                                trial_len=int(round(4.0 * decoder.sfreq)), sfreq=decoder.sfreq)
    lat = engine.stats.percentiles("latency_s")
    return {
        "online_trials": len(correct),
        "online_accuracy": float(np.mean(correct)) if len(correct) else float("nan"),
        "online_time_to_decision_s": float(np.nanmedian(ttd)) if np.isfinite(ttd).any() else float("nan"),
        "decisions_published": engine.stats.decisions,
        "decisions_received": received,
        "skipped_hops": engine.stats.skipped_hops,
        "latency_ms_p50": lat[50] * 1e3,
        "latency_ms_p99": lat[99] * 1e3,
        "samples_lost": inlet.counters.samples_missing,
    }


def run_demo(root: Path, *, speed: float = 8.0, pipelines: Sequence[str] = DEFAULT_PIPELINES,
             report: Report = print, on_decision=None, on_stage: StageHook | None = None,
             should_stop: Callable[[], bool] | None = None) -> DemoResult:
    """Calibrate -> train -> online on the embedded recording; returns the scores.

    ``on_decision(decision)`` is called on the engine thread for every live decision,
    ``on_stage(stage, info)`` at each step (see :data:`StageHook`); when ``should_stop()``
    returns True (checked about once a second) the replays stop and :class:`DemoCancelled` is
    raised.
    """
    from neurodeck.app.session import Session

    stamp = time.strftime("%Y%m%d-%H%M%S")
    session = Session.create(root, "demo-S001", f"demo-{stamp}", exist_ok=True)
    report(f"session folder: {session.path}")
    _stage(on_stage, "session", path=session.path)
    calibration = record_calibration(session, speed, report, on_stage, should_stop)
    _check_stop(should_stop)
    _stage(on_stage, "training", recording=calibration)
    bundle, cv, population = train(session, calibration, list(pipelines), report)
    _stage(on_stage, "trained", bundle=bundle, best=MODEL_NAME, cv=cv)
    _check_stop(should_stop)
    result = DemoResult(session.path, calibration, bundle, cv, MODEL_NAME, speed=speed,
                        population=population)
    for key, value in run_online(bundle, speed, report, on_decision, on_stage,
                                 should_stop).items():
        setattr(result, key, value)
    return result


def summary_text(result: DemoResult) -> str:
    """The scores of a demo run as printed by ``neurodeck demo`` and shown by the demo window."""
    pop = result.population
    n = pop.get("n_trials", 0)
    lines = ["", "== neurodeck demo: scores ==",
             f"calibration (runs 4+8 up to the {CALIB_TRIALS}th trial of each class: {n} trials, "
             f"{pop.get('metric', 'roc_auc')}):",
             f"  population model   {pop.get('score', float('nan')):.3f} (12 other subjects; "
             "reference from these trials, no label used)  <- used online"]
    if result.cv:
        lines.append(f"  from scratch on the same {n} trials (5-fold CV):")
    for r in sorted(result.cv, key=lambda r: -r["score"]):
        lines.append(f"    {r['pipeline']:<10} {r['score']:.3f} +/- "
                     f"{float(np.std(r['fold_scores'])):.3f}")
    lines += [
        f"online (run 12, unseen, live over LSL through onnxruntime, {result.best}, reference "
        "adapting):",
        f"  trial accuracy       {result.online_accuracy:.3f} over {result.online_trials} trials "
        "(chance 0.5)",
        f"  time to decision     {result.online_time_to_decision_s:.2f} s (median, from the cue)",
        f"  decisions            {result.decisions_published} published, "
        f"{result.decisions_received} received by an independent LSL inlet"
        + (f" ({result.skipped_hops} hops skipped to keep up with the {result.speed:g}x replay)"
           if result.skipped_hops else ""),
        f"  latency              p50 {result.latency_ms_p50:.1f} ms, p99 "
        f"{result.latency_ms_p99:.1f} ms (last sample of the window -> decision published)",
        f"  samples lost         {result.samples_lost}",
        f"session folder: {result.session_dir}",
    ]
    return "\n".join(lines) + "\n"


def demo_ok(result: DemoResult) -> bool:
    """The demo passes when online decoding beats chance and no decision was lost."""
    return result.online_accuracy > 0.5 and result.decisions_received == result.decisions_published
