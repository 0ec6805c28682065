"""Continuous decoding workflow: recordings + a target -> features per hop -> train / evaluate.

Qt-free; ``neurodeck train``/``evaluate`` with ``--target`` (and the GUI, later) call these.

Data
----
A dataset is either

- a **recording** (FIF from ``neurodeck record``, or any format :func:`load_recording` reads)
  plus a **target**: the name of another stream recorded with it (``neurodeck record -s EEG -s
  EEG-truth`` saves it as ``<stem>.<name>.npz`` with LSL timestamps, listed in the sidecar; a
  glob such as ``*-truth`` matches one recorded stream, for recordings of differently named
  sources), or a
  file with LSL timestamps: ``.npz`` like the recorder's (``data``, ``timestamps``, ``labels``),
  ``.npy`` of shape (n, 1 + n_targets) whose first column is the timestamp, or ``.csv`` with a
  header whose first column is the timestamp. The target is linearly interpolated at the timestamp
  of each window's last sample (the sample the decision is stamped with online);
- a **feature table**: ``.csv`` or ``.npy`` of shape (n_hops, n_features), with a target file of
  the same number of rows (row-aligned; e.g. the Flint reaching data: ``x.csv`` and ``z.csv``).

Windows end on multiples of the hop (as the online engine and :func:`sliding_windows`); a window
touching a ``BAD*`` annotation or holding NaN is invalid: it is not trained on and, when filtered,
only predicts.

Metrics (:func:`neurodeck.decoders.dkf.velocity_metrics`): velocity correlation (mean over
targets), normalised RMSE (RMSE / std of the true target, mean over targets) and mean angle error
(2-D targets, radians). Rows like the classifiers' evaluation: ``metric`` ("nrmse"), ``score``,
plus the others.
"""
from __future__ import annotations

import fnmatch
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.app.errors import UserError

logger = logging.getLogger(__name__)

__all__ = [
    "ContinuousData",
    "parse_bands",
    "parse_windows",
    "check_pipelines",
    "target_streams",
    "load_continuous",
    "load_many",
    "lag_candidates",
    "window_span",
    "choose_lags",
    "choose_features",
    "fit_filter",
    "train_continuous",
    "evaluate_continuous",
    "compare_recording",
    "train_recording",
]

TABLE_SUFFIXES = (".csv", ".npy")
DEFAULT_BANDS = ((8.0, 13.0), (18.0, 26.0))


@dataclass
class ContinuousData:
    """Feature rows and aligned targets of one dataset.

    Attributes
    ----------
    X : ndarray, shape (n_hops, n_features)
    Z : ndarray, shape (n_hops, n_targets)
    valid : ndarray of bool, shape (n_hops,)
    targets : list of str
    stage : FeatureStage
    hop_s : float
    name : str
    """

    X: np.ndarray
    Z: np.ndarray
    valid: np.ndarray
    targets: list[str]
    stage: Any
    hop_s: float
    name: str
    info: dict[str, Any] = field(default_factory=dict)
    #: the same dataset's features with the other candidate windows (``--window auto``)
    alternatives: list[ContinuousData] = field(default_factory=list)

    def variants(self) -> list[ContinuousData]:
        """This dataset's features for each candidate window, this one first."""
        return [self, *self.alternatives]


def parse_bands(text: str | Sequence[Sequence[float]] | None) -> tuple[tuple[float, float], ...]:
    """``"8-13,18-26"`` -> ((8, 13), (18, 26)); ``None``: mu and beta."""
    if text is None:
        return DEFAULT_BANDS
    if not isinstance(text, str):
        return tuple((float(lo), float(hi)) for lo, hi in text)
    out = []
    for part in text.split(","):
        try:
            lo, hi = (float(v) for v in part.strip().split("-"))
        except ValueError:
            raise UserError(f"--bands {text!r} invalid; expected LOW-HIGH[,LOW-HIGH...] in Hz, "
                            "e.g. 8-13,18-26") from None
        if not 0 < lo < hi:
            raise UserError(f"band {part!r} invalid; expected 0 < LOW < HIGH")
        out.append((lo, hi))
    return tuple(out)


#: Band-power windows (s) that ``--window auto`` chooses among.
AUTO_WINDOWS = (0.25, 0.5, 1.0)


