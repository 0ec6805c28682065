"""Compare pipelines on datasets: cross-validation (and pseudo-online replay), in parallel.

``neurodeck evaluate`` is :func:`evaluate`. Every (dataset, pipeline) pair is one task: the
shuffled stratified folds of :func:`decoders.evaluation.cross_validate_pipelines` (scikit-learn's
``cross_validate``) and, if asked, the leave-one-recording-out pseudo-online replay. The tasks run
through joblib: in this process (``n_jobs=1``), in ``n_jobs`` local worker processes (loky), or
on a Dask cluster (``backend="dask"``, joblib's Dask backend on a ``dask.distributed`` scheduler).
Each task limits BLAS/OpenMP to one thread, so the scores are the same in every mode.
"""
from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.app.errors import UserError
from neurodeck.app.workflow.datasets import Trials, load_trials
from neurodeck.app.workflow.replay import replay_threads

logger = logging.getLogger(__name__)

#: joblib backends :func:`evaluate` runs on.
BACKENDS = ("loky", "dask")


def _files(spec: str | Path | Sequence[str | Path]) -> list[str]:
    """The recordings of a dataset as given (strings kept verbatim for the JSON record)."""
    if isinstance(spec, str):
        return [p for p in spec.split(",") if p]
    if isinstance(spec, Path):
        return [str(spec)]
    return [str(p) for p in spec]


def load_for(spec: str | Path | Sequence[str | Path], config, *,
             reference_filter: bool = False, baseline: bool = False) -> Trials:
    """:func:`load_trials` with the events, window, padding and channels of a DecoderConfig.

    ``reference_filter``: band-pass each whole recording zero-phase in ``config.band`` first (use
    a config with ``pad=0``; see :func:`load_trials`). ``baseline``: also the pre-cue windows
    (for the feature maps of a report).
    """
    return load_trials(spec, config.event_mapping, tmin=config.tmin, tmax=config.tmax,
                       pad=config.pad, picks=config.picks,
                       zero_phase_band=tuple(config.band) if reference_filter else None,
                       baseline=baseline)


def load_datasets(specs: Sequence[str], config) -> dict[str, Trials]:
    """Datasets used together (subjects or sessions pooled, sources and targets): each loaded
    once with :func:`load_for`, in order, keyed by its spec.

    Raises
    ------
    UserError
        A dataset's channels or rate differ from the first one's.
    """
    out: dict[str, Trials] = {}
    for spec in specs:
        if spec in out:
            continue
        tr = load_for(spec, config)
        first = next(iter(out.values()), tr)
        if tr.ch_names != first.ch_names or tr.sfreq != first.sfreq:
            raise UserError(f"{spec}: channels/rate ({len(tr.ch_names)} channels at {tr.sfreq:g} Hz) "
                            f"differ from the first dataset ({len(first.ch_names)} at "
                            f"{first.sfreq:g} Hz); use --picks")
        out[spec] = tr
    return out


def _one_thread():
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _load_task(spec, config, reference_filter: bool, keep_runs: bool) -> Trials:
    with _one_thread():
        trials = load_for(spec, config, reference_filter=reference_filter)
    return trials if keep_runs else dataclasses.replace(trials, runs=[])


def _build(config, trials: Trials, seed: int, reference_filter: bool):
    """The unfitted pipeline; with ``reference_filter`` its own band-pass is switched off."""
    pipe = config.build(trials.sfreq, trials.ch_names, seed=seed)
    if reference_filter:
        if "bandpass" not in pipe.named_steps:  # a filter bank filters inside the pipeline
            raise UserError(f"--reference-filter does not apply to {config.pipeline!r} (it filters "
                            "its own sub-bands)")
        pipe.set_params(bandpass="passthrough")
    return pipe


