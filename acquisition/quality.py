"""Channel quality of one window: NaN/Inf, flat, saturated (clipped), absurd amplitude, line noise.

Qt-free and vectorised, shared by the GUI's signal view (which colours bad channels) and the
online engine (which refuses to decode a window whose *model* channels are bad, see
:mod:`app.engine`). One call costs a few passes over a ``(n_channels, n_times)`` window (plus one
real FFT when the line-noise check is asked for).

Thresholds are in microvolts, the LSL convention for EEG streams; pass ``to_uv`` (per channel
factor to microvolts, from the stream's units with :func:`unit_to_uv`) for streams in other units.
Channels whose factor is 0 or NaN (non-voltage units, e.g. a ``samples`` counter) get only the
NaN/Inf check.

Checks (each sets a bit of :class:`Flag` and a human-readable reason per channel)

``NONFINITE``
    any NaN or +-Inf sample.
``FLAT``
    standard deviation below ``flat_std`` (a disconnected or shorted electrode, a dead channel).
``SATURATED``
    at least ``clip_fraction`` of the samples (and ``clip_min_samples``) sit exactly on the
    channel's own maximum or minimum: the amplifier clipped at a rail.
``ABSURD``
    largest deviation from the channel's mean above ``max_amplitude`` (not scalp EEG).
``NOISY``
    power within +-``line_width`` Hz of ``line_freq`` above ``noisy_ratio`` times the power in
    ``eeg_band`` (line noise stronger than the EEG). Informative only: a band-pass model filters
    it, so it does not invalidate a decision (:data:`INVALIDATING` leaves it out).
"""
from __future__ import annotations

import dataclasses
import enum
import logging
import math
from collections.abc import Sequence

import numpy as np

from neurodeck.acquisition.units import volts_per_unit

logger = logging.getLogger(__name__)


class Flag(enum.IntFlag):
    """Per-channel problem bits (combine with ``|``)."""

    OK = 0
    NONFINITE = 1
    FLAT = 2
    SATURATED = 4
    ABSURD = 8
    NOISY = 16


#: Problems that make a window unusable for a decoder.
INVALIDATING = Flag.NONFINITE | Flag.FLAT | Flag.SATURATED | Flag.ABSURD


def unit_to_uv(unit: str | None) -> float:
    """Factor from ``unit`` to microvolts.

    An empty or missing unit is taken as microvolts (the LSL EEG convention); a non-voltage unit
    (``"samples"``, ``"a.u."``, ...) gives NaN, meaning "no amplitude checks".
    """
    if not (unit or "").strip():
        return 1.0
    volts = volts_per_unit(unit)
    return math.nan if volts is None else volts / 1e-6


@dataclasses.dataclass(frozen=True)
class QualityConfig:
    """Thresholds of :func:`check_window` (amplitudes in microvolts).

    Parameters
    ----------
    flat_std : float
        Standard deviation (µV) below which a channel is flat.
    max_amplitude : float
        Largest deviation from the channel mean (µV) still plausible for EEG.
    clip_fraction, clip_min_samples : float, int
        A channel is saturated when at least ``max(clip_min_samples, clip_fraction * n_times)``
        samples equal its maximum (or its minimum).
    line_freq : float or None
        Mains frequency (50 or 60 Hz); ``None`` disables the line-noise check.
    line_width : float
        Half width (Hz) of the line-noise band.
    noisy_ratio : float
        Line power / EEG-band power above which a channel is noisy.
    eeg_band : tuple of float
        The band (Hz) whose power the line noise is compared with.
    noisy_relative : float or None
        Also noisy: a high-frequency amplitude (std of the first difference, insensitive to slow
        eye blinks) above ``noisy_relative`` x the median channel's (a loose electrode);
        ``None`` (default) disables this check.
    """

    flat_std: float = 0.1
    max_amplitude: float = 2000.0
    clip_fraction: float = 0.02
    clip_min_samples: int = 4
    line_freq: float | None = 50.0
    line_width: float = 1.0
    noisy_ratio: float = 1.0
    eeg_band: tuple[float, float] = (1.0, 40.0)
    noisy_relative: float | None = None

    def __post_init__(self) -> None:
        def bad(name, value, expected):
            raise ValueError(f"QualityConfig.{name}={value!r} invalid; expected {expected}")

        if not self.flat_std >= 0:
            bad("flat_std", self.flat_std, "a standard deviation >= 0 µV")
        if not self.max_amplitude > 0:
            bad("max_amplitude", self.max_amplitude, "> 0 µV")
        if not 0 < self.clip_fraction <= 1:
            bad("clip_fraction", self.clip_fraction, "a fraction in (0, 1]")
        if int(self.clip_min_samples) < 2:
            bad("clip_min_samples", self.clip_min_samples, "an integer >= 2")
        if self.line_freq is not None and not self.line_freq > 0:
            bad("line_freq", self.line_freq, "a frequency > 0 Hz or None")
        if not self.line_width > 0:
            bad("line_width", self.line_width, "> 0 Hz")
        if not self.noisy_ratio > 0:
            bad("noisy_ratio", self.noisy_ratio, "> 0")
        if self.noisy_relative is not None and not self.noisy_relative > 1:
            bad("noisy_relative", self.noisy_relative, "a factor > 1 or None")
        lo, hi = (tuple(self.eeg_band) + (None, None))[:2]
        if lo is None or hi is None or not 0 <= lo < hi:
            bad("eeg_band", self.eeg_band, "(low, high) Hz with 0 <= low < high")