def parse_windows(text: str | float | Sequence[float] | None) -> tuple[float, ...]:
    """``"auto"`` -> :data:`AUTO_WINDOWS`; ``"0.5"`` or ``0.5`` -> (0.5,); ``"0.25,0.5"`` -> both.

    Raises
    ------
    UserError
        Not ``auto`` or positive seconds.
    """
    if text is None or (isinstance(text, str) and text.strip() == "auto"):
        return AUTO_WINDOWS
    try:
        vals = tuple(float(v) for v in (text.split(",") if isinstance(text, str) else
                                         (text if isinstance(text, Sequence) else [text])))
    except ValueError:
        vals = ()
    if not vals or not all(np.isfinite(v) and v > 0 for v in vals):
        raise UserError(f"--window {text!r} invalid; expected 'auto' or seconds > 0, e.g. 0.5 or "
                        "0.25,0.5,1")
    return tuple(dict.fromkeys(vals))


def check_pipelines(names: str | Sequence[str]) -> list[str]:
    """Continuous pipeline names (``"dkf,kf"`` or a list), each checked against the known ones.

    Raises
    ------
    UserError
        An unknown name (the message lists the known ones).
    """
    from neurodeck.decoders.continuous import PIPELINES

    if isinstance(names, str):
        names = names.split(",")
    out = [str(n).strip() for n in names if str(n).strip()]
    unknown = [n for n in out if n not in PIPELINES]
    if unknown:
        raise UserError(f"unknown continuous pipelines {unknown}; expected some of "
                        f"{sorted(PIPELINES)}")
    return out


