"""Recordings -> cue-locked trials: the one dataset loader of the CLI, the GUI and the demo.

A *dataset* is one or more recordings of one subject and session (on the command line: paths
joined by commas). :func:`load_trials` reads them (any format :func:`acquisition.io.load_recording`
reads), keeps the EEG channels, converts to microvolts and cuts the padded windows ``[tmin - pad,
tmax]`` after each cue (see :mod:`decoders.epochs`); it also keeps each continuous recording for
pseudo-online replay and, when asked, a pre-cue baseline window per trial (ERD/ERS maps).
Trials that a signal loss interrupted (:data:`app.protocol.BAD_TRIAL` at their cue) are left out.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from neurodeck.acquisition.markers import MI_CLASSES
from neurodeck.app.errors import UserError
from neurodeck.app.events import DEFAULT_EVENTS, parse_events

logger = logging.getLogger(__name__)

#: EEGMMIDB imagery runs (4, 8, 12): T1 = left fist, T2 = right fist.
EEGMMIDB_MAPPING = parse_events(DEFAULT_EVENTS)


def default_mapping(labels: Sequence[str]) -> dict[str, str]:
    """Annotation -> class mapping guessed from the labels present in a recording.

    EEGMMIDB's ``T1``/``T2`` map to left/right hand; otherwise every motor-imagery class name of
    the marker vocabulary (:data:`acquisition.markers.MI_CLASSES`) that is present maps to itself.

    Raises
    ------
    UserError
        When fewer than two classes are found (the message lists the labels present).
    """
    present = {str(x) for x in labels}
    if {"T1", "T2"} <= present:
        return dict(EEGMMIDB_MAPPING)
    out = {c: c for c in MI_CLASSES if c in present}
    if len(out) < 2:
        raise UserError(
            f"found no two motor-imagery cue classes among the labels {sorted(present)}; expected "
            f"T1/T2 (EEGMMIDB) or two of {list(MI_CLASSES)}"
        )
    return out


def dataset_paths(spec: str | Path | Sequence[str | Path]) -> list[Path]:
    """The recordings of a dataset: ``"a.edf,b.edf"`` (the CLI's form), one path, or a sequence."""
    if isinstance(spec, str):
        return [Path(p) for p in spec.split(",") if p]
    if isinstance(spec, Path):
        return [spec]
    return [Path(p) for p in spec]


def dataset_name(spec: str | Path | Sequence[str | Path]) -> str:
    """``"S001R04+S001R08"`` for the recordings ``.../S001R04.edf,.../S001R08.edf``."""
    return "+".join(p.stem for p in dataset_paths(spec))


@dataclasses.dataclass
class Run:
    """One continuous recording of a dataset, for pseudo-online replay.

    Attributes
    ----------
    data : ndarray, shape (n_channels, n_times)
        Microvolts, the dataset's channels in order.
    onsets : ndarray of int, shape (n_cues,)
        Cue onsets in samples from the first sample of ``data``.
    labels : ndarray of str, shape (n_cues,)
        Class of each cue.
    kept : ndarray of int
        Indices of the cues whose window fits in the recording (the trials of this run).
    """

    data: np.ndarray
    onsets: np.ndarray
    labels: np.ndarray
    kept: np.ndarray


@dataclasses.dataclass
class Trials:
    """Cue-locked windows of one or more recordings, in microvolts.

    Attributes
    ----------
    X : ndarray, shape (n_trials, n_channels, n_pad + n_times)
        Raw (unfiltered unless loaded with ``zero_phase_band``) padded windows ``[tmin - pad,
        tmax]`` after each cue.
    y : ndarray of str, shape (n_trials,)
    base : ndarray, shape (n_trials, n_channels, n_times), or None
        Pre-cue baseline windows ``[-(tmax - tmin), 0]`` (same length as the task part); None
        unless loaded with ``baseline=True``.
    ch_names : list of str
        As in the file (``C3..``).
    sfreq : float
    mapping : dict
        Annotation -> class used.
    tmin, tmax, pad : float
    sources : list of str
    runs : list of Run
        The continuous recordings, in the order of ``sources``.
    """

    X: np.ndarray
    y: np.ndarray
    base: np.ndarray | None
    ch_names: list[str]
    sfreq: float
    mapping: dict[str, str]
    tmin: float
    tmax: float
    pad: float
    sources: list[str]
    runs: list[Run] = dataclasses.field(default_factory=list, repr=False)

    @property
    def task(self) -> np.ndarray:
        """The task part of each window (padding dropped), shape (n_trials, n_channels, n_times)."""
        from neurodeck.decoders.epochs import n_samples

        return self.X[..., n_samples(self.pad, self.sfreq):]

    @property
    def labels(self) -> list[str]:
        return sorted(set(self.y.tolist()))

    @property
    def name(self) -> str:
        """The dataset's name (:func:`dataset_name` of its recordings)."""
        return dataset_name(self.sources)


def load_trials(paths: str | Path | Sequence[str | Path], mapping: Mapping[str, str] | None = None,
                *, tmin: float = 0.5, tmax: float = 2.5, pad: float = 1.0,
                picks: Sequence[str] | None = None,
                zero_phase_band: tuple[float, float] | None = None,
                baseline: bool = False) -> Trials:
    """Load recordings and cut cue-locked padded windows (microvolts), optionally with baselines.

    Parameters
    ----------
    paths : str, path or sequence of path
        Recordings of one dataset; a string may join several with commas. Same rate in all;
        the channels of the first (after ``picks``) are looked up by name in the others.
    mapping : mapping or None
        Annotation -> class; None: :func:`default_mapping` of the first file.
    tmin, tmax : float
        Task window after the cue, seconds (``tmax`` included).
    pad : float
        Filter padding before ``tmin`` (see :mod:`decoders.epochs`).
    picks : sequence of str or None
        Channels to keep, in this order (None: every EEG channel).
    zero_phase_band : (float, float) or None
        Band-pass each whole recording zero-phase first (MNE's IIR: 4th-order Butterworth
        forward-backward, as MOABB does; ``pad`` should then be 0). Reproduces reference numbers
        but is not what the online decoder can do.
    baseline : bool
        Also cut the pre-cue baselines (``Trials.base``); trials without a full baseline are
        dropped.

    Returns
    -------
    trials : Trials

    Raises
    ------
    UserError
        A recording is missing, rates differ, or fewer than two classes are found.
    """
    from neurodeck.acquisition.io import get_events, load_recording
    from neurodeck.app.protocol import drop_interrupted
    from neurodeck.decoders.epochs import extract_epochs, pick_indices

    paths = dataset_paths(paths)
    if not paths:
        raise UserError("no recording given; expected at least one file")
    Xs, ys, bases, runs = [], [], [], []
    ch_names: list[str] | None = None
    sfreq: float | None = None
    for path in paths:
        if not path.exists():
            raise UserError(f"recording {str(path)!r} not found")
        raw = load_recording(path)
        raw.pick("eeg")
        if zero_phase_band is not None:
            raw.filter(zero_phase_band[0], zero_phase_band[1], method="iir", verbose="error")
        if mapping is None:
            mapping = default_mapping(raw.annotations.description)
        if sfreq is None:
            sfreq = float(raw.info["sfreq"])
            ch_names = [raw.ch_names[i] for i in pick_indices(raw.ch_names, picks)]
        elif float(raw.info["sfreq"]) != sfreq:
            raise UserError(f"{path}: rate {raw.info['sfreq']} Hz differs from {sfreq} Hz of the "
                            "first recording of this dataset")
        idx = pick_indices(raw.ch_names, ch_names)
        data = raw.get_data()[idx] * 1e6  # volts -> microvolts (the LSL convention)
        events, event_id = get_events(raw, mapping)
        events = drop_interrupted(raw, events)  # trials cut by a signal loss (repeated)
        names = {code: name for name, code in event_id.items()}
        onsets = events[:, 0] - raw.first_samp
        labels = np.array([names[c] for c in events[:, 2]])
        X, kept = extract_epochs(data, sfreq, onsets, tmin, tmax, pad)
        if baseline:
            B, kept_b = extract_epochs(data, sfreq, onsets, -(tmax - tmin), 0.0, 0.0)
            both = np.intersect1d(kept, kept_b)
            X = X[np.searchsorted(kept, both)]
            bases.append(B[np.searchsorted(kept_b, both)])
            kept = both
        Xs.append(X)
        ys.append(labels[kept])
        runs.append(Run(data, onsets, labels, kept))
    y = np.concatenate(ys)
    if not len(y):
        raise UserError(
            f"{','.join(map(str, paths))}: none of the {sum(len(r.onsets) for r in runs)} trials "
            f"fits in its recording with --tmin {tmin:g} --tmax {tmax:g} s and {pad:g} s of padding "
            "before; expected a window that ends inside the recordings (a smaller --tmax / --pad)")
    if len(set(y.tolist())) < 2:
        raise UserError(f"the recordings hold trials of one class only ({sorted(set(y.tolist()))}); "
                        "need two")
    return Trials(np.concatenate(Xs), y, np.concatenate(bases) if baseline else None, ch_names,
                  float(sfreq), dict(mapping), float(tmin), float(tmax), float(pad),
                  [str(p) for p in paths], runs)
