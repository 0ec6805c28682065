"""Channel units: the one table that reads every unit convention LSL programs write.

LSL itself has no unit field; the XDF meta-data convention puts one in the stream description,
``desc/channels/channel/unit``. Programs fill it differently. What this module reads (each seen in
the public code or docs of the program named):

* the XDF/LSL meta-data convention and most vendor apps (g.USBamp, BrainAmp, LiveAmp, Muse,
  Polar, ...): ``"microvolts"``;
* BrainVision headers and apps, EDF headers, many scripts: ``"uV"``, ``"µV"`` (U+00B5 MICRO SIGN),
  ``"μV"`` (U+03BC GREEK SMALL LETTER MU), ``"mV"``, ``"V"``, ``"nV"``, in any case, with or without
  spaces (``"micro volts"``, ``"microVolts"``, ``"uVolt"``);
* MNE-LSL (``PlayerLSL``, ``StreamLSL``, ``StreamInfo.set_channel_units``): the FIFF unit
  multiplier as an exponent string, ``"0"`` for volts (what its player streams, MNE's SI data),
  ``"-6"`` for microvolts, ``"-3"`` millivolts...; for voltage channel types;
* OpenBCI GUI / BrainFlow-based and many hand-written outlets: no description at all. Such a
  stream's unit is *unknown*; the convention is microvolts, and the online engine checks the
  amplitude against the model's calibration before trusting it (:func:`amplitude_mismatch`).

Anything else (``"a.u."``, ``"counts"``, ``"mg"``) is *unreadable*: :func:`volts_per_unit`
returns ``None`` and callers treat it like a missing unit for voltage channels.
"""
from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Sequence

logger = logging.getLogger(__name__)

#: Channel types (lower case) whose samples are voltages (MNE's names plus LSL spellings).
VOLTAGE_TYPES: frozenset[str] = frozenset(
    {"eeg", "eog", "emg", "ecg", "ekg", "seeg", "ecog", "dbs", "bio", "exg"}
)

#: Canonical name of each power of ten of volts we name (what we write into descriptions).
CANONICAL: dict[int, str] = {0: "volts", -3: "millivolts", -6: "microvolts", -9: "nanovolts"}

# SI prefix spelling (after lower-casing and NFKC, which turns U+00B5 into U+03BC) -> exponent
_PREFIXES: dict[str, int] = {
    "": 0,
    "k": 3, "kilo": 3,
    "m": -3, "milli": -3,
    "u": -6, "μ": -6, "micro": -6, "mc": -6, "mu": -6,
    "n": -9, "nano": -9,
    "p": -12, "pico": -12,
}
_BASES = ("volts", "volt", "v")
_EXPONENT = re.compile(r"[+-]?\d{1,2}")


def volts_per_unit(unit: str | None) -> float | None:
    """Factor from one unit text to volts, or None when the text is empty or not a voltage.

    Parameters
    ----------
    unit : str or None
        A channel's unit as a program wrote it: a name (``"microvolts"``), a symbol with an SI
        prefix (``"uV"``, ``"µV"``, ``"μV"``, ``"mV"``, ``"nV"``, ``"V"``) or MNE-LSL's exponent of
        ten of volts (``"-6"``, ``"0"``).

    Returns
    -------
    factor : float or None
        Volts per unit (``1e-6`` for microvolts); None when empty or unreadable.
    """
    if unit is None:
        return None
    text = unicodedata.normalize("NFKC", str(unit)).strip()
    if not text:
        return None
    if _EXPONENT.fullmatch(text):
        return 10.0 ** int(text)
    key = re.sub(r"[\s_\-.]", "", text.lower())
    for base in _BASES:
        if key.endswith(base):
            exp = _PREFIXES.get(key[: -len(base)])
            if exp is not None:
                return 10.0**exp
    return None


def unit_name(volts_per: float) -> str:
    """Canonical name of a factor to volts (``1e-6`` -> ``"microvolts"``), else ``"<f> V"``."""
    exp = math.log10(volts_per) if volts_per > 0 else math.nan
    if math.isfinite(exp) and abs(exp - round(exp)) < 1e-9 and int(round(exp)) in CANONICAL:
        return CANONICAL[int(round(exp))]
    return f"{volts_per:g} V"


def is_voltage_type(ch_type: str | None) -> bool:
    """True for channel types that carry voltages (EEG, EOG, EMG, ECG, ...; case-insensitive)."""
    return (ch_type or "").strip().lower() in VOLTAGE_TYPES


#: MNE channel types a recording's channel may keep (others become ``"misc"``).
MNE_TYPES: frozenset[str] = frozenset(
    {"eeg", "eog", "emg", "ecg", "seeg", "ecog", "dbs", "bio", "misc", "stim", "resp", "gsr",
     "temperature", "syst"}
)
_TYPE_ALIASES = {"ekg": "ecg", "exg": "eeg", "electroencephalography": "eeg", "markers": "stim",
                 "trigger": "stim"}