def _read_table(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """A numeric table from ``.npy`` or ``.csv`` (optional header row) and its column names."""
    if not path.is_file():
        raise UserError(f"file {str(path)!r} not found")
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
            header = None
        else:
            first = path.read_text(encoding="utf-8").split("\n", 1)[0]
            cells = [c.strip() for c in first.split(",")]
            try:
                [float(c) for c in cells]
                header = None
            except ValueError:
                header = cells
            arr = np.loadtxt(path, delimiter=",", skiprows=1 if header else 0, ndmin=2)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read a numeric table: {exc}") from exc
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise UserError(f"{path}: expected a table of shape (n_rows, n_columns), got {arr.shape}")
    return arr, header


def target_streams(recording: str | Path) -> list[str]:
    """Names of the numeric streams recorded with ``recording`` (candidate ``--target`` values).

    Read from the recording's sidecar (``neurodeck record``); empty when it has none.
    """
    from neurodeck.acquisition.finalize import sidecar_path

    try:
        meta = json.loads(sidecar_path(Path(recording)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(s.get("name")) for s in meta.get("streams", [])
            if s.get("role") == "extra" and s.get("file")]


def _timed_target(spec: str, recording: Path) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """(timestamps (n,), values (n, k), names, unit) of a target stream or file."""
    from neurodeck.acquisition.finalize import sidecar_path

    path = Path(spec)
    if not path.is_file():
        side = sidecar_path(recording)
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UserError(f"--target {spec!r} is neither a file nor a stream of {recording} "
                            f"(no readable sidecar {side.name})") from None
        names = [s.get("name") for s in meta.get("streams", [])]
        extra = [s for s in meta.get("streams", []) if s.get("role") == "extra"]
        entry = next((s for s in extra if s.get("name") == spec), None)
        if entry is None:  # a pattern, e.g. '*-truth' for recordings of differently named sims
            hits = [s for s in extra if fnmatch.fnmatchcase(str(s.get("name")), spec)]
            entry = hits[0] if len(hits) == 1 else None
        if entry is None or not entry.get("file") or entry.get("role") != "extra":
            raise UserError(f"--target {spec!r} is not a recorded numeric stream of {recording.name}; "
                            f"its streams: {names}")
        path = recording.with_name(entry["file"])
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            data, ts = np.asarray(z["data"], float), np.asarray(z["timestamps"], float).ravel()
            labels = [str(v) for v in z["labels"]] if "labels" in z else None
            units = [str(v) for v in z["units"]] if "units" in z else []
        if data.shape[0] != ts.size and data.ndim == 2 and data.shape[1] == ts.size:
            data = data.T
    else:
        table, header = _read_table(path)
        if table.shape[1] < 2:
            raise UserError(f"{path}: expected a timestamp column and at least one target column")
        ts, data = table[:, 0], table[:, 1:]
        labels, units = (header[1:] if header else None), []
    data = data.reshape(len(ts), -1)
    if ts.size < 2 or np.any(np.diff(ts) < 0):
        raise UserError(f"{path}: target timestamps must be increasing ({ts.size} samples)")
    names = labels or [f"z{j}" for j in range(data.shape[1])]
    unit = units[0] if units and len(set(units)) == 1 else ""
    return ts, data, names, unit


def _bad_mask(raw: Any) -> np.ndarray:
    bad = np.zeros(raw.n_times, dtype=bool)
    sf = raw.info["sfreq"]
    for ann in raw.annotations:
        if str(ann["description"]).upper().startswith("BAD"):
            a = int(round((ann["onset"] - raw.first_time) * sf))
            b = int(round((ann["onset"] + ann["duration"] - raw.first_time) * sf)) + 1
            bad[max(a, 0):max(b, 0)] = True
    return bad


def load_continuous(
    spec: str,
    target: str,
    *,
    picks: Sequence[str] | None = None,
    bands: Any = None,
    window_s: float = 1.0,
    pad_s: float = 1.0,
    hop_s: float = 0.0625,
    classifier: str | Path | None = None,
) -> ContinuousData:
    """Features per hop and the aligned target of one dataset (see the module docstring).

    Parameters
    ----------
    spec : str
        A recording, or a feature table (``.csv``/``.npy``).
    target : str
        Stream name or file (see the module docstring).
    picks : sequence of str or None
        Band-power channels; default: the motor channels present.
    bands : str or sequence of (low, high) or None
        Band-power bands; default mu 8-13 Hz and beta 18-26 Hz.
    window_s, pad_s, hop_s : float
        Window, filter padding and hop, seconds.
    classifier : path or None
        Classifier bundle whose outputs are the features (instead of band power).

    Returns
    -------
    data : ContinuousData
    """
    from neurodeck.decoders.continuous import FeatureStage, band_power
    from neurodeck.decoders.errors import DecoderError

    path = Path(spec)
    if path.suffix.lower() in TABLE_SUFFIXES:
        X, header = _read_table(path)
        Z, zheader = _read_table(Path(target))
        if len(Z) != len(X):
            raise UserError(f"target {target!r} has {len(Z)} rows but the feature table {spec!r} "
                            f"has {len(X)}; expected one target row per feature row")
        names = header or [f"x{j}" for j in range(X.shape[1])]
        stage = FeatureStage("table", names=tuple(names))
        tnames = zheader or [f"z{j}" for j in range(Z.shape[1])]
        valid = np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(Z), axis=1)
        return ContinuousData(X, Z, valid, tnames, stage, float(hop_s), path.name)

    from neurodeck.acquisition.errors import AcquisitionError
    from neurodeck.acquisition.io import load_recording
    from neurodeck.decoders.epochs import n_samples, pick_indices
    from neurodeck.decoders.evaluation import sliding_windows
    from neurodeck.decoders.online import OnlineDecoder
    from neurodeck.decoders.pipelines import MOTOR_CHANNELS

    try:
        raw = load_recording(path)
    except (AcquisitionError, OSError, ValueError) as exc:
        raise UserError(f"{spec}: cannot load the recording: {exc}") from exc
    sfreq = float(raw.info["sfreq"])
    try:
        first_ts = float(json.loads(raw.info.get("description") or "{}")
                         ["neurodeck_first_lsl_timestamp"])
    except (ValueError, KeyError, TypeError):
        first_ts = None
    ts_t, values, tnames, tunit = _timed_target(target, path)
    if first_ts is None:
        raise UserError(f"{spec}: no LSL timestamp of the first sample (not recorded by neurodeck "
                        "record), so a timed target cannot be aligned")
    hop = max(1, n_samples(hop_s, sfreq))
    try:
        if classifier is not None:
            clf = OnlineDecoder(classifier)
            rows = clf.check_stream(raw.ch_names, sfreq)
            ch_names = clf.ch_names
            W = clf.window_samples
            stage = FeatureStage("classifier", tuple(ch_names), sfreq, float(clf.bundle.meta.get(
                "window_s", 1.0)), float(clf.bundle.meta.get("pad_s", 0.0)),
                names=tuple(f"p({c})" for c in clf.labels))
        else:
            if picks is None:
                have = {c.upper() for c in raw.ch_names}
                picks = [c for c in MOTOR_CHANNELS if c.upper() in have]
                if not picks:
                    raise UserError(f"{spec}: none of the motor channels {MOTOR_CHANNELS[:6]}... "
                                    "found; pass --picks")
            rows = pick_indices(raw.ch_names, list(picks))
            ch_names = [raw.ch_names[i] for i in rows]
            stage = FeatureStage.bandpower(ch_names, sfreq, parse_bands(bands), window_s, pad_s)
            W = stage.window_samples
    except DecoderError as exc:
        raise UserError(f"{spec}: {exc}") from exc
    data = raw.get_data(picks=list(rows)) * 1e6  # volts -> microvolts (the bundle's unit)
    bad = _bad_mask(raw)
    Xs, ends_all = [], []
    for ends, windows in sliding_windows(data, W, hop):
        Xs.append(clf.decide_batch(windows) if classifier is not None else band_power(windows, stage))
        ends_all.append(ends)
    if not Xs:
        raise UserError(f"{spec}: shorter than one window ({W} samples)")
    X, ends = np.concatenate(Xs), np.concatenate(ends_all)
    t_last = first_ts + (ends - 1) / sfreq
    inside = (t_last >= ts_t[0]) & (t_last <= ts_t[-1])
    Z = np.column_stack([np.interp(t_last, ts_t, values[:, j]) for j in range(values.shape[1])])
    csum = np.concatenate([[0], np.cumsum(bad)])
    clean = (csum[ends] - csum[ends - W]) == 0
    valid = inside & clean & np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(Z), axis=1)
    if valid.sum() < 20:
        raise UserError(f"{spec}: only {int(valid.sum())} usable windows with target {target!r} "
                        "(does the target cover the recording?)")
    info = {"sfreq": sfreq, "target_unit": tunit, "n_windows": int(len(X)),
            "n_valid": int(valid.sum())}
    return ContinuousData(X, Z, valid, list(tnames), stage, hop / sfreq, path.name, info)