_REASONS = (
    (Flag.NONFINITE, "NaN/Inf"),
    (Flag.FLAT, "flat"),
    (Flag.SATURATED, "saturated"),
    (Flag.ABSURD, "absurd amplitude"),
    (Flag.NOISY, "line noise"),
)


@dataclasses.dataclass(frozen=True)
class ChannelQuality:
    """Result of :func:`check_window`.

    Attributes
    ----------
    flags : ndarray of int, shape (n_channels,)
        :class:`Flag` bits per channel (0 = good).
    reasons : tuple of str, length n_channels
        What is wrong with each channel, with the measured value ("" when good).
    std_uv : ndarray, shape (n_channels,)
        Standard deviation of the finite samples, µV (NaN without a unit factor).
    line_ratio : ndarray, shape (n_channels,)
        Line / EEG-band power (NaN when not computed).
    """

    flags: np.ndarray
    reasons: tuple[str, ...]
    std_uv: np.ndarray
    line_ratio: np.ndarray

    def bad(self, mask: Flag = INVALIDATING) -> np.ndarray:
        """Boolean mask, shape (n_channels,): channels with any of the ``mask`` problems."""
        return (self.flags & int(mask)) != 0

    @property
    def ok(self) -> bool:
        """True when no channel has an invalidating problem."""
        return not self.bad().any()

    def bad_names(self, ch_names: Sequence[str], mask: Flag = INVALIDATING) -> list[str]:
        """Names of the channels with ``mask`` problems, in channel order."""
        return [str(ch_names[i]) for i in np.flatnonzero(self.bad(mask))]

    def summary(self, ch_names: Sequence[str], mask: Flag = INVALIDATING, limit: int = 8) -> str:
        """``"C3: NaN/Inf; C4: flat (std 0.000 µV)"`` for the ``mask`` problems ("" if none)."""
        idx = np.flatnonzero(self.bad(mask))
        parts = [f"{ch_names[i]}: {self.reasons[i]}" for i in idx[:limit]]
        if len(idx) > limit:
            parts.append(f"... ({len(idx) - limit} more)")
        return "; ".join(parts)


