"""Bring a live stream to the model's unit, or say why its decisions cannot be trusted.

The engine calls :func:`unit_guard` once when it starts and :meth:`UnitGuard.apply` on every window
of the model's channels. Channels whose unit the stream declares (any spelling
:mod:`neurodeck.acquisition.units` reads, MNE-LSL's exponents included) are converted exactly.
Channels without a readable unit are assumed to be in the model's unit; their amplitude is compared
with the calibration amplitude stored in the model bundle, and a window off by more than a
plausible factor is refused with a reason naming the suspected unit. Declared units are checked the
same way with a wider margin, so a source that declares microvolts and sends volts is refused too.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from neurodeck.acquisition.units import amplitude_mismatch, to_unit_scale, unit_name, volts_per_unit
from neurodeck.decoders.calibration import amplitude_scale

logger = logging.getLogger(__name__)

#: Samples at the end of each window whose amplitude is checked (a cheap, unbiased estimate).
CHECK_SAMPLES = 64
#: Largest plausible amplitude ratio for channels whose unit the stream declares (units differ by
#: 1000x or more; amplifiers and subjects by far less).
DECLARED_TOLERANCE = 100.0


@dataclasses.dataclass(frozen=True)
class UnitGuard:
    """Per-window conversion of the model's channels to the model's unit.

    Attributes
    ----------
    scale : ndarray, shape (n_model_channels,)
        Factor applied to each row (1.0 for unknown units).
    unknown : ndarray of int
        Rows whose unit the stream does not declare readably (their amplitude must match the
        calibration within 30x).
    declared : ndarray of int
        Rows with a readable unit (converted; their amplitude must match within
        ``DECLARED_TOLERANCE``, so a source that declares a wrong unit is caught too).
    declared_unit : str
        The (first) unit declared for them, named in a refusal.
    model_unit : str
    calibration : float or None
        Training amplitude (:func:`decoders.calibration.amplitude_scale`), None if the bundle has
        none (then unknown units are trusted as the model's unit, with a warning at start).
    note : str
        One line for status displays, e.g. ``"units: volts -> microvolts (x1e+06)"``.
    """

    scale: np.ndarray
    unknown: np.ndarray
    model_unit: str
    calibration: float | None
    note: str
    declared: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=int))
    declared_unit: str = ""
    #: True when every factor is 1 (nothing to convert; checked once, not every hop)
    identity: bool = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "identity", bool(np.all(np.asarray(self.scale) == 1.0)))

    def convert(self, window: np.ndarray) -> np.ndarray:
        """The window (n_model_channels, n_times) in the model's unit, unchecked."""
        return window if self.identity else window * self.scale[:, None]

    def apply(self, window: np.ndarray) -> tuple[np.ndarray, str]:
        """The window in the model's unit, and ``""`` or the reason it must not be decoded.

        Parameters
        ----------
        window : ndarray, shape (n_model_channels, n_times)

        Returns
        -------
        window : ndarray, shape (n_model_channels, n_times)
        reason : str
        """
        window = self.convert(window)
        if self.calibration is None:
            return window, ""
        tail = window[:, -CHECK_SAMPLES:]
        if self.unknown.size:
            live = amplitude_scale(tail if self.unknown.size == len(tail) else tail[self.unknown])
            reason = amplitude_mismatch(live, self.calibration, self.model_unit)
            if reason:
                return window, reason
        if self.declared.size:
            live = amplitude_scale(tail if self.declared.size == len(tail) else tail[self.declared])
            reason = amplitude_mismatch(live, self.calibration, self.model_unit,
                                        tolerance=DECLARED_TOLERANCE, declared=self.declared_unit)
            if reason:
                return window, reason
        return window, ""


def unit_guard(
    stream_units: Sequence[str],
    picks: Sequence[int],
    model_unit: str,
    calibration: float | None,
) -> UnitGuard:
    """Build the conversion of the picked stream channels to ``model_unit``.

    Parameters
    ----------
    stream_units : sequence of str, length n_stream_channels
        Units from the stream description (empty strings when absent).
    picks : sequence of int, length n_model_channels
        Stream row of each model channel.
    model_unit : str
        The bundle's training unit.
    calibration : float or None
        The bundle's calibration amplitude.
    """
    units = [str(stream_units[i]) if i < len(stream_units) else "" for i in picks]
    scale, unknown = to_unit_scale(units, model_unit)
    scale_arr = np.asarray(scale, dtype=np.float64)
    declared = sorted({unit_name(volts_per_unit(u)) for u in units if volts_per_unit(u) is not None})
    target = unit_name(volts_per_unit(model_unit) or 1e-6)
    parts = []
    if declared:
        factors = sorted({float(f) for i, f in enumerate(scale) if i not in unknown})
        conv = ", ".join(f"x{f:g}" for f in factors if f != 1.0)
        parts.append(f"{'/'.join(declared)} -> {target}" + (f" ({conv})" if conv else ""))
    if unknown:
        check = "amplitude checked against calibration" if calibration is not None else "UNCHECKED"
        parts.append(f"{len(unknown)} channel(s) without a unit taken as {target} ({check})")
        if calibration is None:
            logger.warning("stream declares no unit for %d model channel(s) and the model has no "
                           "calibration amplitude: assuming %s unchecked", len(unknown), target)
    note = "units: " + "; ".join(parts)
    logger.info("%s", note)
    declared_rows = [i for i in range(len(units)) if i not in set(unknown)]
    first = next((units[i] for i in declared_rows), "")
    return UnitGuard(scale_arr, np.asarray(unknown, dtype=int), model_unit, calibration, note,
                     np.asarray(declared_rows, dtype=int), first)