def load_many(specs: Sequence[str | Path], target: str, **kwargs: Any) -> list[ContinuousData]:
    """:func:`load_continuous` of each dataset with the same target and feature options.

    ``window_s`` may be several windows (or ``"auto"``, :func:`parse_windows`): each dataset is
    then loaded once per window, the first as the returned data and the others in its
    ``alternatives`` (:func:`choose_features` picks one on the training rows).
    """
    windows = parse_windows(kwargs.pop("window_s", 1.0))
    if any(Path(str(s)).suffix.lower() in TABLE_SUFFIXES for s in specs):
        windows = windows[:1]  # precomputed features: no window to choose
    out = []
    for s in specs:
        first, *rest = [load_continuous(str(s), target, window_s=w, **kwargs) for w in windows]
        first.alternatives = rest
        out.append(first)
    return out


def fit_filter(pipeline: str, X: np.ndarray, Z: np.ndarray, seed: int = 42) -> Any:
    """Fit the filter of a continuous pipeline on consecutive rows."""
    from neurodeck.decoders.continuous import make_filter
    from neurodeck.decoders.errors import DecoderError

    overrides = {} if pipeline == "kf" else {"random_state": seed}
    try:
        return make_filter(pipeline, **overrides).fit(X, Z)
    except DecoderError as exc:
        raise UserError(f"cannot fit {pipeline}: {exc}") from exc


def lag_candidates(span: int = 4) -> tuple[tuple[int, ...], ...]:
    """Feature histories ``--lags auto`` chooses among: none, the 3 previous rows, and one or two
    rows ``span`` hops back (a window length: rows that do not overlap the current one, so the
    regression can see the trend).

    Parameters
    ----------
    span : int
        Hops between the stacked rows of the spaced candidates (>= 1).
    """
    span = max(1, int(span))
    cands = [(0,), (0, 1, 2, 3), (0, span), (0, span, 2 * span)]
    return tuple(dict.fromkeys(cands))


def window_span(window_s: float, hop_s: float) -> int:
    """Hops per feature window (at least 4): the spacing of the spaced lag candidates."""
    return max(4, int(round(float(window_s) / float(hop_s)))) if hop_s > 0 else 4