def check_window(
    window: np.ndarray,
    sfreq: float | None = None,
    config: QualityConfig | None = None,
    *,
    to_uv: float | Sequence[float] | np.ndarray = 1.0,
    line_noise: bool = True,
) -> ChannelQuality:
    """Flag the bad channels of one window.

    Parameters
    ----------
    window : ndarray, shape (n_channels, n_times)
        Samples, in the stream's unit (see ``to_uv``).
    sfreq : float, optional
        Sampling rate in Hz; needed for the line-noise check (skipped without it).
    config : QualityConfig, optional
        Thresholds (default :class:`QualityConfig()`).
    to_uv : float or array-like, shape (n_channels,)
        Factor from the window's unit to microvolts per channel; 0 or NaN skips the amplitude
        checks of that channel (non-voltage channels).
    line_noise : bool
        Run the (FFT-based) line-noise check.

    Returns
    -------
    ChannelQuality
    """
    cfg = config or QualityConfig()
    w = np.asarray(window)
    if w.ndim != 2:
        raise ValueError(f"window must be (n_channels, n_times), got shape {w.shape}")
    n_ch, n_t = w.shape
    w = w.astype(np.float64, copy=False)
    scale = np.broadcast_to(np.asarray(to_uv, dtype=float), (n_ch,))
    volt = np.isfinite(scale) & (scale > 0)
    flags = np.zeros(n_ch, dtype=np.int64)
    std_uv = np.full(n_ch, np.nan)
    ratio = np.full(n_ch, np.nan)
    details: dict[int, list[str]] = {}

    # row sums are NaN/Inf exactly when a row holds NaN/Inf (or overflows): one cheap pass
    with np.errstate(invalid="ignore", over="ignore"):  # (+inf + -inf: NaN, as wanted; no warning)
        nonfinite = ~np.isfinite(w.sum(axis=1))
    if n_t == 0:
        return ChannelQuality(flags, ("",) * n_ch, std_uv, ratio)
    if nonfinite.any():
        finite = np.isfinite(w)
        n_bad = (~finite).sum(axis=1)
        nonfinite = n_bad > 0
        for i in np.flatnonzero(nonfinite):
            details.setdefault(i, []).append(f"NaN/Inf ({n_bad[i]} of {n_t} samples)")
        flags[nonfinite] |= Flag.NONFINITE
        some = n_bad < n_t
        n_fin = np.maximum(n_t - n_bad, 1)
        w = np.where(finite, w, 0.0)
        mean = w.sum(axis=1) / n_fin
        dev = np.where(finite, w - mean[:, None], 0.0)
        hi = np.where(finite, w, -np.inf).max(axis=1)
        lo = np.where(finite, w, np.inf).min(axis=1)
    else:
        some = np.ones(n_ch, dtype=bool)
        n_fin = n_t
        mean = w.mean(axis=1)
        dev = None
        hi, lo = w.max(axis=1), w.min(axis=1)
    if dev is None:
        # var = E[x^2] - mean^2 in float64 (exact enough even with DC offsets of volts in µV)
        var = np.einsum("ij,ij->i", w, w) / n_fin - mean * mean
        var = np.maximum(var, 0.0)
    else:
        var = np.einsum("ij,ij->i", dev, dev) / n_fin
    # below the rounding error of the variance (~sqrt(eps) * |mean|) a channel is constant
    std = np.where(var <= (4e-8 * mean) ** 2, 0.0, np.sqrt(var))
    peak = np.maximum(hi - mean, mean - lo)
    std_uv[volt] = std[volt] * scale[volt]
    peak_uv = np.full(n_ch, np.nan)
    peak_uv[volt] = peak[volt] * scale[volt]

    flat = volt & some & (std_uv < cfg.flat_std)
    absurd = volt & some & (peak_uv > cfg.max_amplitude)
    need = max(int(cfg.clip_min_samples), int(math.ceil(cfg.clip_fraction * n_t)))
    if n_t >= need:
        n_hi = np.count_nonzero(w == hi[:, None], axis=1)
        n_lo = np.count_nonzero(w == lo[:, None], axis=1)
        clipped = volt & some & ~flat & ((n_hi >= need) | (n_lo >= need))
    else:
        clipped = np.zeros(n_ch, dtype=bool)
        n_hi = n_lo = np.zeros(n_ch, dtype=int)
    flags[flat] |= Flag.FLAT
    flags[clipped] |= Flag.SATURATED
    flags[absurd] |= Flag.ABSURD
    for i in np.flatnonzero(flat):
        details.setdefault(i, []).append(f"flat (std {std_uv[i]:.3g} µV < {cfg.flat_std:g})")
    for i in np.flatnonzero(clipped):
        details.setdefault(i, []).append(
            f"saturated ({max(n_hi[i], n_lo[i])} of {n_t} samples at the rail)"
        )
    for i in np.flatnonzero(absurd):
        details.setdefault(i, []).append(
            f"absurd amplitude ({peak_uv[i]:.3g} µV > {cfg.max_amplitude:g})"
        )

    if (line_noise and sfreq and cfg.line_freq is not None
            and cfg.line_freq + cfg.line_width < sfreq / 2 and n_t >= 8):
        freqs = np.fft.rfftfreq(n_t, 1.0 / float(sfreq))
        df = freqs[1] - freqs[0]
        half = max(cfg.line_width, df / 2)
        in_line = np.abs(freqs - cfg.line_freq) <= half
        in_eeg = (freqs >= cfg.eeg_band[0]) & (freqs <= cfg.eeg_band[1]) & ~in_line
        if in_line.any() and in_eeg.any():
            spec = np.fft.rfft(w - mean[:, None] if dev is None else dev, axis=1)
            power = spec.real**2 + spec.imag**2
            p_line = power[:, in_line].sum(axis=1)
            p_eeg = power[:, in_eeg].sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(p_eeg > 0, p_line / p_eeg, np.where(p_line > 0, np.inf, 0.0))
            noisy = volt & some & ~flat & (ratio > cfg.noisy_ratio)
            flags[noisy] |= Flag.NOISY
            for i in np.flatnonzero(noisy):
                details.setdefault(i, []).append(
                    f"line noise ({cfg.line_freq:g} Hz power {ratio[i]:.3g}x the "
                    f"{cfg.eeg_band[0]:g}-{cfg.eeg_band[1]:g} Hz power)"
                )
    if cfg.noisy_relative is not None and n_t >= 8:
        alive = volt & some & ~flat & ~clipped & ~absurd
        if alive.sum() >= 3:
            hf = np.diff(w, axis=1).std(axis=1) * np.where(volt, scale, 0.0)
            med = float(np.median(hf[alive]))
            loud = alive & (hf > cfg.noisy_relative * med) if med > 0 else np.zeros(n_ch, bool)
            flags[loud] |= Flag.NOISY
            for i in np.flatnonzero(loud):
                details.setdefault(i, []).append(
                    f"broadband noise ({hf[i] / med:.3g}x the median channel's high-frequency "
                    "amplitude)")
    reasons = tuple(", ".join(details.get(i, [])) for i in range(n_ch))
    return ChannelQuality(flags, reasons, std_uv, ratio)


__all__ = ["INVALIDATING", "ChannelQuality", "Flag", "QualityConfig", "check_window", "unit_to_uv"]
