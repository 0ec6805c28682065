"""The online engine: live inlet -> latest window every hop -> decoder -> decision out.

One engine serves the GUI's Online page and ``neurodeck decode`` (headless). It is Qt-free: views
subscribe with :meth:`OnlineEngine.add_decision_listener` / :meth:`add_state_listener` (called on
the engine thread; a Qt view re-emits them as signals).

Windows are taken at exact hop boundaries of the absolute sample index (the same windows that
:func:`decoders.evaluation.pseudo_online` slides over a recording), so online and offline decisions
can be compared one to one. If the engine falls behind by more than ``max_lag_hops`` hops it jumps
to the newest boundary and counts the skipped hops instead of queueing stale work.

Constant work per hop: the decoder's stream (:meth:`decoders.online.OnlineDecoder.open_stream`)
carries the band-pass state from hop to hop and filters only the samples that arrived since the
last window (restarted on a whole padded window at start, after a gap or NaN/Inf, or after a
skip of more than a window); the quality check of the model channels is cleared from per-hop
block statistics (:class:`QualityScreen`) and runs in full only on a window that might be bad.
Per hop the engine reads from the ring buffer only the model channels' new samples, the window's
timestamps and its first samples (the whole window only to restart the filter or to check a
window the screen does not clear). A model that decimates to a working rate
(:func:`decoders.epochs.decimation_factor`) gets hops of whole working samples.
A decoder with only ``decide(window)`` is decided window by window
(:class:`decoders.online.RawWindowStream`).

No stale decisions: after start and after the stream stalled or was lost, the engine is *catching
up*: a window whose last sample is older than ``stale_s`` seconds (on the local clock; the inlet
maps timestamps to it) is backlog, e.g. what liblsl queued before the inlet was pulled, or what a
recovered outlet resends. It is skipped and counted in ``stats.skipped_hops``, so the first
decision is on a fresh window. Catching up ends with the first decided window (or, if the
stream's timestamps never look fresh, after ``2 s`` of skipping, with a warning).

A window that spans a gap in the timestamps (stream lost and recovered), or whose *model* channels
hold NaN/Inf or are flat, saturated or of absurd amplitude (:func:`acquisition.quality.check_window`,
thresholds in microvolts), or whose amplitude shows that a stream without a readable unit is not in
the model's unit (:mod:`app.stream_units`), is not decoded: a
:class:`Decision` with ``valid=False``, a reason naming the bad channels and ``bad_channels`` is
emitted and the output stream gets the values NaN with the ``valid`` channel at 0, so no consumer
mistakes it for a decision. Channels with a declared unit are converted to the model's unit first.
Each published decision carries as LSL timestamp the timestamp of the window's last EEG sample.
"""
from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from neurodeck.acquisition.inlet import Inlet, StreamState
from neurodeck.acquisition.outlet import DecisionOutlet, local_clock
from neurodeck.acquisition.quality import QualityConfig, check_window, unit_to_uv
from neurodeck.app.stream_units import CHECK_SAMPLES, UnitGuard, unit_guard
from neurodeck.decoders.online import RawWindowStream, one_blas_thread

logger = logging.getLogger(__name__)


class Decoder(Protocol):
    """What the engine needs of a decoder (``decoders.online.OnlineDecoder`` provides it)."""

    labels: Sequence[str]

    def stream_picks(self, ch_names: Sequence[str], sfreq: float) -> np.ndarray: ...

    @property
    def window_samples(self) -> int: ...

    def decide(self, window: np.ndarray) -> np.ndarray | None: ...

    # optional: ``open_stream(hop)`` -> an object like decoders.online.DecoderStream


class EngineState(enum.Enum):
    IDLE = "idle"
    WAITING = "waiting for data"
    RUNNING = "running"
    PAUSED = "paused (stream interrupted)"
    STOPPED = "stopped"
    ERROR = "error"