def choose_lags(spec: str | Sequence[int] | None,
                blocks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                span: int = 4, scores: dict[str, float] | None = None) -> tuple[int, ...]:
    """The feature history (hops) of the filter's input: given, or ``"auto"``.

    ``"auto"`` (or None): among :func:`lag_candidates` (``span`` hops apart), the one whose
    lag-stacked ridge regression has the lowest blocked cross-validated error summed over the
    *training* blocks (:func:`neurodeck.decoders.continuous.select_lags`); ``"0,1,2"`` or a
    sequence: those lags.

    Parameters
    ----------
    spec : str, sequence of int or None
    blocks : sequence of (X, Z, valid)
        Consecutive training rows of each dataset.
    span : int
        See :func:`lag_candidates`.
    scores : dict or None
        Filled with the summed CV error of each candidate (``"0,8"`` -> nMSE) when given.
    """
    from neurodeck.decoders.continuous import select_lags

    if spec is None or (isinstance(spec, str) and spec.strip() == "auto"):
        total: dict[str, float] = {}
        for X, Z, valid in blocks:
            for k, v in select_lags(X, Z, valid, lag_candidates(span))[1].items():
                total[k] = total.get(k, 0.0) + v
        if scores is not None:
            scores.update(total)
        return tuple(int(v) for v in min(total, key=total.get).split(","))
    try:
        lags = tuple(int(v) for v in (spec.split(",") if isinstance(spec, str) else spec))
    except ValueError:
        lags = ()
    if not lags or lags[0] != 0 or any(b <= a for a, b in zip(lags[:-1], lags[1:], strict=False)):
        raise UserError(f"--lags {spec!r} invalid; expected 'auto' or increasing hop counts "
                        "from 0, e.g. 0,1,2,3")
    return lags


def choose_features(datas: Sequence[ContinuousData], lags: str | Sequence[int] | None,
                    part: Any = None) -> tuple[int, tuple[int, ...], dict[str, float]]:
    """The window (index into :meth:`ContinuousData.variants`) and feature history of lowest
    blocked cross-validated ridge error on the training rows.

    For each candidate window the lags are chosen as by :func:`choose_lags`; the windows are then
    compared by the CV error of their chosen lags (each target's MSE over its variance), so a
    shorter window (less lag, more noise) wins only where it predicts the state better.

    Parameters
    ----------
    datas : sequence of ContinuousData
        Training datasets, each with the same candidate windows in the same order.
    lags : str, sequence of int or None
        As :func:`choose_lags`.
    part : callable or None
        ``part(data) -> slice`` of its training rows (default: all).

    Returns
    -------
    index : int
    lags : tuple of int
    scores : dict
        Window (s, as text) -> CV nMSE of its chosen lags (empty with one window).
    """
    from neurodeck.decoders.continuous import select_lags

    n_var = len(datas[0].variants())
    if any(len(d.variants()) != n_var for d in datas):
        raise UserError("every dataset needs the same candidate windows")
    best: tuple[float, int, tuple[int, ...]] | None = None
    info: dict[str, float] = {}
    for k in range(n_var):
        ds = [d.variants()[k] for d in datas]
        blocks = []
        for d in ds:
            sl = part(d) if part is not None else slice(None)
            blocks.append((d.X[sl], d.Z[sl], d.valid[sl]))
        scores: dict[str, float] = {}
        lag = choose_lags(lags, blocks, _span(ds[0]), scores)
        if n_var == 1:
            return 0, lag, {}
        key = ",".join(map(str, lag))
        if key not in scores:  # given lags: score them to compare the windows
            scores[key] = sum(select_lags(X, Z, v, [lag])[1][key] for X, Z, v in blocks)
        info[f"{ds[0].stage.window_s:g}"] = scores[key]
        if best is None or scores[key] < best[0]:
            best = (scores[key], k, lag)
    assert best is not None
    return best[1], best[2], info


def _span(d: ContinuousData) -> int:
    return 4 if d.stage.kind == "table" else window_span(d.stage.window_s, d.hop_s)


def _concat(datas: Sequence[ContinuousData],
            lags: Sequence[int] = (0,)) -> tuple[np.ndarray, np.ndarray]:
    from neurodeck.decoders.continuous import stack_lags

    first = datas[0]
    for d in datas[1:]:
        if d.stage.names != first.stage.names or d.targets != first.targets:
            raise UserError(f"{d.name}: features {list(d.stage.names)[:3]}... / targets "
                            f"{d.targets} differ from {first.name}'s")
    Xs, Zs = [], []
    for d in datas:
        XL, ok = stack_lags(d.X, lags, d.valid)
        Xs.append(XL[ok])
        Zs.append(d.Z[ok])
    return np.concatenate(Xs), np.concatenate(Zs)


