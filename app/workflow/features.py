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

#: Spectral estimators of :class:`SpectrumSettings` (:class:`decoders.features.psd.PSD` methods).
SPECTRUM_METHODS = ("welch", "burg")


@dataclasses.dataclass(frozen=True)
class SpectrumSettings:
    """How power spectra are estimated, as HappyFeat offers: Welch or Burg (autoregressive).

    The Features page computes its maps with these settings, and they go with its selection to
    the Train page (:meth:`to_specs`, ``"method=burg"`` strings), where they become the ``psd``
    step of ``psd-lda`` (:meth:`psd_params`): the saved bundle, hence the online decoder, uses
    the same spectrum.

    Parameters
    ----------
    method : {"welch", "burg"}
    window_s : float
        Welch segment length, or Burg window length, in seconds. Welch's frequency resolution is
        ``1 / window_s``.
    overlap : float
        Fraction of a window shared with the next one, in [0, 0.95].
    order : int
        Burg: order of the autoregressive model (HappyFeat's default 19).
    resolution_hz : float
        Burg: step of the frequency grid the AR spectrum is evaluated on (Hz).
    """

    method: str = "welch"
    window_s: float = 1.0
    overlap: float = 0.5
    order: int = 19
    resolution_hz: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in SPECTRUM_METHODS:
            raise ValueError(f"spectrum method {self.method!r} unknown; expected one of "
                             f"{list(SPECTRUM_METHODS)}")
        for name, lo, hi in (("window_s", 0.01, 60.0), ("overlap", 0.0, 0.95),
                             ("resolution_hz", 0.01, 100.0)):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not lo <= float(v) <= hi:
                raise ValueError(f"spectrum {name}={v!r}; expected a number in [{lo:g}, {hi:g}]")
        if isinstance(self.order, bool) or not isinstance(self.order, int) or not 1 <= self.order <= 200:
            raise ValueError(f"spectrum order={self.order!r}; expected an integer in [1, 200]")

    def psd_params(self, sfreq: float) -> dict:
        """Keyword arguments of :class:`decoders.features.psd.PSD` at ``sfreq`` Hz."""
        if self.method == "welch":
            nper = max(2, int(round(self.window_s * sfreq)))
            return {"method": "welch", "nperseg": nper,
                    "noverlap": min(nper - 1, int(round(self.overlap * nper)))}
        return {"method": "burg", "order": int(self.order), "win_s": float(self.window_s),
                "step_s": float(self.window_s) * (1.0 - float(self.overlap)),
                "nfreqs": int(round(sfreq / 2.0 / self.resolution_hz)) + 1}

    def to_specs(self) -> list[str]:
        """``["method=burg", "window_s=0.25", ...]``: the settings as selection-style strings."""
        keys = ("method", "window_s", "overlap") + (("order", "resolution_hz")
                                                    if self.method == "burg" else ())
        return [f"{k}={getattr(self, k):g}" if k != "method" else f"method={self.method}"
                for k in keys]

    @classmethod
    def from_specs(cls, specs) -> SpectrumSettings:
        """Inverse of :meth:`to_specs` (raises ValueError naming a bad item)."""
        kw: dict = {}
        types = {"method": str, "window_s": float, "overlap": float, "order": int,
                 "resolution_hz": float}
        for item in specs:
            key, sep, value = str(item).partition("=")
            key = key.strip()
            if not sep or key not in types:
                raise ValueError(f"spectrum setting {item!r} unknown; expected key=value with key "
                                 f"one of {list(types)}")
            try:
                kw[key] = types[key](value.strip())
            except ValueError:
                raise ValueError(f"spectrum setting {item!r}: {value.strip()!r} is not a "
                                 f"{types[key].__name__}") from None
        return cls(**kw)

    def describe(self, sfreq: float | None = None) -> str:
        """One line for the user, e.g. ``"Burg AR(19), 0.25 s windows, 75 % overlap, 1 Hz grid"``."""
        common = f"{self.window_s:g} s windows, {100 * self.overlap:g} % overlap"
        if self.method == "welch":
            return f"Welch, {common}, {1.0 / self.window_s:g} Hz bins"
        return f"Burg AR({self.order}), {common}, {self.resolution_hz:g} Hz grid"


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
        PSD of the task windows (Welch or Burg: ``spectrum``), dB re 1 uV^2/Hz.
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
    spectrum: SpectrumSettings = dataclasses.field(default_factory=SpectrumSettings)

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
                         progress=None, spectrum: SpectrumSettings | None = None) -> FeatureMaps:
    """PSD (Welch or Burg as ``spectrum`` says, dB), baseline power and node strength of the trials.

    ``trials`` must hold baselines (:func:`load_trials` with ``baseline=True``).
    ``progress(done, total, text)`` is called between the stages if given.
    """
    spectrum = spectrum or SpectrumSettings()
    if trials.base is None:
        raise ValueError("the trials hold no baselines; load them with baseline=True")
    from neurodeck.decoders.features.connectivity import NodeStrength
    from neurodeck.decoders.features.psd import PSD

    fmin, fmax = band
    X = trials.task - trials.task.mean(axis=-1, keepdims=True)
    B = trials.base - trials.base.mean(axis=-1, keepdims=True)
    if progress:
        progress(0, 3, "power spectra")
    psd_est = PSD(sfreq=trials.sfreq, fmin=fmin, fmax=fmax, log=True,
                  **spectrum.psd_params(trials.sfreq)).fit(X)
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
                       [clean_name(c) for c in trials.ch_names], spectrum)