@dataclasses.dataclass(frozen=True)
class Decision:
    """One decoder output.

    Attributes
    ----------
    index : int
        Absolute index (in the inlet's sample count) one past the window's last sample.
    timestamp : float
        LSL timestamp of the window's last sample (local clock).
    values : ndarray, shape (n_outputs,)
        Class probabilities or continuous values; NaN when ``valid`` is False.
    valid : bool
        False when the window was not decodable (``reason`` says why).
    published_at : float
        ``local_clock()`` when the decision was published.
    reason : str
        Why the window was not decoded ("" when valid).
    bad_channels : tuple of str
        Model channels flagged by the quality check (NaN/Inf, flat, saturated, absurd).
    """

    index: int
    timestamp: float
    values: np.ndarray
    valid: bool
    published_at: float
    reason: str = ""
    bad_channels: tuple[str, ...] = ()
    stamp_lead: float = 0.0

    @property
    def latency(self) -> float:
        """Seconds from the window's last sample to publication.

        Measured from the sample's timestamp corrected by ``stamp_lead`` (how far the source's
        stamps were seen ahead of their arrival, :attr:`acquisition.inlet.Inlet.stamp_lead`), so
        a source stamping ahead of time never gives a negative latency.
        """
        return self.published_at - (self.timestamp - self.stamp_lead)


@dataclasses.dataclass
class EngineStats:
    decisions: int = 0
    invalid: int = 0
    skipped_hops: int = 0
    errors: int = 0
    stale_hops: int = 0  # of skipped_hops: backlog windows skipped while catching up
    # per-stage durations of the last decisions, seconds
    read_s: list[float] = dataclasses.field(default_factory=list)
    decide_s: list[float] = dataclasses.field(default_factory=list)
    publish_s: list[float] = dataclasses.field(default_factory=list)
    latency_s: list[float] = dataclasses.field(default_factory=list)

    def percentiles(self, name: str, q=(50, 95, 99)) -> dict[int, float]:
        values = getattr(self, name)
        if not values:
            return {p: float("nan") for p in q}
        return dict(zip(q, np.percentile(values, q).tolist(), strict=True))


DecisionListener = Callable[[Decision], None]
StateListener = Callable[[EngineState, EngineState], None]