def train_continuous(
    datas: Sequence[ContinuousData],
    pipeline: str,
    out: str | Path,
    *,
    seed: int = 42,
    classifier: str | Path | None = None,
    lags: str | Sequence[int] | None = "auto",
) -> dict[str, Any]:
    """Fit ``pipeline`` on all valid rows of ``datas`` and save a continuous bundle.

    ``lags``: the feature history of the filter's input (:func:`choose_lags`), kept in the
    bundle's feature stage.

    Returns
    -------
    summary : dict
        ``path``, ``backend``, ``n_rows``, training metrics.
    """
    import dataclasses
    import time

    from neurodeck.decoders.continuous import save_continuous_bundle
    from neurodeck.decoders.dkf import velocity_metrics
    from neurodeck.decoders.errors import DecoderError

    k, lags, window_cv = choose_features(datas, lags)
    datas = [d.variants()[k] for d in datas]
    X, Z = _concat(datas, lags)
    t0 = time.perf_counter()
    filt = fit_filter(pipeline, X, Z, seed)
    fit_s = time.perf_counter() - t0
    train = velocity_metrics(Z, filt.predict(X))
    scores = {"n_rows": int(len(X)), "datasets": [d.name for d in datas], "fit_time_s": fit_s,
              "train_corr": train["corr_mean"], "train_nrmse": train["nrmse_mean"], "seed": seed,
              "lags": list(lags), "window_s": datas[0].stage.window_s, "window_cv": window_cv}
    d0 = datas[0]
    try:
        path = save_continuous_bundle(
            filt, out, pipeline=pipeline, stage=dataclasses.replace(d0.stage, lags=lags),
            targets=d0.targets, hop_s=d0.hop_s,
            target_unit=d0.info.get("target_unit", ""), classifier=classifier,
            X_timing=X[: min(len(X), 1000)], scores=scores)
    except DecoderError as exc:
        raise UserError(str(exc)) from exc
    meta = json.loads((Path(path) / "model.json").read_text(encoding="utf-8"))
    return {"path": str(path), "backend": meta["backend"], "step_timing_us":
            meta.get("step_timing_us"), **scores}


def _metrics_row(pipeline: str, dataset: str, Z: np.ndarray, Zhat: np.ndarray,
                 n_train: int, lags: Sequence[int] = (0,),
                 stage: Any = None) -> dict[str, Any]:
    from neurodeck.decoders.dkf import velocity_metrics

    m = velocity_metrics(Z, Zhat)
    return {"dataset": dataset, "pipeline": pipeline, "metric": "nrmse",
            "score": m["nrmse_mean"], "nrmse": m["nrmse_mean"], "corr": m["corr_mean"],
            "angle_error": m.get("angle_error"), "rmse": m["rmse"],
            "corr_per_target": m["corr"], "nrmse_per_target": m["nrmse"],
            "n_train": int(n_train), "n_test": int(len(Z)), "lags": [int(v) for v in lags],
            "window_s": None if stage is None or stage.kind == "table" else stage.window_s}


