"""Synthetic EEG amplifier: plausible motor-imagery EEG that is decodable by design.

The signal model (all amplitudes in microvolts, generated chunk by chunk with continuous filter and
random-number state, so any chunking of the same seed gives the same samples):

- **background**: pink (1/f) noise, one source per channel, spatially smoothed by a Gaussian kernel
  of the inter-electrode distance on the ``standard_1005`` montage, plus white sensor noise;
- **posterior alpha** (~10 Hz) centred between Oz and Pz (O1/O2/Oz/Pz);
- **sensorimotor mu** (~11 Hz) and **beta** (~21 Hz) sources over the left hand area (C3), right
  hand area (C4), vertex/feet (Cz) and tongue (C5/C6). Imagery of a class lowers their power
  (event-related desynchronisation, ERD) over the *contralateral* area: left hand -> C4, right hand
  -> C3, feet -> Cz, tongue -> C5/C6, with a little ipsilateral ERD and surround synchronisation.
  Beta power overshoots after the imagery ends (post-movement beta rebound);
- **eye blinks** at frontal channels (Fp1/Fp2 largest), random (Poisson) times;
- **line noise** (50 Hz and its 3rd harmonic), a **bad channel** (noisy with drift, or flat).

Cues come from a Graz-style schedule (fixation 2 s, cue at 2 s, imagery 4 s from the cue, random
rest 1.5-3.5 s; codes from :mod:`acquisition.markers`) or from :meth:`Simulator.cue` calls
(``schedule="external"``), e.g. from the GUI calibration protocol. In ``mode="continuous"`` a hidden
smooth 2-D intended velocity drives the band power (x > 0: right hand ERD at C3, x < 0: left hand
ERD at C4; y > 0: feet ERD at Cz, y < 0: synchronisation at Cz); the true velocity is streamed on
``<name>-truth`` (type ``"Truth"``) for training continuous decoders.

Offline: :func:`synthesize` (arrays) and :func:`simulate_raw` (``mne.io.RawArray`` in volts).
Online: :class:`Simulator` pushes real-time chunks over LSL with timestamps from the sample clock.
"""
from __future__ import annotations

import functools
import logging
import math
import threading
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

from neurodeck.acquisition.errors import AcquisitionError
from neurodeck.acquisition.markers import CODES, MI_CLASSES, name_of

if TYPE_CHECKING:  # pragma: no cover
    import mne

logger = logging.getLogger(__name__)

__all__ = [
    "SimulatorConfig",
    "EEGGenerator",
    "Simulator",
    "standard_labels",
    "channel_positions",
    "synthesize",
    "simulate_raw",
    "run_duration",
]

MAX_CHANNELS = 512
COUNTER_LABEL = "COUNTER"
_HEAD_RADIUS = 0.095  # m, for channels without a standard position

# --------------------------------------------------------------------------------------------
# channel labels and positions
# --------------------------------------------------------------------------------------------

#: The usual 64-channel 10-10 cap (BioSemi / actiCAP 64 layout), front to back, left to right.
LABELS_64: tuple[str, ...] = (
    "Fp1", "Fpz", "Fp2",
    "AF7", "AF3", "AFz", "AF4", "AF8",
    "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8",
    "T7", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "T8",
    "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8",
    "P9", "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "P10",
    "PO7", "PO3", "POz", "PO4", "PO8",
    "O1", "Oz", "O2", "Iz",
)  # fmt: skip
#: 32-channel 10-20 cap.
LABELS_32: tuple[str, ...] = (
    "Fp1", "Fp2", "AF3", "AF4", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6",
    "T7", "C3", "Cz", "C4", "T8", "CP5", "CP1", "CP2", "CP6", "P7", "P3", "Pz", "P4", "P8",
    "PO3", "PO4", "O1", "Oz", "O2",
)  # fmt: skip
#: 16-channel motor-imagery cap.
LABELS_16: tuple[str, ...] = (
    "Fp1", "Fp2", "F3", "Fz", "F4", "FC3", "FC4", "C3", "Cz", "C4", "CP3", "CP4", "P3", "Pz",
    "P4", "Oz",
)  # fmt: skip
#: 8-channel motor-imagery cap.
LABELS_8: tuple[str, ...] = ("Fz", "FC3", "FC4", "C3", "Cz", "C4", "Pz", "Oz")
_PRESETS = {8: LABELS_8, 16: LABELS_16, 32: LABELS_32, 64: LABELS_64}
# selection priority for other counts <= 64: motor first, then widening caps
_PRIORITY = ("C3", "Cz", "C4") + tuple(
    lab for lab in LABELS_8 + LABELS_16 + LABELS_32 + LABELS_64 if lab not in ("C3", "Cz", "C4")
)
_PRIORITY = tuple(dict.fromkeys(_PRIORITY))
# 10-5 labels that are aliases or not scalp EEG sites
_NOT_EXTRA = {"T3", "T4", "T5", "T6", "M1", "M2", "A1", "A2"}


@functools.lru_cache(maxsize=1)
def _montage_positions() -> dict[str, np.ndarray]:
    """Label -> 3-D position (m) of MNE's ``standard_1005`` template montage (cached)."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # renamed colin27_1005 in recent MNE
        try:
            montage = mne.channels.make_standard_montage("standard_1005")
        except ValueError:  # pragma: no cover - MNE >= 1.14
            montage = mne.channels.make_standard_montage("colin27_1005")
    return {k: np.asarray(v, dtype=float) for k, v in montage.get_positions()["ch_pos"].items()}


@functools.lru_cache(maxsize=1)
def _extra_labels() -> tuple[str, ...]:
    """Extra 10-5 labels beyond the 64 set, in the montage's order (full 10-10 sites first)."""
    names = [n for n in _montage_positions() if n not in _NOT_EXTRA and n not in LABELS_64]
    full = [n for n in names if not n.endswith("h")]
    half = [n for n in names if n.endswith("h")]
    return tuple(full + half)