def pseudo_online_loro(trials: Trials, config, *, seed: int = 42, step_s: float = 0.0625,
                       trial_s: float = 4.0, pipeline=None, threads: int = 1) -> dict | None:
    """Leave-one-recording-out pseudo-online replay of one pipeline on one dataset.

    For each recording: fit on the others' trials, save a bundle to a temporary directory, replay
    the held-out continuous recording through :class:`decoders.online.OnlineDecoder` (batched).
    ``pipeline`` (unfitted, cloned for every fit) defaults to ``config.build(...)``; ``threads``:
    batches replayed at the same time (:meth:`decoders.online.OnlineDecoder.replay`).

    Returns
    -------
    summary : dict or None
        Per-trial accuracy, median time to decision and speed, pooled over recordings; None (and
        a warning) when the dataset has fewer than two recordings.
    """
    import tempfile
    import time

    from sklearn.base import clone

    from neurodeck.decoders.evaluation import pseudo_online
    from neurodeck.decoders.onnx import save_bundle

    runs = trials.runs
    if len(runs) < 2:
        logger.warning("pseudo-online needs >= 2 recordings per dataset; skipped for %s",
                       ",".join(trials.sources))
        return None
    bounds = np.cumsum([0] + [len(r.kept) for r in runs])
    X_of = [trials.X[bounds[k]:bounds[k + 1]] for k in range(len(runs))]
    correct, ttd, compute, duration, n_windows = [], [], 0.0, 0.0, 0
    for k, run in enumerate(runs):
        others = [j for j in range(len(runs)) if j != k]
        Xtr = np.concatenate([X_of[j] for j in others])
        ytr = np.concatenate([runs[j].labels[runs[j].kept] for j in others])
        pipe = (config.build(trials.sfreq, trials.ch_names, seed=seed) if pipeline is None
                else clone(pipeline)).fit(Xtr, ytr)
        with tempfile.TemporaryDirectory() as tmp:
            save_bundle(pipe, config, tmp, ch_names=trials.ch_names, sfreq=trials.sfreq,
                        X_check=Xtr[:8])
            t0 = time.process_time()
            r = pseudo_online(tmp, run.data, trials.sfreq, (run.onsets, run.labels),
                              step_s=step_s, trial_s=trial_s, threads=threads)
            compute += time.process_time() - t0
        correct.append(r.trial_correct)
        ttd.append(r.time_to_decision)
        duration += r.duration_s
        n_windows += len(r.ends)
    correct_a, ttd_a = np.concatenate(correct), np.concatenate(ttd)
    return {
        "scheme": "leave-one-recording-out",
        "step_s": step_s,
        "n_trials": int(len(correct_a)),
        "trial_accuracy": float(correct_a.mean()),
        "median_time_to_decision_s": float(np.nanmedian(ttd_a)) if np.isfinite(ttd_a).any() else None,
        "n_windows": n_windows,
        "cpu_s": compute,
        "realtime_factor_cpu": duration / max(compute, 1e-9),
    }


def _pair_task(trials: Trials, pipe, config, cv: int, seed: int, pseudo_online: bool,
               step_s: float, trial_s: float, threads: int = 1):
    """One (dataset, pipeline): its cross-validation and, if asked, its pseudo-online replay.

    ``pipe`` is built by the caller: pipelines added from files exist in the caller's registry
    only, not in a fresh worker process.
    """
    from neurodeck.decoders.evaluation import cross_validate_pipelines

    with _one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        res = cross_validate_pipelines(trials.X, trials.y, {config.pipeline: pipe}, cv=cv,
                                       seed=seed, dataset=trials.name)[0]
        po = (pseudo_online_loro(trials, config, seed=seed, step_s=step_s, trial_s=trial_s,
                                 pipeline=pipe, threads=threads) if pseudo_online else None)
    return res, po


def _runner(n_jobs: int, backend: str, scheduler: str | None):
    """A context manager yielding ``(parallel, client_loads)``: the joblib Parallel to use and
    whether the datasets are read in this process (Dask workers may not see the files)."""
    import contextlib

    from joblib import Parallel, parallel_config

    if backend not in BACKENDS:
        raise UserError(f"backend {backend!r} unknown; expected one of {list(BACKENDS)}")
    if backend == "loky":
        if n_jobs == 0 or n_jobs < -1:
            raise UserError(f"n_jobs {n_jobs} invalid; expected >= 1, or -1 for every core")
        return contextlib.nullcontext((Parallel(n_jobs=n_jobs, return_as="generator"), False))
    if not scheduler:
        raise UserError("the dask backend needs a scheduler address (e.g. tcp://10.0.0.5:8786)")

    @contextlib.contextmanager
    def dask():
        try:
            from dask.distributed import Client
        except ImportError:
            raise UserError("the dask backend needs dask.distributed: pip install "
                            "'neurodeck[dask]'") from None
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(f"cannot reach the Dask scheduler {scheduler!r}: {exc}") from None
        try:
            with parallel_config(backend="dask"):
                yield Parallel(n_jobs=n_jobs if n_jobs > 1 else -1, return_as="generator"), True
        finally:
            client.close()

    return dask()