def evaluate_continuous(
    datas: Sequence[ContinuousData],
    pipelines: Sequence[str],
    *,
    split: float = 0.7,
    test_hops: int | None = None,
    test: Sequence[ContinuousData] | None = None,
    seed: int = 42,
    lags: str | Sequence[int] | None = "auto",
) -> list[dict[str, Any]]:
    """Chronological evaluation of continuous pipelines.

    Without ``test``, each dataset is split in time: the first ``split`` (a fraction < 1, or a
    number of hops >= 1) trains, the next ``test_hops`` hops (default: the rest) test. With
    ``test``, all of ``datas`` trains and each ``test`` dataset is filtered whole. The test
    sequence is filtered online-style from the stationary prior; invalid rows only predict and
    are not scored. ``lags`` (the feature history, :func:`choose_lags`) is chosen on the training
    rows only.

    Returns
    -------
    rows : list of dict
        One per dataset and pipeline: ``metric`` ("nrmse"), ``score`` and ``nrmse``, ``corr``,
        ``angle_error``, ``rmse``, per-target lists, ``n_train``, ``n_test``.
    """
    from neurodeck.decoders.continuous import stack_lags

    rows = []
    if test:
        k, lag, _ = choose_features(datas, lags)
        datas = [d.variants()[k] for d in datas]
        test = [d.variants()[k] for d in test]
        X, Z = _concat(datas, lag)
        for p in pipelines:
            filt = fit_filter(p, X, Z, seed)
            for d in test:
                _concat([datas[0], d])  # same features and targets
                XL, ok = stack_lags(d.X, lag, d.valid)
                Zhat = _filter_sequence(filt, XL, ok)
                rows.append(_metrics_row(p, d.name, d.Z[ok], Zhat[ok], len(X), lag, d.stage))
        return rows

    def n_train(d: ContinuousData) -> int:
        return int(round(split * len(d.X))) if split < 1 else int(split)

    def stop(d: ContinuousData) -> int:
        n, n_tr = len(d.X), n_train(d)
        end = n if test_hops is None else min(n, n_tr + int(test_hops))
        if not 10 <= n_tr < end - 10:
            raise UserError(f"{d.name}: split {split} gives {n_tr} training and {end - n_tr} "
                            f"test hops of {n}; expected at least 10 of each")
        return end

    for d0 in datas:
        for v in d0.variants():
            stop(v)
        k, lag, _ = choose_features([d0], lags, part=lambda d: slice(0, n_train(d)))
        d = d0.variants()[k]
        n_tr, end = n_train(d), stop(d)
        tr, te = slice(0, n_tr), slice(n_tr, end)
        XL, ok = stack_lags(d.X[:end], lag, d.valid[:end])  # causal: test rows see the past
        ok_tr, ok_te = ok[tr], ok[te]
        for p in pipelines:
            filt = fit_filter(p, XL[tr][ok_tr], d.Z[tr][ok_tr], seed)
            Zhat = _filter_sequence(filt, XL[te], ok_te)
            rows.append(_metrics_row(p, d.name, d.Z[te][ok_te], Zhat[ok_te], int(ok_tr.sum()),
                                     lag, d.stage))
    return rows


def _filter_sequence(filt: Any, X: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Filter rows from the stationary prior; invalid rows only predict (as online)."""
    filt.reset()
    out = np.empty((len(X), filt.n_states_))
    for t, (x, ok) in enumerate(zip(X, valid, strict=True)):
        out[t] = filt.step(x) if ok else filt.predict_step()
    filt.reset()
    return out


def compare_recording(
    recording: str | Path,
    target: str,
    pipelines: Sequence[str],
    *,
    split: float = 0.7,
    seed: int = 42,
    progress: Any = None,
    **features: Any,
) -> list[dict[str, Any]]:
    """Chronological comparison of continuous pipelines on one recording (the Train page's).

    Parameters
    ----------
    recording : path
    target : str
        A stream recorded with it (:func:`target_streams`) or a target file.
    pipelines : sequence of str
    split : float
        Fraction (< 1) or number of hops that trains; the rest tests.
    seed : int
    progress : callable or None
        ``progress(done, total, text)`` after loading and after each pipeline.
    **features
        Feature options of :func:`load_continuous` (``picks``, ``bands``, ``window_s``...).

    Returns
    -------
    rows : list of dict
        :func:`evaluate_continuous` rows, one per pipeline.
    """
    names = check_pipelines(pipelines)
    report = progress or (lambda done, total, text="": None)
    report(0, len(names) + 1, f"features of {Path(recording).name}")
    data = load_many([str(recording)], target, **features)[0]
    rows = []
    for k, name in enumerate(names):
        report(k + 1, len(names) + 1, f"fitting and filtering {name}")
        rows += evaluate_continuous([data], [name], split=split, seed=seed)
    report(len(names) + 1, len(names) + 1, "done")
    return rows


def train_recording(
    recording: str | Path,
    target: str,
    pipeline: str,
    out: str | Path,
    *,
    seed: int = 42,
    **features: Any,
) -> dict[str, Any]:
    """Fit ``pipeline`` on a whole recording and save its continuous bundle (:func:`train_continuous`)."""
    check_pipelines([pipeline])
    data = load_many([str(recording)], target, **features)[0]
    return train_continuous([data], pipeline, out, seed=seed,
                            classifier=features.get("classifier"))