def standard_labels(n: int) -> list[str]:
    """Standard 10-20 / 10-10 / 10-5 channel labels for an ``n``-channel cap.

    Parameters
    ----------
    n : int
        Number of channels, 1 .. ``MAX_CHANNELS``.

    Returns
    -------
    labels : list of str, length n
        64 -> the usual 64-channel 10-10 cap; 32, 16, 8 -> common subsets (all keep C3, Cz, C4);
        other counts below 64 -> motor-first subset of the 64 cap (C3, Cz, C4 first in priority, in
        cap order); above 64 -> the 64 cap plus extra 10-5 sites, then ``"E<k>"``.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_CHANNELS:
        raise AcquisitionError(f"channel count {n!r} invalid; expected an integer in 1..{MAX_CHANNELS}")
    n = int(n)
    if n in _PRESETS:
        return list(_PRESETS[n])
    if n < 64:
        chosen = set(_PRIORITY[:n])
        return [lab for lab in LABELS_64 if lab in chosen]
    extra = list(_extra_labels())[: n - 64]
    labels = list(LABELS_64) + extra
    labels += [f"E{k}" for k in range(len(labels) + 1, n + 1)]
    return labels


def channel_positions(labels: Sequence[str]) -> np.ndarray:
    """3-D head positions (m) of ``labels``, shape (n_channels, 3).

    Standard labels take their ``standard_1005`` position; others (``"E<k>"``) get evenly spread
    points on the upper hemisphere so the spatial model still has a geometry for them.
    """
    pos = _montage_positions()
    out = np.empty((len(labels), 3))
    missing = [i for i, lab in enumerate(labels) if lab not in pos]
    for i, lab in enumerate(labels):
        if lab in pos:
            out[i] = pos[lab]
    if missing:  # Fibonacci points on the upper hemisphere
        m = len(missing)
        k = np.arange(m) + 0.5
        z = 1.0 - k / m  # (0, 1]
        phi = k * math.pi * (3.0 - math.sqrt(5.0))
        r = np.sqrt(1.0 - z**2)
        pts = np.c_[r * np.cos(phi), r * np.sin(phi), z] * _HEAD_RADIUS
        out[missing] = pts
    return out


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatorConfig:
    """What the simulated amplifier streams.

    Parameters
    ----------
    n_channels : int
        EEG channels (1 .. 512) with :func:`standard_labels` names.
    srate : float
        Sampling rate in Hz (64 .. 16384).
    name : str
        LSL stream name; markers go to ``name + "-markers"``, truth to ``name + "-truth"``.
    mode : {"cued", "continuous"}
        Cued trials of ``classes`` or a continuous hidden 2-D velocity.
    schedule : {"auto", "external"}
        ``"auto"``: a Graz cue schedule; ``"external"``: imagery only on :meth:`Simulator.cue`.
    classes : tuple of str
        Classes of the auto schedule, any of :data:`acquisition.markers.MI_CLASSES`.
    trials_per_class : int
        Trials per class in one run (the run is shuffled; the stream then starts the next run).
    fixation_s, cue_s, imagery_s : float
        Graz timings: fixation cross, cue display, imagery (from cue onset).
    rest_s : (float, float)
        Range of the random inter-trial rest.
    erd_depth : float
        Relative mu power drop over the contralateral area at full imagery (0..1; beta drops 0.8x).
    beta_rebound : float
        Post-imagery beta rebound: peak relative beta power increase over rest, about
        ``0.9 * beta_rebound`` (0 = none), decaying over ~2 s.
    seed : int or None
        Random seed; the same seed gives the same samples offline and streamed.
    counter_channel : bool
        Append a ``"COUNTER"`` channel holding the sample index (stream format double64).
    chunk_ms : float
        Chunk duration pushed to LSL.
    bad_channel : str or None
        Label of a bad channel, ``"auto"`` (a peripheral channel away from the motor areas: P10
        on the 64 cap; none below 10 channels) or ``None``.
    bad_kind : {"noisy", "flat"}
        What is wrong with it.
    line_freq : float
        Mains frequency (50 or 60 Hz; 0 = no line noise).
    blink_rate : float
        Eye blinks per minute (0 = none).
    """

    n_channels: int = 64
    srate: float = 512.0
    name: str = "neurodeck-sim"
    mode: str = "cued"
    schedule: str = "auto"
    classes: tuple[str, ...] = ("left_hand", "right_hand")
    trials_per_class: int = 20
    fixation_s: float = 2.0
    cue_s: float = 1.25
    imagery_s: float = 4.0
    rest_s: tuple[float, float] = (1.5, 3.5)
    erd_depth: float = 0.6
    beta_rebound: float = 1.0
    seed: int | None = None
    counter_channel: bool = False
    chunk_ms: float = 20.0
    bad_channel: str | None = "auto"
    bad_kind: str = "noisy"
    line_freq: float = 50.0
    blink_rate: float = 12.0
    velocity_hz: float = 0.15
    labels: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def bad(what: str, value: object, expected: str) -> AcquisitionError:
            return AcquisitionError(f"simulator {what} {value!r} invalid; expected {expected}")

        n = self.n_channels
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_CHANNELS:
            raise bad("n_channels", n, f"an integer in 1..{MAX_CHANNELS}")
        if not _is_real(self.srate) or not 64.0 <= self.srate <= 16384.0:
            raise bad("srate", self.srate, "a sampling rate in 64..16384 Hz")
        if not isinstance(self.name, str) or not self.name.strip():
            raise bad("name", self.name, "a non-empty stream name")
        if self.mode not in ("cued", "continuous"):
            raise bad("mode", self.mode, "'cued' or 'continuous'")
        if self.schedule not in ("auto", "external"):
            raise bad("schedule", self.schedule, "'auto' or 'external'")
        classes = (self.classes,) if isinstance(self.classes, str) else tuple(self.classes)
        object.__setattr__(self, "classes", classes)
        unknown = [c for c in classes if c not in MI_CLASSES]
        if unknown or not classes:
            raise bad("classes", classes, f"a non-empty subset of {list(MI_CLASSES)}")
        if len(set(classes)) != len(classes):
            raise bad("classes", classes, "each class once")
        tpc = self.trials_per_class
        if isinstance(tpc, bool) or not isinstance(tpc, int | np.integer) or tpc < 1:
            raise bad("trials_per_class", tpc, "an integer >= 1")
        for what in ("fixation_s", "cue_s"):
            v = getattr(self, what)
            if not _is_real(v) or v < 0:
                raise bad(what, v, "a duration >= 0 s")
        if not _is_real(self.imagery_s) or self.imagery_s <= 0:
            raise bad("imagery_s", self.imagery_s, "a duration > 0 s")
        rest = tuple(self.rest_s) if isinstance(self.rest_s, Sequence) else self.rest_s
        if (
            not isinstance(rest, tuple) or len(rest) != 2 or not all(_is_real(r) for r in rest)
            or not 0 <= rest[0] <= rest[1]
        ):
            raise bad("rest_s", self.rest_s, "(min, max) seconds with 0 <= min <= max")
        object.__setattr__(self, "rest_s", (float(rest[0]), float(rest[1])))
        if not _is_real(self.erd_depth) or not 0.0 <= self.erd_depth <= 1.0:
            raise bad("erd_depth", self.erd_depth, "a relative power drop in 0..1")
        if not _is_real(self.beta_rebound) or not 0.0 <= self.beta_rebound <= 2.0:
            raise bad("beta_rebound", self.beta_rebound, "a relative power overshoot in 0..2")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or self.seed < 0
        ):
            raise bad("seed", self.seed, "None or an integer >= 0")
        if not _is_real(self.chunk_ms) or not 1.0 <= self.chunk_ms <= 1000.0:
            raise bad("chunk_ms", self.chunk_ms, "a chunk duration in 1..1000 ms")
        if self.bad_kind not in ("noisy", "flat"):
            raise bad("bad_kind", self.bad_kind, "'noisy' or 'flat'")
        if not _is_real(self.line_freq) or self.line_freq < 0 or self.line_freq >= self.srate / 2:
            raise bad("line_freq", self.line_freq, f"0 (off) or a frequency below Nyquist ({self.srate / 2} Hz)")
        if not _is_real(self.blink_rate) or not 0 <= self.blink_rate <= 60:
            raise bad("blink_rate", self.blink_rate, "0..60 blinks per minute")
        if not _is_real(self.velocity_hz) or not 0.01 <= self.velocity_hz <= 2.0:
            raise bad("velocity_hz", self.velocity_hz, "a velocity bandwidth in 0.01..2 Hz")
        labels = tuple(standard_labels(int(n)))
        if self.bad_channel is not None and self.bad_channel != "auto" and self.bad_channel not in labels:
            raise bad("bad_channel", self.bad_channel, f"None, 'auto' or one of the {n} labels {list(labels)}")
        object.__setattr__(self, "labels", labels)

    # derived -------------------------------------------------------------------------------
    @property
    def stream_labels(self) -> list[str]:
        """Labels of the streamed channels (EEG plus ``"COUNTER"`` when enabled)."""
        return list(self.labels) + ([COUNTER_LABEL] if self.counter_channel else [])

    @property
    def chunk_size(self) -> int:
        """Samples per pushed chunk."""
        return max(1, int(round(self.chunk_ms * self.srate / 1000.0)))

    @property
    def bad_label(self) -> str | None:
        """The bad channel actually used (``"auto"`` resolved), or ``None``."""
        if self.bad_channel is None:
            return None
        if self.bad_channel != "auto":
            return self.bad_channel
        if len(self.labels) < 10:
            return None  # too few channels to spare one
        for cand in ("P10", "PO8", "P8", "F8", "Fp2"):
            if cand in self.labels:
                return cand
        return self.labels[-1]

    @property
    def truth_labels(self) -> list[str]:
        """Rows of the truth array: ``["vx", "vy"]`` (continuous) or the classes (cued)."""
        return ["vx", "vy"] if self.mode == "continuous" else list(self.classes)

    @property
    def trial_s(self) -> float:
        """Fixation + imagery: the part of a trial before the rest."""
        return self.fixation_s + self.imagery_s


def _is_real(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) and math.isfinite(v)


# --------------------------------------------------------------------------------------------
# signal model
# --------------------------------------------------------------------------------------------

# source name -> (montage position label(s), peak frequency Hz, rms uV, spatial sigma m)
_CLASS_INDEX = {c: i for i, c in enumerate(MI_CLASSES)}


@dataclass
class _Interval:
    cls: int
    start: int
    stop: int
    factor: float


class _AutoSchedule:
    """Graz trials generated lazily, run after run, from their own random stream."""

    def __init__(self, cfg: SimulatorConfig, rng: np.random.Generator):
        self.cfg = cfg
        self.rng = rng
        self.cursor = 0  # first sample of the next trial
        self.queue: list[str] = []
        self.run_lengths: list[int] = []

    def next_trial(self) -> tuple[list[tuple[int, str]], _Interval, int]:
        """Events, imagery interval and end sample of the next trial."""
        cfg, sr = self.cfg, self.cfg.srate
        events: list[tuple[int, str]] = []
        s0 = self.cursor
        if not self.queue:
            block = [c for c in cfg.classes for _ in range(cfg.trials_per_class)]
            self.queue = [block[i] for i in self.rng.permutation(len(block))]
            events.append((s0, str(CODES["experiment_start"])))
        cls = self.queue.pop(0)
        cue = s0 + int(round(cfg.fixation_s * sr))
        stop = cue + int(round(cfg.imagery_s * sr))
        rest = self.rng.uniform(*cfg.rest_s)
        factor = self.rng.uniform(0.85, 1.15)
        end = stop + int(round(rest * sr))
        events += [(s0, str(CODES["trial_start"])), (cue, str(CODES[cls])), (stop, str(CODES["trial_end"]))]
        self.cursor = end
        return events, _Interval(_CLASS_INDEX[cls], cue, stop, factor), end


def run_duration(config: SimulatorConfig) -> float:
    """Length in seconds of the first auto-schedule run of ``config`` (all its trials, with rests)."""
    sched = _AutoSchedule(config, _rngs(config)["schedule"])
    end = 0
    for _ in range(len(config.classes) * config.trials_per_class):
        _, _, end = sched.next_trial()
    return end / config.srate


def _rngs(cfg: SimulatorConfig, entropy: int | None = None) -> dict[str, np.random.Generator]:
    names = ("static", "background", "oscillators", "sensor", "schedule", "external", "blinks", "bad",
             "velocity", "warmup")  # fmt: skip
    ss = np.random.SeedSequence(cfg.seed if entropy is None else entropy)
    return {n: np.random.default_rng(s) for n, s in zip(names, ss.spawn(len(names)))}


def _noise_gain(sos: np.ndarray, n: int) -> float:
    """RMS of the filter's output for unit white noise (from its impulse response)."""
    imp = np.zeros(n)
    imp[0] = 1.0
    return float(np.sqrt(np.sum(signal.sosfilt(sos, imp) ** 2)))


