"""Pseudo-online evaluation of a saved model bundle on a recording (Replay and Online pages)."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def replay_threads() -> int:
    """Threads for a pseudo-online replay that runs alone: one per core this process may use,
    up to 4 (:meth:`decoders.online.OnlineDecoder.replay`; the outputs do not depend on it)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cores or 1))


def evaluate_recording(model_dir: str | Path, path: str | Path, *, step_s: float = 0.0625,
                       trial_s: float = 4.0,
                       progress: Callable[[int, int, str], None] | None = None,
                       threads: int | None = None) -> dict[str, Any]:
    """Pseudo-online evaluation of a bundle on a recording.

    The saved decoder slides over the whole recording window by window
    (:func:`decoders.evaluation.pseudo_online`, the same decoder the live engine uses).
    ``progress(done, total, text)`` is called while decoding; it may raise to cancel.
    ``threads``: batches of windows computed at the same time (None: one per core this
    process may use, up to 4; the outputs do not depend on it).

    Returns
    -------
    out : dict
        ``result`` (:class:`decoders.evaluation.PseudoOnlineResult`), ``summary`` (its dict),
        ``onsets`` (samples), ``labels`` (class per cue), ``sfreq``, ``model`` (pipeline name),
        ``decoder`` (the loaded :class:`decoders.online.OnlineDecoder`).
    """
    from neurodeck.acquisition.io import get_events, load_recording
    from neurodeck.app.errors import UserError
    from neurodeck.decoders.epochs import n_samples, pick_indices
    from neurodeck.decoders.evaluation import pseudo_online
    from neurodeck.decoders.online import OnlineDecoder

    dec = OnlineDecoder(Path(model_dir))
    meta = dec.bundle.meta
    if progress:
        progress(0, 1, "loading the recording")
    raw = load_recording(path)
    sfreq = float(raw.info["sfreq"])
    if abs(sfreq - dec.sfreq) > 1e-6 * sfreq:
        raise UserError(f"{Path(path).name} is sampled at {sfreq:g} Hz; the model expects "
                         f"{dec.sfreq:g} Hz")
    idx = pick_indices(raw.ch_names, dec.ch_names)
    scale = 1e6 if meta.get("unit", "microvolts") == "microvolts" else 1.0
    data = raw.get_data(picks=idx.tolist()) * scale
    mapping = (meta.get("config") or {}).get("events") or {c: c for c in dec.labels}
    events, event_id = get_events(raw, mapping)
    names = {code: name for name, code in event_id.items()}
    onsets = events[:, 0] - raw.first_samp
    labels = [names[c] for c in events[:, 2]]
    window = dec.window_samples
    step = max(1, n_samples(step_s, sfreq))
    total = max(1, (data.shape[1] - window) // step + 1)

    def report(done: int) -> None:
        if progress:
            progress(done, total, f"decoding window {done:,} of {total:,}")

    # the decoder itself (not a fitted pipeline): pseudo_online then takes the filter padding
    # from the bundle, exactly as the live engine does
    res = pseudo_online(dec, data, sfreq, (onsets, labels), step_s=step_s, trial_s=trial_s,
                        batch=256, progress=report,
                        threads=replay_threads() if threads is None else threads)
    return {"result": res, "summary": res.summary(), "onsets": onsets, "labels": labels,
            "sfreq": sfreq, "model": meta.get("pipeline", Path(model_dir).name),
            "file": Path(path).name, "decoder": dec}