class OnlineEngine:
    """Run ``decoder`` on the newest window of ``inlet`` every ``hop_s`` seconds.

    Parameters
    ----------
    decoder : Decoder
        A loaded model (``decoders.online.OnlineDecoder``); its sessions should be warmed up.
    inlet : acquisition.inlet.Inlet
        A started (or to-be-started) EEG inlet. The engine checks its channels and rate against
        the decoder once the stream is known and refuses a mismatch with a clear error.
    hop_s : float
        Seconds between decisions (rounded to whole samples).
    out_name : str or None
        Name of the LSL decision stream; ``None`` publishes nothing (listeners only).
    max_lag_hops : int
        How far behind the engine may fall before it skips to the newest window.
    keep_stats : int
        How many recent per-stage timings to keep (the oldest half is dropped when full).
    quality : acquisition.quality.QualityConfig or None
        Thresholds of the per-window check of the model channels (NaN/Inf, flat, saturated,
        absurd amplitude); ``None`` checks only for NaN/Inf.
    stale_s : float or None
        While catching up (after start or a stall/loss), windows whose last sample is older than
        this are skipped as backlog; None: ``max(0.1, 2 * hop_s)`` seconds.
    """

    def __init__(
        self,
        decoder: Decoder,
        inlet: Inlet,
        *,
        hop_s: float = 0.0625,
        out_name: str | None = "neurodeck-decisions",
        max_lag_hops: int = 2,
        keep_stats: int = 100_000,
        quality: QualityConfig | None = QualityConfig(),  # noqa: B008 - frozen, immutable
        stale_s: float | None = None,
    ):
        if not hop_s > 0:
            raise ValueError(f"hop_s={hop_s!r} invalid; expected > 0 seconds")
        if stale_s is not None and not stale_s > 0:
            raise ValueError(f"stale_s={stale_s!r} invalid; expected > 0 seconds or None")
        self.decoder = decoder
        self.inlet = inlet
        self.hop_s = float(hop_s)
        self.out_name = out_name
        self.max_lag_hops = int(max_lag_hops)
        self.keep_stats = int(keep_stats)
        self.quality = quality
        self.stale_s = max(0.1, 2 * self.hop_s) if stale_s is None else float(stale_s)
        self.stats = EngineStats()
        self.error: BaseException | None = None
        self._state = EngineState.IDLE
        self._decision_listeners: list[DecisionListener] = []
        self._state_listeners: list[StateListener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outlet: DecisionOutlet | None = None
        self._lock = threading.Lock()
        self.last_decision: Decision | None = None
        self._blas_limit = None
        self._hop = 0  # samples per hop, set by start()
        self.units: UnitGuard | None = None  # set by start()

    # ------------------------------------------------------------------ public API
    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def labels(self) -> list[str]:
        return [str(lab) for lab in self.decoder.labels]

    @property
    def hop_samples(self) -> int:
        """Samples between two decisions (``hop_s`` at the stream's rate); known after start()."""
        if self._hop == 0:
            raise RuntimeError("hop_samples is known once the engine has started")
        return self._hop

    def add_decision_listener(self, fn: DecisionListener) -> None:
        self._decision_listeners.append(fn)

    def add_state_listener(self, fn: StateListener) -> None:
        self._state_listeners.append(fn)

    def start(self) -> OnlineEngine:
        """Check the stream against the model, open the output stream, start the thread."""
        if self._thread is not None:
            raise RuntimeError("engine already started")
        desc = self.inlet.description
        self._picks = np.asarray(self.decoder.stream_picks(desc.labels, desc.srate), dtype=int)
        self._window = int(self.decoder.window_samples)
        # whole working samples when the model decimates (OnlineDecoder.hop_samples)
        hop_for = getattr(self.decoder, "hop_samples", None)
        self._hop = (int(hop_for(self.hop_s)) if hop_for is not None
                     else max(1, int(round(self.hop_s * desc.srate))))
        # the decoder's per-stream state (band-pass carried from hop to hop); any object with
        # decide(window) is decided window by window
        open_stream = getattr(self.decoder, "open_stream", None)
        self._stream = open_stream(self._hop) if open_stream else RawWindowStream(self.decoder)
        # a stream that carries its filter decides without the raw window: read only what is new
        self._incremental = not getattr(self._stream, "needs_window", True)
        self._srate = float(desc.srate)
        self._pick_names = [str(desc.labels[i]) for i in self._picks]
        # the model's channels in the model's unit (or a reason per window: app/stream_units.py)
        self.units = unit_guard(desc.units, self._picks, getattr(self.decoder, "unit", "microvolts"),
                                getattr(self.decoder, "calibration_amplitude", None))
        self._to_uv = np.full(len(self._picks), unit_to_uv(self.units.model_unit))
        self._screen = (None if self.quality is None else
                        QualityScreen(self.quality, self._to_uv, self._window, self._hop))
        if self.out_name:
            self._outlet = DecisionOutlet(
                self.out_name, [*self.labels, "valid"], source_id=f"{self.out_name}-{id(self):x}"
            )
        if not self.inlet.running:
            self.inlet.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="neurodeck-engine", daemon=True)
        # One BLAS thread, process-wide, while decoding: per-window linear algebra is small and
        # OpenBLAS workers fighting the acquisition thread for 2 cores made ts-lr ready->published
        # p99 72 ms instead of 7 ms (benchmarks.latency). A limit set inside the engine thread was
        # measured not to help; set here from the starting thread, given back by stop() (shared
        # with threaded replays: whoever leaves first, the other keeps one thread).
        self._blas_limit = contextlib.ExitStack()
        self._blas_limit.enter_context(one_blas_thread())
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the output stream (the inlet is the caller's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("engine thread did not stop within %.1f s", timeout)
            self._thread = None
        if self._outlet is not None:
            self._outlet.close()
            self._outlet = None
        if self._blas_limit is not None:
            self._blas_limit.close()
            self._blas_limit = None
        if self._state is not EngineState.ERROR:
            self._set_state(EngineState.STOPPED)

    def __enter__(self) -> OnlineEngine:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def outlet_info(self):
        """The ``pylsl.StreamInfo`` of the decision stream (None when not publishing)."""
        return None if self._outlet is None else self._outlet.info

    # ------------------------------------------------------------------ the thread
    def _set_state(self, new: EngineState) -> None:
        old, self._state = self._state, new
        if old is new:
            return
        logger.info("engine: %s -> %s", old.value, new.value)
        for fn in list(self._state_listeners):
            try:
                fn(old, new)
            except Exception:  # a view's bug must not stop decoding
                logger.exception("engine state listener failed")

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # surfaced to the user through .error and the state
            self.error = exc
            logger.exception("online engine stopped on an error")
            self._set_state(EngineState.ERROR)

    def _loop(self) -> None:
        W, hop = self._window, self._hop
        # Windows end on multiples of the hop in the inlet's absolute sample index, exactly like
        # decoders.evaluation.sliding_windows; an engine started on a running inlet begins at the
        # newest boundary (nothing counts as skipped before the engine existed).
        first = -(-W // hop) * hop
        n0 = self.inlet.n_received
        next_end = max(first, n0 - n0 % hop)
        self._set_state(EngineState.WAITING)
        catching_up, stale_since = True, None
        while not self._stop.is_set():
            if not self.inlet.wait_for_samples(next_end, timeout=0.05):
                if self.inlet.state in (StreamState.LOST, StreamState.STALLED):
                    catching_up = True  # what comes back first may be backlog
                    if self._state is EngineState.RUNNING:
                        self._set_state(EngineState.PAUSED)
                continue
            n = self.inlet.n_received
            behind = (n - next_end) // hop
            if behind > self.max_lag_hops:
                self.stats.skipped_hops += int(behind)
                next_end += int(behind) * hop
            if catching_up:
                age = local_clock() - float(self.inlet.buffer.read(next_end - 1, next_end)[1][0])
                if age > self.stale_s:
                    now = time.monotonic()
                    stale_since = now if stale_since is None else stale_since
                    if now - stale_since < 2.0:
                        self.stats.skipped_hops += 1
                        self.stats.stale_hops += 1
                        next_end += hop
                        continue
                    logger.warning("engine: the stream's newest samples stay %.2f s old (clock "
                                   "offset?); deciding anyway", age)
                if self.stats.stale_hops:
                    logger.info("engine: skipped %d backlog window(s) so far while catching up",
                                self.stats.stale_hops)
                catching_up, stale_since = False, None
            self._decide_window(next_end)
            next_end += hop

    def _feed(self, end: int, x: np.ndarray, ok: bool) -> None:
        """Bring the decoder's stream filter up to ``end`` with the new samples of ``x``.

        ``x`` holds the newest samples up to ``end`` (the whole window, or a tail holding at least
        what arrived since the last window). The filter carries its state from hop to hop and
        filters only the samples that arrived since the last window. It (re)starts on a whole
        padded window (exactly like a training epoch) when it has no state: at start, after a
        gap, after samples that are not finite (they would poison the state), or when the engine
        skipped more than a window.
        """
        st = self._stream
        if st.end is not None:
            new = end - st.end
            if 0 <= new <= x.shape[1]:
                part = x[:, x.shape[1] - new:]
                if np.isfinite(part).all():
                    st.push(part)
                    return
            st.invalidate()
        if ok and x.shape[1] == self._window:
            st.reset(x, end)

    def _gap_reason(self, ts: np.ndarray) -> str:
        steps = np.diff(ts)
        if steps.size and steps.max() > 1.5 / self._srate + 0.02:
            return f"window spans a {steps.max():.3f} s gap in the stream"
        if steps.size and steps.min() < -0.02:
            return f"window spans a {-steps.min():.3f} s backward timestamp jump (clock reset)"
        return ""

    def _tail(self, end: int) -> np.ndarray | None:
        """The model channels' newest samples up to ``end`` when the stream carries its filter
        (what arrived since its last window, at least the unit check's tail; None: read the whole
        window)."""
        st = self._stream
        if not self._incremental or st.end is None or not 0 < end - st.end:
            return None
        m = max(end - st.end, CHECK_SAMPLES)
        if m >= self._window:
            return None
        return self.inlet.buffer.read(end - m, end, rows=self._picks)[0]

    def _decide_window(self, end: int) -> None:
        """Decide the window ending at ``end`` and publish the decision.

        Per hop, a stream that carries its filter needs only the samples that arrived since its
        last window: those are read (model channels only), converted, screened block by block
        (:class:`QualityScreen`) and pushed; the whole window is read only when the screen is not
        certain the window is clean, or to (re)start the filter. The timestamps of the whole
        window are read every hop (the gap check).
        """
        t0 = time.perf_counter()
        W, buf = self._window, self.inlet.buffer
        ts = buf.read_timestamps(end - W, end)
        x = self._tail(end)
        t_read = time.perf_counter() - t0
        refused = self._gap_reason(ts)  # a gap or the wrong unit: the filter restarts after
        if not refused and x is not None:  # the newest samples only
            x, refused = self.units.apply(x)  # the unit check reads the last CHECK_SAMPLES
            if not refused:
                if self._screen is None:
                    certain = bool(np.isfinite(x).all())
                else:
                    head = None
                    if self._screen.lead:  # the window's first samples before its whole blocks
                        t = time.perf_counter()
                        head = self.units.convert(buf.read(end - W, end - W + self._screen.lead,
                                                           rows=self._picks)[0])
                        t_read += time.perf_counter() - t
                    certain = self._screen.clean(x, end, head)
                if not certain:
                    x = None  # the whole window decides (below)
        reason, bad, values = "", (), None
        if not refused and x is None:  # the whole window
            t = time.perf_counter()
            x = buf.read(end - W, end, rows=self._picks)[0]
            t_read += time.perf_counter() - t
            x, refused = self.units.apply(x)
            if not refused:
                if self._screen is not None:
                    q = None if self._screen.clean(x, end) else check_window(
                        x, self._srate, self.quality, to_uv=self._to_uv, line_noise=False)
                    if q is not None and not q.ok:
                        bad = tuple(q.bad_names(self._pick_names))
                        reason = f"bad model channel(s): {q.summary(self._pick_names)}"
                elif not np.isfinite(x).all():
                    bad = tuple(n for n, ok in zip(self._pick_names, np.isfinite(x).all(axis=1),
                                                   strict=True) if not ok)
                    reason = f"window contains NaN/Inf samples in {', '.join(bad)}"
        if not refused:
            self._feed(end, x, ok=not reason)
            if not reason:
                values = self._stream.decide(x if x.shape[1] == W else None)
                if values is None:
                    reason = "decoder marked the window invalid"
        else:
            reason = refused
            self._stream.invalidate()  # a gap (or units refused): restart on the next clean window
        if values is None and reason != "decoder marked the window invalid":
            # a stateful decoder (Kalman/DKF) still advances in time: predict, no update
            skip = getattr(self.decoder, "skip", None)
            if skip is not None:
                skip()
        t2 = time.perf_counter()
        valid = values is not None
        if not valid:
            values = np.full(len(self.labels), np.nan)
        out = np.append(np.asarray(values, dtype=float), 1.0 if valid else 0.0)
        if self._outlet is not None:
            self._outlet.push(out, float(ts[-1]))
        published = local_clock()
        t3 = time.perf_counter()
        decision = Decision(end, float(ts[-1]), np.asarray(values, float), valid, published, reason,
                            bad, max(0.0, getattr(self.inlet, "stamp_lead", 0.0)))
        self.last_decision = decision
        st = self.stats
        st.decisions += 1
        st.invalid += 0 if valid else 1
        if len(st.read_s) >= self.keep_stats:  # keep the recent ones: drop the oldest half
            for kept in (st.read_s, st.decide_s, st.publish_s, st.latency_s):
                del kept[: max(1, self.keep_stats // 2)]
        if self.keep_stats > 0:
            st.read_s.append(t_read)
            st.decide_s.append(t2 - t0 - t_read)
            st.publish_s.append(t3 - t2)
            st.latency_s.append(decision.latency)
        if valid and self._state is not EngineState.RUNNING:
            self._set_state(EngineState.RUNNING)
        elif not valid and self._state is EngineState.RUNNING and reason.startswith("window spans"):
            self._set_state(EngineState.PAUSED)
        for fn in list(self._decision_listeners):
            try:
                fn(decision)
            except Exception:
                logger.exception("decision listener failed")


class QualityScreen:
    """Per-hop statistics that clear a clean window without re-reading the whole window.

    :func:`acquisition.quality.check_window` makes several passes over the window (at 256 ch @
    2048 Hz, 3 s: ~1.6 M samples, 7-16 ms a hop here). Its checks depend on per-channel sums,
    sums of squares, extremes, counts at the extremes and NaN/Inf counts, all of which add up
    exactly over hop-long blocks aligned on the absolute sample index. Each block's statistics
    are computed once; a window is *certainly clean* when every channel passes every check with
    a margin (1 %: far above the rounding differences of summing per block). Anything else,
    including any NaN/Inf, goes to ``check_window``, which stays the one definition of the
    flags and their reasons.

    Parameters
    ----------
    config : acquisition.quality.QualityConfig
    to_uv : ndarray, shape (n_channels,)
        Factor to microvolts per model channel (0 or NaN: only NaN/Inf checked).
    window, hop : int
        Window length and hop in samples (windows end on multiples of the hop).
    """

    MARGIN = 0.01

    def __init__(self, config: QualityConfig, to_uv: np.ndarray, window: int, hop: int) -> None:
        self.cfg, self.window, self.hop = config, int(window), int(hop)
        self.scale = np.asarray(to_uv, dtype=float)
        self.volt = np.isfinite(self.scale) & (self.scale > 0)
        self.scale_v = self.scale[self.volt]
        self.nb = self.window // self.hop
        self.lead = self.window - self.nb * self.hop  # samples before the window's first block
        n = len(self.scale)
        self._ids = [-1] * self.nb  # absolute block index held by each slot (a list: read per hop)
        self._stats = np.zeros((self.nb, 7, n))  # bad, s1, s2, max, min, n at max, n at min
        self._lead = np.zeros((7, n))
        self._ext = np.zeros((2, n))  # the window's max, min per channel
        self._tot = np.zeros((3, n))  # the window's bad, s1, s2 per channel
        self._n_ext = np.zeros((2, n))  # samples at the window's max, min per channel
        self._all_volt, self._any_volt = bool(self.volt.all()), bool(self.volt.any())
        self.need = max(int(config.clip_min_samples), int(np.ceil(config.clip_fraction * window)))

    @staticmethod
    def _block(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Statistics of a block ``x`` (n_channels, n), shape (7, n_channels), into ``out``."""
        x = x.astype(np.float64, copy=False)
        if out is None:
            out = np.empty((7, len(x)))
        if x.shape[1] == 1:  # one sample (a window's lead, every hop): no reductions
            v = x[:, 0]
            out[1] = v
            np.multiply(v, v, out=out[2])
            out[3] = v
            out[4] = v
            out[5:7] = 1.0  # (0 for a NaN in the passes below: unused, the block is then bad)
            out[0] = ~np.isfinite(v)
            return out
        # the ufuncs' reductions without the wrappers of np.sum, np.max, np.count_nonzero (the
        # same numbers; ~25 % of this function's time per hop)
        np.add.reduce(x, axis=1, out=out[1])
        np.logical_not(np.isfinite(out[1]), out=out[0])
        np.einsum("ij,ij->i", x, x, out=out[2])
        np.maximum.reduce(x, axis=1, out=out[3])
        np.minimum.reduce(x, axis=1, out=out[4])
        np.add.reduce(x == out[3][:, None], axis=1, dtype=np.float64, out=out[5])
        np.add.reduce(x == out[4][:, None], axis=1, dtype=np.float64, out=out[6])
        return out

    def clean(self, window: np.ndarray, end: int, head: np.ndarray | None = None) -> bool:
        """True if ``check_window`` would certainly find no invalidating problem.

        Parameters
        ----------
        window : ndarray, shape (n_channels, m)
            The raw window ending at absolute sample ``end`` (m = window), or its newest m
            samples: then the blocks not screened yet must lie in them (else False: the caller
            screens the whole window) and ``head`` gives the window's first :attr:`lead` samples.
        end : int
        head : ndarray, shape (n_channels, lead), optional
        """
        hop, W = self.hop, self.window
        m = window.shape[1]
        if self.nb == 0 or end % hop or m > W:
            return False
        start = end - m
        b1 = end // hop
        for b in range(b1 - self.nb, b1):
            k = b % self.nb
            if self._ids[k] != b:
                off = b * hop - start
                if off < 0:
                    return False  # not in this tail
                self._block(window[:, off:off + hop], self._stats[k])
                self._ids[k] = b
        # the ufuncs' reductions into preallocated arrays (np.sum/np.max/np.all are wrappers of
        # the same reductions: the same numbers, fewer calls and temporaries per hop)
        st, ext, tot = self._stats, self._ext, self._tot
        np.add.reduce(st[:, :3], axis=0, out=tot)  # bad, s1, s2 per channel
        np.maximum.reduce(st[:, 3], axis=0, out=ext[0])
        np.minimum.reduce(st[:, 4], axis=0, out=ext[1])
        r = self.lead
        if r:
            lead = window[:, :r] if m == W else head
            if lead is None or lead.shape[1] != r:
                return False
            lead = self._block(lead, self._lead)
            tot += lead[:3]
            np.maximum(ext[0], lead[3], out=ext[0])
            np.minimum(ext[1], lead[4], out=ext[1])
        # samples at the window's max, min: the counts of the blocks holding them (whole numbers:
        # exact in any order)
        n_ext = np.add.reduce(st[:, 5:7], axis=0, where=st[:, 3:5] == ext, initial=0.0,
                              out=self._n_ext)
        if r:
            n_ext += (lead[3:5] == ext) * lead[5:7]
        if tot[0].any():
            return False  # NaN/Inf (or overflow): check_window says which and where
        if not self._any_volt:
            return True
        if not self._all_volt:
            v = self.volt
            tot, ext, n_ext = tot[:, v], ext[:, v], n_ext[:, v]
        mean = tot[1] / W
        var = tot[2] / W - mean * mean
        sc, m = self.scale_v, self.MARGIN
        std_uv = np.sqrt(np.maximum(var, 0.0)) * sc
        peak_uv = np.maximum(ext[0] - mean, mean - ext[1]) * sc
        return bool(
            (var > 4 * (4e-8 * mean) ** 2).all()  # check_window's "constant" guard
            and (std_uv > self.cfg.flat_std * (1 + m)).all()
            and (peak_uv < self.cfg.max_amplitude * (1 - m)).all()
            and (n_ext < self.need).all()
        )