def evaluate(datasets: Sequence[str | Path | Sequence[str | Path]], pipelines: Sequence[str],
             config, *, cv: int = 5, seed: int = 42, reference_filter: bool = False,
             pseudo_online: bool = False, step_s: float = 0.0625, trial_s: float = 4.0,
             n_jobs: int = 1, backend: str = "loky", scheduler: str | None = None,
             progress: Callable[[str, str, int], None] | None = None) -> list[dict[str, Any]]:
    """Cross-validate every pipeline on every dataset (datasets x pipelines, in parallel).

    Parameters
    ----------
    datasets : sequence
        Each a recording, recordings joined by commas, or a sequence of recordings of one
        subject and session.
    pipelines : sequence of str
        Names of :data:`decoders.pipelines.PIPELINES`.
    config : DecoderConfig
        Events, band, window, padding, channels and filter shared by all pipelines (its
        ``pipeline`` is replaced by each name).
    cv, seed : int
        Shuffled stratified folds (the same for every pipeline of a dataset) and their seed.
    reference_filter : bool
        Zero-phase band-pass of each whole recording, no in-pipeline filter and no padding
        (MOABB-style reference numbers; not usable online).
    pseudo_online : bool
        Also the leave-one-recording-out replay (:func:`pseudo_online_loro`) of every pair.
    step_s, trial_s : float
        Hop between replayed windows, and seconds after a cue whose windows count for it.
    n_jobs : int
        Worker processes (loky; -1: every core) or Dask jobs (-1 or 1: as many as the cluster
        has). The scores are identical for every value.
    backend : {"loky", "dask"}
    scheduler : str or None
        Address of the Dask scheduler (``backend="dask"``).
    progress : callable or None
        ``progress(dataset, pipeline, n_folds)`` after each pair, in order.

    Returns
    -------
    rows : list of dict
        One JSON record per (dataset, pipeline), datasets then pipelines in the given order:
        :meth:`CVResult.as_dict` plus ``pseudo_online`` (if asked), ``files``, ``sfreq``,
        ``n_channels``, ``band``, ``tmin``, ``tmax``, ``pad`` and ``filter``.
    """
    if reference_filter:
        config = dataclasses.replace(config, pad=0.0)
    from joblib import delayed

    configs = {n: dataclasses.replace(config, pipeline=n) for n in pipelines}
    with _runner(n_jobs, backend, scheduler) as (parallel, client_loads):
        if client_loads:
            loaded = [_load_task(s, config, reference_filter, pseudo_online) for s in datasets]
        else:
            loaded = list(parallel(delayed(_load_task)(s, config, reference_filter, pseudo_online)
                                   for s in datasets))
        pairs = [(i, n) for i in range(len(loaded)) for n in pipelines]
        pipes = {(i, n): _build(configs[n], loaded[i], seed, reference_filter) for i, n in pairs}
        # in this process the replay may use every core; in parallel jobs, one each
        threads = replay_threads() if n_jobs == 1 and backend != "dask" else 1
        out = parallel(delayed(_pair_task)(loaded[i], pipes[i, n], configs[n], cv, seed,
                                           pseudo_online, step_s, trial_s, threads)
                       for i, n in pairs)
        done = []
        for (i, n), item in zip(pairs, out, strict=True):
            done.append(item)
            if progress is not None:
                progress(loaded[i].name, n, cv)
    filt = ("zero-phase IIR on the whole recording (reference)" if reference_filter
            else f"causal 4th-order Butterworth x{config.filter_passes} per padded window "
            "(as online)")
    rows = []
    for (i, _), (res, po) in zip(pairs, done, strict=True):
        tr = loaded[i]
        d = res.as_dict()
        if pseudo_online:
            d["pseudo_online"] = po
        d.update(files=_files(datasets[i]), sfreq=tr.sfreq, n_channels=len(tr.ch_names),
                 band=list(config.band), tmin=config.tmin, tmax=config.tmax, pad=config.pad,
                 filter=filt)
        rows.append(d)
    return rows

