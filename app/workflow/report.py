"""The calibration report: an HTML :class:`mne.Report` of a cross-validation (Train page, CLI)."""
from __future__ import annotations

import datetime as _dt
import html
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neurodeck.app.workflow.features import compute_feature_maps
from neurodeck.app.workflow.training import TrainResult

logger = logging.getLogger(__name__)


def _r2_figure(r2: np.ndarray, freqs: np.ndarray, ch_names: Sequence[str], title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 9), dpi=90)
    ax = fig.add_subplot(111)
    lim = float(np.max(np.abs(r2))) or 1e-3
    im = ax.imshow(r2, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                   extent=(freqs[0] - 0.5, freqs[-1] + 0.5, len(ch_names) - 0.5, -0.5))
    ax.set_yticks(range(len(ch_names)))
    ax.set_yticklabels(ch_names, fontsize=6)
    ax.set_xlabel("frequency (Hz)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="signed R\u00b2")
    fig.tight_layout()
    return fig


def _spectra_figure(maps, channels: Sequence[str]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2), dpi=90)
    chans = [c for c in channels if c in maps.ch_names] or maps.ch_names[:3]
    for k, ch in enumerate(chans):
        ax = fig.add_subplot(1, len(chans), k + 1)
        i = maps.ch_names.index(ch)
        for lab in maps.labels:
            ax.plot(maps.freqs, maps.erds(lab)[i], label=lab)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(ch)
        ax.set_xlabel("Hz")
        if k == 0:
            ax.set_ylabel("ERD/ERS (%)")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _confusion_figure(labels: Sequence[str], cm: np.ndarray, title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3.6), dpi=90)
    ax = fig.add_subplot(111)
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=20)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def scores_html(result: TrainResult) -> str:
    rows = []
    for r in sorted(result.results, key=lambda r: -r.score):
        rows.append(f"<tr><td>{html.escape(r.pipeline)}</td><td>{r.score:.3f}</td>"
                    f"<td>{np.std(r.fold_scores):.3f}</td>"
                    f"<td>{' '.join(f'{x:.3f}' for x in r.fold_scores)}</td><td>{r.fit_time_s:.2f}</td>"
                    f"<td>{r.n_trials}</td><td>{r.n_folds}</td></tr>")
    metric = result.results[0].metric if result.results else ""
    return (f"<table class='table table-sm'><tr><th>pipeline</th><th>{metric}</th><th>std</th>"
            "<th>per fold</th><th>fit time (s, all folds)</th><th>trials</th><th>folds</th></tr>" + "".join(rows)
            + "</table>")


def write_report(result: TrainResult, path: Path, maps=None, subject: str = "") -> Path:
    """HTML calibration report (mne.Report): R² maps, ERD/ERS spectra, scores, confusion.

    The one report of ``neurodeck train --report`` and the Train page's "Export HTML report".
    ``result.trials`` must hold baselines (``load_trials(..., baseline=True)``).
    """
    import mne

    if maps is None:
        maps = compute_feature_maps(result.trials)
    report = mne.Report(title=f"neurodeck calibration report {subject}".strip(), verbose="error")
    tr = result.trials
    counts = ", ".join(f"{int(np.sum(tr.y == lab))} {lab}" for lab in tr.labels)
    report.add_html(
        f"<p>Recordings: {html.escape(', '.join(Path(s).name for s in tr.sources))}<br>"
        f"Trials: {counts}; {len(tr.ch_names)} channels at {tr.sfreq:g} Hz; window "
        f"{tr.tmin:g}-{tr.tmax:g} s after the cue; {result.cv}-fold shuffled stratified CV "
        f"(seed {result.seed}).<br>Created {_dt.datetime.now():%Y-%m-%d %H:%M}.</p>",
        title="Data", section="Summary")
    report.add_html(scores_html(result), title="Cross-validation scores", section="Summary")
    report.add_figure(_r2_figure(maps.r2("psd"), maps.freqs, maps.ch_names, "R\u00b2 map, PSD"),
                      title="R\u00b2 map (PSD)", section="Features")
    report.add_figure(_r2_figure(maps.r2("ns"), maps.ns_freqs, maps.ch_names,
                                 "R\u00b2 map, node strength (imag. coherence)"),
                      title="R\u00b2 map (connectivity node strength)", section="Features")
    report.add_figure(_spectra_figure(maps, ["C3", "Cz", "C4"]), title="ERD/ERS",
                      section="Features")
    for name, (labels, cm) in result.confusion.items():
        report.add_figure(_confusion_figure(labels, cm, name), title=f"Confusion matrix: {name}",
                          section="Scores")
    path.parent.mkdir(parents=True, exist_ok=True)
    report.save(str(path), open_browser=False, overwrite=True, verbose="error")
    return path