class EEGGenerator:
    """Chunk-by-chunk EEG generator; the heart of the simulator, without any LSL.

    ``read(n)`` returns the next ``n`` samples; the output does not depend on how the stream is
    cut into reads. Thread-safe: :meth:`cue` may be called from another thread.
    """

    # mu/beta/alpha sources: name, position labels (averaged), peak Hz, rms uV, sigma m
    _SOURCES = (
        ("alpha", ("POz", "Oz", "Pz"), 10.0, 9.0, 0.05),
        ("mu_lh", ("C3",), 11.0, 9.0, 0.045),  # left hemisphere: right hand area
        ("mu_rh", ("C4",), 11.5, 9.0, 0.045),  # right hemisphere: left hand area
        ("mu_feet", ("Cz", "CPz"), 10.5, 7.0, 0.03),
        ("mu_tl", ("C5",), 10.8, 5.0, 0.03),
        ("mu_tr", ("C6",), 11.2, 5.0, 0.03),
        ("beta_lh", ("C3",), 21.0, 4.0, 0.045),
        ("beta_rh", ("C4",), 20.0, 4.0, 0.045),
        ("beta_feet", ("Cz", "CPz"), 22.0, 3.0, 0.03),
    )
    # relative power change per unit of imagery: source -> class -> weight (times erd_depth)
    _WEIGHTS = {
        "mu_lh": {"right_hand": -1.0, "left_hand": -0.15, "feet": 0.25, "tongue": 0.25},
        "mu_rh": {"left_hand": -1.0, "right_hand": -0.15, "feet": 0.25, "tongue": 0.25},
        "mu_feet": {"feet": -1.0, "left_hand": -0.1, "right_hand": -0.1},
        "mu_tl": {"tongue": -1.0, "left_hand": 0.1, "right_hand": 0.1},
        "mu_tr": {"tongue": -1.0, "left_hand": 0.1, "right_hand": 0.1},
    }
    BACKGROUND_UV = 7.0
    SENSOR_UV = 1.0
    LATENCY_S = 0.25
    TAU_FAST_S = 0.25
    TAU_SLOW_S = 1.5
    BLINK_TAU_S = 0.05
    MOD_HZ = 0.5  # bandwidth of the rhythms' frequency and amplitude fluctuations
    FREQ_JITTER_HZ = 0.4
    LOG_AMP_SD = 0.1

    def __init__(self, config: SimulatorConfig):
        self.config = cfg = config
        self.srate = sr = float(cfg.srate)
        self.labels = list(cfg.labels)
        self.n_channels = len(self.labels)
        self._lock = threading.RLock()
        self._rng = _rngs(cfg)
        self._next = 0
        pos = channel_positions(self.labels)

        # background: pink noise per channel mixed by a distance kernel (unit rms per channel)
        self._b_pink = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
        self._a_pink = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])
        pink_sos = signal.tf2sos(self._b_pink, self._a_pink)
        self._pink_gain = _noise_gain(pink_sos, 1 << 16)
        d2 = np.sum((pos[:, None, :] - pos[None, :, :]) ** 2, axis=-1)
        mix = np.exp(-d2 / (2 * 0.03**2))
        self._mix_t = (mix / np.linalg.norm(mix, axis=1, keepdims=True)).T.copy()  # (n_ch, n_ch)
        self._zi_pink = np.zeros((3, self.n_channels))

        # oscillatory sources: rhythms with a slowly wandering frequency and amplitude (waxing and
        # waning bursts) and spatial Gaussian patterns
        mpos = _montage_positions()
        n_src = len(self._SOURCES)
        self._patterns = np.zeros((n_src, self.n_channels))
        self._f0 = np.zeros(n_src)
        self._src_rms = np.zeros(n_src)
        self._weights = np.zeros((n_src, len(MI_CLASSES)))
        self._is_beta = np.zeros(n_src, dtype=bool)
        nyq = sr / 2
        for k, (name, where, f0, rms, sigma) in enumerate(self._SOURCES):
            centre = np.mean([mpos[w] for w in where], axis=0)
            self._patterns[k] = np.exp(-np.sum((pos - centre) ** 2, axis=1) / (2 * sigma**2))
            self._f0[k] = f0
            self._src_rms[k] = rms
            base = name.replace("beta_", "mu_")
            for cls, w in self._WEIGHTS.get(base, {}).items():
                scale = 0.8 if name.startswith("beta") else 1.0
                self._weights[k, _CLASS_INDEX[cls]] = w * scale * cfg.erd_depth
            self._is_beta[k] = name.startswith("beta")
        # unit-variance slow noise (2 per source: frequency jitter, log-amplitude) below ~1 Hz
        self._mod_sos = signal.butter(2, self.MOD_HZ / nyq, output="sos")
        self._mod_gain = _noise_gain(self._mod_sos, int(30 * sr / self.MOD_HZ))
        self._mod_zi = np.zeros((self._mod_sos.shape[0], 2, 2 * n_src))
        self._phase = self._rng["static"].uniform(0, 2 * np.pi, n_src)

        # imagery drive smoothing (fast: the ERD itself, slow: for the beta rebound)
        self._a_fast = math.exp(-1.0 / (self.TAU_FAST_S * sr))
        self._a_slow = math.exp(-1.0 / (self.TAU_SLOW_S * sr))
        self._zi_fast = np.zeros((len(MI_CLASSES), 1))
        self._zi_slow = np.zeros((len(MI_CLASSES), 1))
        self._latency = int(round(self.LATENCY_S * sr))
        self._intervals: list[_Interval] = []
        self._events: list[tuple[int, str]] = []  # pending, sorted by sample

        # schedule
        self._auto = cfg.mode == "cued" and cfg.schedule == "auto"
        self._sched = _AutoSchedule(cfg, self._rng["schedule"]) if self._auto else None
        self._sched_until = 0
        if cfg.mode == "continuous":
            self._events.append((0, str(CODES["experiment_start"])))
            self._vel_sos = signal.butter(2, cfg.velocity_hz / nyq, output="sos")
            self._vel_gain = _noise_gain(self._vel_sos, int(60 * sr / cfg.velocity_hz))
            self._vel_zi = np.zeros((self._vel_sos.shape[0], 2, 2))
            self._velocity = np.zeros(2)

        # artefacts
        st = self._rng["static"]
        eye = mpos["Fpz"] + np.array([0.0, 0.03, -0.04])
        blink_pat = np.exp(-np.linalg.norm(pos - eye, axis=1) / 0.035)
        self._blink_pattern = blink_pat / np.exp(-np.linalg.norm(mpos["Fp1"] - eye) / 0.035)
        t = np.arange(int(round(10 * self.BLINK_TAU_S * sr))) / sr
        tmpl = (t / self.BLINK_TAU_S) ** 2 * np.exp(-t / self.BLINK_TAU_S)
        self._blink_tmpl = tmpl / tmpl.max()
        self._blinks: list[tuple[int, float]] = []
        self._next_blink = self._draw_blink_gap(first=True) if cfg.blink_rate > 0 else None
        self._line_amp = st.uniform(2.0, 6.0, self.n_channels)
        bad = cfg.bad_label
        self._bad_idx = self.labels.index(bad) if bad is not None else None
        self._bad_zi = np.zeros((1, 1))

        self._warm_up()

    # ------------------------------------------------------------------------------ public
    @property
    def n_generated(self) -> int:
        """Samples generated so far (= index of the next sample)."""
        return self._next

    @property
    def stream_labels(self) -> list[str]:
        return self.config.stream_labels

    def cue(self, class_name: str, duration: float, *, mark: bool = True) -> int:
        """Imagine ``class_name`` from the next sample on, for ``duration`` seconds.

        Returns the sample index where the imagery starts; with ``mark`` the class code is emitted
        as an event at that sample.
        """
        if self.config.mode != "cued":
            raise AcquisitionError("cue() needs mode='cued'; continuous mode follows its own velocity")
        if class_name not in MI_CLASSES:
            raise AcquisitionError(f"cue class {class_name!r} unknown; expected one of {list(MI_CLASSES)}")
        if not _is_real(duration) or duration <= 0:
            raise AcquisitionError(f"cue duration {duration!r} invalid; expected > 0 s")
        with self._lock:
            start = self._next
            stop = start + max(1, int(round(duration * self.srate)))
            factor = float(self._rng["external"].uniform(0.85, 1.15))
            self._intervals.append(_Interval(_CLASS_INDEX[class_name], start, stop, factor))
            if mark:
                self._events.append((start, str(CODES[class_name])))
                self._events.sort(key=lambda e: e[0])
        return start

    def read(self, n: int) -> tuple[np.ndarray, list[tuple[int, str]], np.ndarray]:
        """Generate the next ``n`` samples.

        Returns
        -------
        data : ndarray, shape (n_stream_channels, n)
            Microvolts (plus the sample index row when ``counter_channel``).
        events : list of (sample, code str)
            Markers whose sample falls in this block (absolute sample indices).
        truth : ndarray, shape (n_truth, n)
            Continuous: true intended velocity (vx, vy); cued: per configured class, 1 while that
            class is being imagined (cue onset to imagery end), else 0.
        """
        n = int(n)
        if n < 0:
            raise AcquisitionError(f"read size {n} invalid; expected >= 0 samples")
        with self._lock:
            return self._read(n)

    # ------------------------------------------------------------------------------ internals
    def _draw_blink_gap(self, first: bool = False) -> int:
        rng = self._rng["blinks"]
        mean = 60.0 / self.config.blink_rate
        gap = rng.exponential(mean) + (0.0 if first else 0.6)
        return int(round(gap * self.srate))

    def _warm_up(self) -> None:
        """Settle every filter state on its own noise so sample 0 is already stationary."""
        rng = self._rng["warmup"]
        n = int(4 * self.srate)
        w = rng.standard_normal((n, self.n_channels))
        _, self._zi_pink = signal.lfilter(self._b_pink, self._a_pink, w, axis=0, zi=self._zi_pink)
        _, self._mod_zi = signal.sosfilt(
            self._mod_sos, rng.standard_normal((n, self._mod_zi.shape[2])), axis=0, zi=self._mod_zi
        )
        if self.config.mode == "continuous":
            m = int(30 * self.srate / self.config.velocity_hz * 0.1)
            _, self._vel_zi = signal.sosfilt(
                self._vel_sos, rng.standard_normal((m, 2)), axis=0, zi=self._vel_zi
            )

    def _schedule_to(self, end: int) -> None:
        if self._sched is None:
            return
        while self._sched_until < end + self._latency:
            events, interval, trial_end = self._sched.next_trial()
            self._events.extend(events)
            self._intervals.append(interval)
            self._sched_until = trial_end
        self._events.sort(key=lambda e: e[0])

    def _targets(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Imagery targets (n_mi_classes, n) with latency, and truth rows (n_truth, n)."""
        cfg = self.config
        target = np.zeros((len(MI_CLASSES), n))
        if cfg.mode == "continuous":
            w = self._rng["velocity"].standard_normal((n, 2))
            z, self._vel_zi = signal.sosfilt(self._vel_sos, w, axis=0, zi=self._vel_zi)
            vel = np.tanh(0.8 * z / self._vel_gain).T  # (2, n)
            self._velocity = vel[:, -1].copy() if n else self._velocity
            target[_CLASS_INDEX["right_hand"]] = np.maximum(vel[0], 0.0)
            target[_CLASS_INDEX["left_hand"]] = np.maximum(-vel[0], 0.0)
            target[_CLASS_INDEX["feet"]] = vel[1]  # < 0: synchronisation at the vertex
            # the brain follows the intention with a delay: apply it to the drive, not the truth
            return target, vel
        truth = np.zeros((len(cfg.classes), n))
        lat = self._latency
        keep = []
        for iv in self._intervals:
            if iv.stop + lat <= start:
                continue  # finished for good
            keep.append(iv)
            a, b = max(iv.start + lat - start, 0), min(iv.stop + lat - start, n)
            if a < b:
                target[iv.cls, a:b] += iv.factor
            cname = MI_CLASSES[iv.cls]
            if cname in cfg.classes:
                a, b = max(iv.start - start, 0), min(iv.stop - start, n)
                if a < b:
                    truth[cfg.classes.index(cname), a:b] = 1.0
        self._intervals = keep
        return target, truth

    def _read(self, n: int) -> tuple[np.ndarray, list[tuple[int, str]], np.ndarray]:
        cfg, sr = self.config, self.srate
        start, end = self._next, self._next + n
        self._schedule_to(end)
        rng = self._rng

        # background
        w = rng["background"].standard_normal((n, self.n_channels))
        pink, self._zi_pink = signal.lfilter(self._b_pink, self._a_pink, w, axis=0, zi=self._zi_pink)
        x = pink @ self._mix_t
        x *= self.BACKGROUND_UV / self._pink_gain
        x += self.SENSOR_UV * rng["sensor"].standard_normal((n, self.n_channels))

        # imagery drive -> band power of the sources
        target, truth = self._targets(start, n)
        a_f, a_s = self._a_fast, self._a_slow
        fast, self._zi_fast = signal.lfilter([1 - a_f], [1, -a_f], target, axis=1, zi=self._zi_fast)
        slow, self._zi_slow = signal.lfilter([1 - a_s], [1, -a_s], target, axis=1, zi=self._zi_slow)
        e_fast = self._weights @ fast  # (n_src, n) relative power change
        e_slow = self._weights @ slow
        power = 1.0 + e_fast
        if cfg.beta_rebound > 0 and cfg.erd_depth > 0:
            # the slow drive lags the fast one: positive right after the imagery ends
            lag = np.maximum(e_fast[self._is_beta] - e_slow[self._is_beta], 0.0)
            power[self._is_beta] += cfg.beta_rebound * lag / (0.8 * cfg.erd_depth)
        gain = np.sqrt(np.clip(power, 0.02, None))  # amplitude gain (n_src, n)
        n_src = len(self._f0)
        mod, self._mod_zi = signal.sosfilt(
            self._mod_sos, rng["oscillators"].standard_normal((n, 2 * n_src)), axis=0, zi=self._mod_zi
        )
        mod /= self._mod_gain  # (n, 2 * n_src), unit variance
        freq = self._f0[:, None] + self.FREQ_JITTER_HZ * mod[:, :n_src].T  # (n_src, n)
        phase = self._phase[:, None] + np.cumsum(2 * np.pi * freq / sr, axis=1)
        self._phase = np.mod(phase[:, -1], 2 * np.pi) if n else self._phase
        amp = np.exp(self.LOG_AMP_SD * mod[:, n_src:].T - self.LOG_AMP_SD**2)  # mean-square ~1
        src = (self._src_rms * math.sqrt(2))[:, None] * amp * gain * np.sin(phase)
        x += src.T @ self._patterns

        # eye blinks
        if self._next_blink is not None:
            while self._next_blink < end:
                amp = float(rng["blinks"].uniform(80.0, 200.0))
                self._blinks.append((self._next_blink, amp))
                self._next_blink += self._draw_blink_gap()
            L = len(self._blink_tmpl)
            alive = []
            for onset, amp in self._blinks:
                if onset + L <= start:
                    continue
                alive.append((onset, amp))
                a, b = max(onset, start), min(onset + L, end)
                if a < b:
                    x[a - start : b - start] += np.outer(amp * self._blink_tmpl[a - onset : b - onset], self._blink_pattern)
            self._blinks = alive

        # line noise (phase from the absolute sample index)
        idx = np.arange(start, end, dtype=np.float64)
        if cfg.line_freq > 0:
            ph = 2 * np.pi * np.mod(cfg.line_freq * idx / sr, 1.0)
            line = np.sin(ph)
            if 3 * cfg.line_freq < sr / 2:
                line += 0.2 * np.sin(3 * ph)
            x += np.outer(line, self._line_amp)

        # bad channel
        if self._bad_idx is not None:
            b = self._bad_idx
            noise = rng["bad"].standard_normal(n)
            if cfg.bad_kind == "flat":
                x[:, b] = 0.0
            else:
                a_d = math.exp(-1.0 / (2.0 * sr))  # slow electrode drift, unit variance
                drift, self._bad_zi = signal.lfilter(
                    [math.sqrt(1 - a_d**2)], [1, -a_d], noise[None, :], axis=1, zi=self._bad_zi
                )
                x[:, b] += 25.0 * noise + 30.0 * drift[0]

        data = x.T
        if cfg.counter_channel:
            data = np.vstack([data, idx[None, :]])
        # events in this block
        out_events = [e for e in self._events if e[0] < end]
        self._events = [e for e in self._events if e[0] >= end]
        self._next = end
        return np.ascontiguousarray(data), out_events, truth

    @property
    def velocity(self) -> np.ndarray:
        """Latest true intended velocity (vx, vy) in continuous mode."""
        if self.config.mode != "continuous":
            raise AcquisitionError("velocity is only defined in mode='continuous'")
        with self._lock:
            return self._velocity.copy()


# --------------------------------------------------------------------------------------------
# offline
# --------------------------------------------------------------------------------------------


def _default_duration(config: SimulatorConfig, duration: float | None) -> float:
    if duration is None:
        if config.mode == "cued" and config.schedule == "auto":
            return run_duration(config)
        return 60.0
    if not _is_real(duration) or duration <= 0:
        raise AcquisitionError(f"duration {duration!r} invalid; expected > 0 s")
    return float(duration)


def synthesize(
    config: SimulatorConfig, duration: float | None = None
) -> tuple[np.ndarray, list[tuple[int, str]], np.ndarray]:
    """Generate ``duration`` seconds offline (the same samples the streaming simulator sends).

    Parameters
    ----------
    config : SimulatorConfig
    duration : float, optional
        Seconds; default one full auto-schedule run (every trial), or 60 s otherwise.

    Returns
    -------
    data : ndarray, shape (n_stream_channels, n_times)
        Microvolts; a last ``COUNTER`` row (sample index) when ``config.counter_channel``.
    events : list of (sample, code str)
        Markers, e.g. ``(1024, "769")``.
    truth : ndarray, shape (n_truth, n_times)
        See :meth:`EEGGenerator.read`; row names in ``config.truth_labels``.
    """
    duration = _default_duration(config, duration)
    n_total = int(round(duration * config.srate))
    gen = EEGGenerator(config)
    block = max(1, int(10 * config.srate))
    parts, truths, events = [], [], []
    done = 0
    while done < n_total:
        n = min(block, n_total - done)
        d, ev, tr = gen.read(n)
        parts.append(d)
        truths.append(tr)
        events += ev
        done += n
    data = np.concatenate(parts, axis=1) if parts else np.zeros((len(config.stream_labels), 0))
    truth = np.concatenate(truths, axis=1) if truths else np.zeros((len(config.truth_labels), 0))
    return data, events, truth


def simulate_raw(config: SimulatorConfig, duration: float | None = None) -> mne.io.RawArray:
    """:func:`synthesize` as an ``mne.io.RawArray``: volts, ``standard_1005`` montage, annotations.

    Annotations carry marker *names* (``"left_hand"``, ``"trial_start"`` ...); class cues last the
    imagery duration. ``COUNTER`` (if any) is a ``misc`` channel holding the sample index. The
    simulated bad channel is listed in ``raw.info["bads"]`` (so ``picks="eeg"`` leaves it out).
    """
    import mne

    data, events, _ = synthesize(config, duration)
    labels = config.stream_labels
    ch_types = ["eeg"] * len(config.labels) + (["misc"] if config.counter_channel else [])
    info = mne.create_info(labels, config.srate, ch_types)
    scale = np.ones((len(labels), 1))
    scale[: len(config.labels)] = 1e-6
    raw = mne.io.RawArray(data * scale, info, verbose="error")
    pos = _montage_positions()
    montage = mne.channels.make_dig_montage(
        {lab: pos[lab] for lab in config.labels if lab in pos}, coord_frame="head"
    )
    raw.set_montage(montage, on_missing="ignore", verbose="error")
    onsets, durations, names = [], [], []
    for sample, code in events:
        name = name_of(code)
        onsets.append(sample / config.srate)
        durations.append(config.imagery_s if name in MI_CLASSES and config.schedule == "auto" else 0.0)
        names.append(name)
    raw.set_annotations(mne.Annotations(onsets, durations, names))
    if config.bad_label is not None:
        raw.info["bads"] = [config.bad_label]  # ground truth, as a careful operator would mark it
    raw.info["description"] = (
        f"neurodeck simulator: mode={config.mode}, seed={config.seed}, erd_depth={config.erd_depth}, "
        f"bad_channel={config.bad_label} ({config.bad_kind})"
    )
    return raw


# --------------------------------------------------------------------------------------------
# streaming
# --------------------------------------------------------------------------------------------


class Simulator:
    """A simulated amplifier streaming over LSL in real time (or ``speed`` times faster).

    Streams: ``config.name`` (type ``"EEG"``, microvolts, float32 or double64 with the counter),
    ``config.name + "-markers"`` (string codes such as ``"769"``, timestamped at the cue's sample)
    and, in continuous mode, ``config.name + "-truth"`` (type ``"Truth"``, vx/vy).
    Timestamps come from the sample clock: ``start_time + index / srate``.

    Parameters
    ----------
    config : SimulatorConfig, optional
    speed : float
        Real-time factor (2 = twice as fast; timestamps keep the nominal sample spacing).
    source_id : str, optional
        LSL source id of the EEG stream (default unique per instance); markers use
        ``source_id + "-markers"``, truth ``source_id + "-truth"``.
    wait_for_consumers : float
        Seconds to wait for a consumer of the EEG stream before the first sample (0 = don't wait),
        so an inlet opened right after :meth:`start` receives sample 0; then up to 1 s more for a
        consumer of the marker stream (open it first to skip that wait).
    duration : float, optional
        Stream exactly ``round(duration * srate)`` samples, then stop pushing (:attr:`finished`);
        the outlets stay open until :meth:`stop`.

    Examples
    --------
    >>> with Simulator(SimulatorConfig(seed=1)) as sim:  # doctest: +SKIP
    ...     time.sleep(5); print(sim.samples_pushed)
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        speed: float = 1.0,
        source_id: str | None = None,
        wait_for_consumers: float = 0.0,
        duration: float | None = None,
    ):
        self.config = config if config is not None else SimulatorConfig()
        if not _is_real(speed) or not 0.01 <= speed <= 1000:
            raise AcquisitionError(f"simulator speed {speed!r} invalid; expected a factor in 0.01..1000")
        if not _is_real(wait_for_consumers) or wait_for_consumers < 0:
            raise AcquisitionError(
                f"wait_for_consumers {wait_for_consumers!r} invalid; expected >= 0 s"
            )
        if duration is not None and (not _is_real(duration) or duration <= 0):
            raise AcquisitionError(f"simulator duration {duration!r} invalid; expected > 0 s or None")
        self.speed = float(speed)
        self.wait_for_consumers = float(wait_for_consumers)
        self.duration = None if duration is None else float(duration)
        #: samples to stream before stopping by itself (None = until stop())
        self.n_total = None if duration is None else int(round(duration * self.config.srate))
        self.source_id = source_id or f"{self.config.name}-{uuid.uuid4().hex[:12]}"
        self.name = self.config.name
        self.marker_name = self.config.name + "-markers"
        self.truth_name = self.config.name + "-truth"
        self.samples_pushed = 0
        self.markers_pushed = 0
        self.chunks_pushed = 0
        self.last_marker: tuple[int, str] | None = None
        self.start_time: float | None = None
        self.error: BaseException | None = None
        self._gen: EEGGenerator | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._outlets: dict[str, object] = {}

    # -------------------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def finished(self) -> bool:
        """True once ``duration`` worth of samples has been pushed."""
        return self.n_total is not None and self.samples_pushed >= self.n_total

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the streaming thread ends (``duration`` reached, error or stop)."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def start(self) -> Simulator:
        """Create the outlets (resolvable when this returns) and start the streaming thread."""
        from neurodeck.acquisition.outlet import DataOutlet, MarkerOutlet, make_stream_info

        if self.running:
            raise AcquisitionError(f"simulator {self.name!r} is already running")
        cfg = self.config
        self._gen = EEGGenerator(cfg)
        n_eeg = len(cfg.labels)
        units = ["microvolts"] * n_eeg + (["samples"] if cfg.counter_channel else [])
        types = ["EEG"] * n_eeg + (["MISC"] if cfg.counter_channel else [])
        info = make_stream_info(
            cfg.name, "EEG", cfg.stream_labels, cfg.srate,
            fmt="double64" if cfg.counter_channel else "float32",
            source_id=self.source_id, units=units, ch_types=types, manufacturer="neurodeck-simulator",
        )  # fmt: skip
        self._add_locations(info)
        self._outlets = {
            "data": DataOutlet(info, chunk_size=cfg.chunk_size),
            "markers": MarkerOutlet(self.marker_name, source_id=self.source_id + "-markers"),
        }
        if cfg.mode == "continuous":
            tinfo = make_stream_info(
                self.truth_name, "Truth", cfg.truth_labels, cfg.srate, fmt="float32",
                source_id=self.source_id + "-truth", ch_types="truth",
            )  # fmt: skip
            self._outlets["truth"] = DataOutlet(tinfo, chunk_size=cfg.chunk_size)
        self._stop.clear()
        self.error = None
        self.samples_pushed = self.markers_pushed = self.chunks_pushed = 0
        self.last_marker = None
        self.start_time = None
        self._thread = threading.Thread(target=self._run, name=f"simulator-{self.name}", daemon=True)
        self._thread.start()
        logger.info("simulator %r started (source_id %s, %d ch @ %g Hz, speed %g)",
                    self.name, self.source_id, n_eeg, cfg.srate, self.speed)  # fmt: skip
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop streaming and destroy the outlets (inlets then see the streams go away)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # pragma: no cover
                logger.error("simulator thread %r did not stop within %s s", self.name, timeout)
        for outlet in self._outlets.values():
            outlet.close()
        self._outlets = {}
        self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------------------- control
    def cue(self, class_name: str, duration: float, *, mark: bool = True) -> tuple[int, float | None]:
        """Make the simulated brain imagine ``class_name`` now, for ``duration`` seconds.

        The imagery starts at the next sample not yet pushed (at most one chunk from now).

        Returns
        -------
        sample : int
            Sample index where the imagery starts.
        timestamp : float or None
            Its LSL timestamp (``None`` before streaming started).
        """
        if self._gen is None:
            raise AcquisitionError("simulator not started; call start() before cue()")
        sample = self._gen.cue(class_name, duration, mark=mark)
        t0 = self.start_time
        return sample, (None if t0 is None else t0 + sample / self.config.srate)

    def velocity(self) -> np.ndarray:
        """Latest true intended velocity (vx, vy) pushed, continuous mode only."""
        if self._gen is None:
            raise AcquisitionError("simulator not started; call start() first")
        return self._gen.velocity

    # -------------------------------------------------------------------------- internals
    def _add_locations(self, info: object) -> None:
        """Electrode positions (mm) into the desc, as LabRecorder/MNE-LSL expect."""
        try:
            pos = _montage_positions()
            ch = info.desc().child("channels").child("channel")
            while not ch.empty():
                lab = ch.child_value("label")
                if lab in pos:
                    loc = ch.append_child("location")
                    for axis, v in zip("XYZ", pos[lab] * 1000.0):
                        loc.append_child_value(axis, f"{v:.2f}")
                ch = ch.next_sibling()
        except Exception:  # pragma: no cover - metadata only
            logger.debug("could not add channel locations", exc_info=True)

    def _run(self) -> None:
        from neurodeck.acquisition.outlet import local_clock

        cfg = self.config
        gen = self._gen
        data_out = self._outlets["data"]
        marker_out = self._outlets["markers"]
        truth_out = self._outlets.get("truth")
        chunk = cfg.chunk_size
        sr = cfg.srate
        try:
            if self.wait_for_consumers > 0:
                deadline = local_clock() + self.wait_for_consumers
                while not self._stop.is_set() and local_clock() < deadline:
                    if data_out.wait_for_consumers(min(0.1, self.wait_for_consumers)):
                        break
                # give a marker inlet opened just after the EEG inlet a moment to connect too,
                # so the markers of sample 0 reach it
                grace = min(1.0, max(0.0, deadline - local_clock()))
                if grace > 0 and not self._stop.is_set():
                    marker_out.wait_for_consumers(grace)
            t0 = local_clock()
            self.start_time = t0
            rate = sr * self.speed
            while not self._stop.is_set():
                n = chunk if self.n_total is None else min(chunk, self.n_total - gen.n_generated)
                if n <= 0:
                    break
                end = gen.n_generated + n
                due = t0 + end / rate
                delay = due - local_clock()
                if delay > 0 and self._stop.wait(delay):
                    break
                data, events, truth = gen.read(n)
                ts_last = t0 + (end - 1) / sr
                data_out.push_chunk(data.T, ts_last)
                if truth_out is not None:
                    truth_out.push_chunk(truth.T, ts_last)
                self.samples_pushed = end
                self.chunks_pushed += 1
                for sample, code in events:
                    marker_out.push(code, t0 + sample / sr)
                    self.markers_pushed += 1
                    self.last_marker = (sample, code)
        except Exception as exc:  # surfaced via .error and the log, never swallowed
            self.error = exc
            logger.exception("simulator %r stopped on an error", self.name)