def mne_type_and_scale(unit: str | None, ch_type: str | None, stream_type: str) -> tuple[str, float, bool]:
    """MNE channel type of one recorded channel and the factor that brings it to MNE's SI units.

    Parameters
    ----------
    unit, ch_type : str or None
        From the stream description (any spelling; empty when absent).
    stream_type : str
        The stream's content type (``"EEG"``: untyped channels are EEG).

    Returns
    -------
    mne_type : str
        One of :data:`MNE_TYPES`.
    scale : float
        Multiply samples by it to get volts for voltage channels (1.0 otherwise). A voltage channel
        without a unit is taken to be in microvolts (the LSL convention for EEG); one whose unit is
        not a voltage (``"a.u."``) is kept unscaled as ``"misc"``.
    assumed : bool
        True when the microvolt convention was assumed (a voltage channel without a unit).
    """
    t = (ch_type or "").strip().lower()
    t = _TYPE_ALIASES.get(t, t)
    if t in MNE_TYPES:
        mtype = t
    elif stream_type.strip().lower() == "eeg" and (not t or t in VOLTAGE_TYPES):
        mtype = "eeg"
    else:
        mtype = "misc"
    text = (unit or "").strip()
    if mtype not in VOLTAGE_TYPES:
        return mtype, 1.0, False
    f = volts_per_unit(text)
    if f is not None:
        return mtype, f, False
    if not text:
        return mtype, 1e-6, True
    log = logger.warning if t in VOLTAGE_TYPES else logger.debug  # an untyped counter is no news
    log("unit %r is not a voltage; channel kept unscaled as type 'misc'", unit)
    return "misc", 1.0, False


def to_unit_scale(units: Sequence[str], target: str) -> tuple[list[float], list[int]]:
    """Per-channel factors that convert stream samples to ``target``, and the unknown channels.

    Parameters
    ----------
    units : sequence of str, length n_channels
        The stream's channel units (any spelling :func:`volts_per_unit` reads).
    target : str
        The unit to convert to (a model's training unit, e.g. ``"microvolts"``).

    Returns
    -------
    scale : list of float, length n_channels
        Multiply channel ``i`` by ``scale[i]`` to get ``target`` (1.0 for unknown channels: they
        are assumed to be in ``target`` already).
    unknown : list of int
        Indices of channels whose unit is missing or unreadable.

    Raises
    ------
    ValueError
        If ``target`` is not a unit this module reads.
    """
    tv = volts_per_unit(target)
    if tv is None:
        raise ValueError(f"unit {target!r} not understood; expected e.g. 'microvolts', 'uV', 'V'")
    scale, unknown = [], []
    for i, u in enumerate(units):
        f = volts_per_unit(u)
        if f is None:
            unknown.append(i)
            scale.append(1.0)
        else:
            scale.append(f / tv)
    return scale, unknown


def amplitude_mismatch(live: float, calibration: float, model_unit: str, tolerance: float = 30.0,
                       declared: str | None = None) -> str:
    """Why a stream of unknown unit cannot be trusted, or ``""`` when its amplitude is plausible.

    Parameters
    ----------
    live, calibration : float
        The same amplitude statistic of the live window and of the model's training windows (in
        the model's unit, assuming the stream is in it too).
    model_unit : str
        The model's training unit (named in the reason).
    tolerance : float
        Largest plausible ratio either way (subjects, caps and amplifiers differ by a few times,
        units by powers of 1000).
    declared : str or None
        The unit the stream declares for these channels (None: none readable). A declared unit
        whose data is off by more than ``tolerance`` is named as suspect too.

    Returns
    -------
    reason : str
        E.g. ``"stream looks like volts, model was trained in microvolts (amplitude 1e-06 x the
        calibration's; the stream declares no unit)"``; ``""`` if within ``tolerance``.
    """
    if not (calibration > 0 and math.isfinite(calibration)):
        return ""
    if not math.isfinite(live):
        return ""  # NaN/Inf windows are the quality check's to report
    if live <= 0:
        return ""  # flat: the quality check names the channels
    ratio = live / calibration
    if 1.0 / tolerance <= ratio <= tolerance:
        return ""
    mv = volts_per_unit(model_unit) or 1e-6
    guess = mv / ratio  # volts per stream unit if the true amplitude matched the calibration's
    exp3 = 3 * round(math.log10(guess) / 3)
    named = CANONICAL.get(exp3) if abs(math.log10(guess) - exp3) <= 1.0 else None
    model_name = unit_name(mv)
    if declared is not None:  # converted already: the amplitude says the declaration is wrong
        dv = volts_per_unit(declared)
        named_decl = unit_name(dv) if dv else str(declared)
        true = CANONICAL.get(3 * round(math.log10((dv or 1.0) / ratio) / 3))
        looks = f"; its data look like {true}" if true and true != named_decl else ""
        return (
            f"stream declares {named_decl}{looks} (amplitude {ratio:.2g} x the model's "
            f"calibration, trained in {model_name}): check the source's unit"
        )
    if named is not None and named != model_name:
        head = f"stream looks like {named}, model was trained in {model_name}"
    else:
        head = f"stream amplitude does not match the model's calibration (trained in {model_name})"
    return (
        f"{head} (amplitude {ratio:.2g} x the calibration's; the stream declares no readable "
        "unit: declare one or convert the stream)"
    )
