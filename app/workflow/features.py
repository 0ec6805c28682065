"""Spectral feature maps of trials: class-mean spectra, ERD/ERS, signed R² maps, node strength.

What the Features page shows and the calibration report draws (Qt-free).
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from neurodeck.app.workflow.datasets import Trials

logger = logging.getLogger(__name__)

_CANONICAL: dict[str, str] | None = None


def montage_name() -> str:
    """The built-in MNE montage that names and places our channels (colin27 10-05 if present)."""
    import mne

    kinds = mne.channels.get_builtin_montages()
    return "colin27_1005" if "colin27_1005" in kinds else "standard_1005"


def clean_name(name: str) -> str:
    """Display name of a channel: trailing dots removed, 10-05 capitalisation (``"Fc3."`` -> ``"FC3"``)."""
    global _CANONICAL
    n = str(name).strip().rstrip(".")
    if _CANONICAL is None:
        try:
            import mne

            names = mne.channels.make_standard_montage(montage_name()).ch_names
            _CANONICAL = {c.casefold(): c for c in names}
        except Exception:  # no montage data: keep the names as they are
            _CANONICAL = {}
    return _CANONICAL.get(n.casefold(), n)


@dataclasses.dataclass
class FeatureMaps:
    """Spectral features of :class:`Trials`.

    Attributes
    ----------
    freqs : ndarray, shape (n_freqs,)
    psd : ndarray, shape (n_trials, n_channels, n_freqs)
        Welch PSD of the task windows, dB re 1 uV^2/Hz.
    base_psd : ndarray, shape (n_channels, n_freqs)
        Mean linear power of the baselines (for ERD/ERS).
    ns : ndarray, shape (n_trials, n_channels, n_ns_freqs)
        Imaginary-coherence node strength.
    ns_freqs : ndarray, shape (n_ns_freqs,)
    y : ndarray of str
    ch_names : list of str
    """

    freqs: np.ndarray
    psd: np.ndarray
    base_psd: np.ndarray
    ns: np.ndarray
    ns_freqs: np.ndarray
    y: np.ndarray
    ch_names: list[str]

    @property
    def labels(self) -> list[str]:
        return sorted(set(self.y.tolist()))

    def class_mean_db(self, label: str) -> np.ndarray:
        """Mean PSD (dB) over the trials of ``label``, shape (n_channels, n_freqs)."""
        return self.psd[self.y == label].mean(axis=0)

    def erds(self, label: str) -> np.ndarray:
        """ERD/ERS in % of the baseline power: ``100 (P - R) / R``, shape (n_channels, n_freqs).

        Negative values are a desynchronisation (power drop during imagery).
        """
        power = (10.0 ** (self.psd[self.y == label] / 10.0)).mean(axis=0)
        return 100.0 * (power - self.base_psd) / self.base_psd

    def r2(self, kind: str = "psd", pair: tuple[str, str] | None = None) -> np.ndarray:
        """Signed R² map, shape (n_channels, n_freqs); positive: larger for ``pair[1]``."""
        from neurodeck.decoders.selection import r2_map

        F = self.psd if kind == "psd" else self.ns
        labels = self.labels
        a, b = pair if pair is not None else (labels[0], labels[1])
        keep = (self.y == a) | (self.y == b)
        return r2_map(F[keep], self.y[keep], positive=b)

    def freqs_of(self, kind: str) -> np.ndarray:
        return self.freqs if kind == "psd" else self.ns_freqs


def compute_feature_maps(trials: Trials, band: tuple[float, float] = (4.0, 40.0),
                         progress=None) -> FeatureMaps:
    """PSD (Welch, dB), baseline power and node strength of the trials.

    ``trials`` must hold baselines (:func:`load_trials` with ``baseline=True``).
    ``progress(done, total, text)`` is called between the stages if given.
    """
    if trials.base is None:
        raise ValueError("the trials hold no baselines; load them with baseline=True")
    from neurodeck.decoders.features.connectivity import NodeStrength
    from neurodeck.decoders.features.psd import PSD

    fmin, fmax = band
    X = trials.task - trials.task.mean(axis=-1, keepdims=True)
    B = trials.base - trials.base.mean(axis=-1, keepdims=True)
    if progress:
        progress(0, 3, "power spectra")
    psd_est = PSD(sfreq=trials.sfreq, fmin=fmin, fmax=fmax, method="welch", log=True).fit(X)
    F = psd_est.transform(X)
    if progress:
        progress(1, 3, "baseline spectra")
    base = 10.0 ** (psd_est.transform(B) / 10.0)
    if progress:
        progress(2, 3, "connectivity (imaginary coherence)")
    ns_est = NodeStrength(sfreq=trials.sfreq, fmin=fmin, fmax=fmax, kind="imcoh").fit(X)
    NS = ns_est.transform(X)
    if progress:
        progress(3, 3, "done")
    return FeatureMaps(psd_est.freqs_, F, base.mean(axis=0), NS, ns_est.freqs_, trials.y,
                       [clean_name(c) for c in trials.ch_names])
