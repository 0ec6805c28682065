"""Decoding for a new user from other subjects: the transfer evaluation protocols.

``neurodeck evaluate --protocol chronological|loso`` (or ``within`` with ``--sources``) is
:func:`evaluate_transfer`. The re-centring, Procrustes, pooling and adaptation themselves live in
:mod:`decoders.transfer`, the protocols' folds in :mod:`decoders.evaluation`; population models
(``neurodeck train --population``, starting a new user from one) in
:mod:`app.workflow.population`.
"""
from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence
from typing import Any

from neurodeck.app.errors import UserError
from neurodeck.app.workflow.datasets import dataset_name
from neurodeck.app.workflow.evaluate import load_datasets

logger = logging.getLogger(__name__)

#: Protocols of :func:`evaluate_transfer`.
PROTOCOLS = ("within", "chronological", "loso")


def evaluate_transfer(datasets: Sequence[str], pipelines: Sequence[str], config, *,
                      protocol: str = "chronological", sources: Sequence[str] = (),
                      calib_trials: Sequence[int] = (0, 5, 10, 20), cv: int = 5,
                      seed: int = 42) -> list[dict[str, Any]]:
    """Score pipelines on target datasets with other subjects' (or sessions') data.

    Parameters
    ----------
    datasets : sequence of str
        Target datasets (a recording, or recordings of one session joined by commas).
    pipelines : sequence of str
        Names of :data:`decoders.pipelines.PIPELINES`.
    config : DecoderConfig
        Events, band, window, padding and channels shared by all pipelines (its ``pipeline`` is
        replaced by each name).
    protocol : {"within", "chronological", "loso"}
        ``within``: stratified ``cv``-fold inside each target, the sources pooled with each
        training fold. ``chronological``: the first K trials of each class of a target calibrate,
        all later trials test, the sources pooled with the calibration trials. ``loso``:
        chronological on each target with all the other targets as sources.
    sources : sequence of str
        Datasets to pretrain on; never a target; none with ``loso``.
    calib_trials : sequence of int
        The K of the chronological and loso protocols (0: no labelled calibration).
    cv, seed : int

    Returns
    -------
    rows : list of dict
        One JSON record per (target, pipeline[, K]): :meth:`CVResult.as_dict` plus ``sources``,
        ``sfreq``, ``n_channels``, ``band``, ``tmin``, ``tmax`` and ``pad``.

    Raises
    ------
    UserError
        ``loso`` with sources, a dataset both target and source, or datasets whose channels
        differ.
    """
    from neurodeck.decoders.evaluation import (
        cross_validate_with_sources,
        evaluate_chronological,
        evaluate_loso,
    )

    if protocol not in PROTOCOLS:
        raise UserError(f"protocol {protocol!r} unknown; expected one of {list(PROTOCOLS)}")
    datasets, sources = list(datasets), list(sources)
    if protocol == "loso" and sources:
        raise UserError("--protocol loso uses the positional datasets as each other's sources; "
                        "give --sources with --protocol chronological")
    trials = load_datasets(datasets + sources, config)
    loaded = {spec: (tr.X, tr.y) for spec, tr in trials.items()}
    first = next(iter(trials.values()))
    ch_names, sfreq = first.ch_names, first.sfreq
    overlap = set(datasets) & set(sources)
    if overlap:
        raise UserError(f"{sorted(overlap)} are both target and source; a target is never a source")
    pipes = {n: dataclasses.replace(config, pipeline=n).build(sfreq, ch_names, seed=seed)
             for n in pipelines}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if protocol == "within":
            res = []
            for spec in datasets:
                res += cross_validate_with_sources(*loaded[spec], pipes,
                                                   [loaded[s] for s in sources], cv=cv,
                                                   seed=seed, dataset=dataset_name(spec))
        elif protocol == "loso":
            res = evaluate_loso({dataset_name(s): loaded[s] for s in datasets}, pipes,
                                calib_trials, seed=seed)
        else:
            pooled = [loaded[s] for s in sources]
            res = []
            for spec in datasets:
                res += evaluate_chronological(*loaded[spec], pipes, calib_trials, sources=pooled,
                                              dataset=dataset_name(spec), seed=seed)
    rows = []
    for r in res:
        d = r.as_dict()
        d.update(sources=[dataset_name(s) for s in sources] if protocol != "loso" else
                 [dataset_name(s) for s in datasets if dataset_name(s) != r.dataset],
                 sfreq=sfreq, n_channels=len(ch_names), band=list(config.band), tmin=config.tmin,
                 tmax=config.tmax, pad=config.pad)
        rows.append(d)
    return rows
