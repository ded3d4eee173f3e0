"""Admission that protects quality: take one more session (or bare leg) only when the running
ones will keep their frame rate.

Two kinds of evidence, sampled every SAMPLE_EVERY seconds:
- *Cost*, measured: this process's CPU time per second, its event-loop thread's (the GIL-bound
  Python of RTP, SRTP and asyncio, which one process cannot spread over cores), and the model
  workers' busy time per second, each divided by the legs that stream. The instance's capacity
  is how many such sessions fit, at TARGET_LOAD, in the cores left over by everything else that
  runs on them (the machine's busy time minus this process's: sibling `--workers`, neighbours),
  in one core for the loop, and in its model workers: the next session is refused *before* it
  would push the others below their fps. Until a session has
  streamed, the cost is a prior measured on this machine at start (one 720p frame's decode,
  conversions and encode, times the frame rate, times PATH_OVERHEAD).
- *Live signals*, for what cost cannot predict (a neighbour taking the CPU, a model slower on
  some inputs): event-loop lag, and the ratio of inbound frames that went stale before the
  model took them (`frames_late`). Either over its limit sheds new work until it recovers.
- *Shared models* (contract v2): one batch serves every session of a model id, on a device
  whose work CPU time does not show. The batch loop times its batches (wall clock); a new
  session of that model is refused when the batch with one frame more is predicted (from the
  batch sizes and times seen: `media.batching.batch_seconds`) to take more than TARGET_LOAD of
  the model's frame interval. Sessions of other models are not affected.

`FRAMEWIRE_MAX_SESSIONS`, when set, is a ceiling on top (GPU models: see the README).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import av
import cv2
import numpy as np

from framewire.media.codecs import realtime_vp8
from framewire.media.decoders import FfmpegVp8Decoder
from framewire.media.legs import CapacityFull, Legs
from framewire.media.pixels import encodable

SAMPLE_EVERY = 1.0
WINDOW = 4
"""Samples (seconds) the live signals and costs are judged over."""
TARGET_LOAD = 0.80
"""Share of the cores (and of the model workers) that may be busy: the rest absorbs keyframes,
bursts and the HTTP side. (bench/capacity.py on 2 cores, machine load = server plus other cores
over the cores, clients included: sessions held at up to 82 %, 5 VP8 sessions not at 92 %; at
85 % that 5th VP8 session was admitted or refused by the noise of one window's measurement.)"""
PROBE_EVERY = 0.1
LOOP_LAG_LIMIT = 0.02
"""Event-loop lag (seconds, median of the window's probes every PROBE_EVERY) above which new
work is refused: a loop this late on every other wake-up is saturated, not hiccuping."""
LATE_RATIO_LIMIT = 0.1
"""Share of inbound frames going stale before the model takes them, above which new work is
refused (measured only over windows with at least MIN_FRAMES inbound)."""
MIN_FRAMES = 40
PATH_OVERHEAD = 1.6
"""A session's CPU over its codec work (RTP, SRTP, RTCP, the event loop), from
bench/capacity.py's two tables: the server's CPU per session measured per thread, over the sum
of the codec stages measured alone."""
CALIBRATION_FRAMES = 8
PRIOR_SIZE = (1280, 720, 20)
RETRY_AFTER = "5"
"""Seconds /readyz tells a balancer to wait (the API's 503s say the same)."""


class Overloaded(CapacityFull):
    """Live signals say this instance is behind: no new work until it recovers."""

    def __init__(self, reason: str) -> None:
        RuntimeError.__init__(
            self, f"this instance is overloaded ({reason}); try again later or elsewhere"
        )


@dataclass(frozen=True)
class Cost:
    """What one streaming session uses: CPU cores (the whole process), of them the event-loop
    thread's share (GIL-bound Python: RTP, SRTP, asyncio, HTTP, which one process cannot spread
    over cores), and model workers (their busy time)."""

    cores: float | None
    loop: float = 0.0
    workers: float = 0.0


@dataclass(frozen=True)
class SharedLoad:
    """One shared model's batches, as admission sees them (/readyz `shared_models`)."""

    sessions: int
    """Sessions and bare legs using it, those being set up included (one that has joined its
    batch slot but not finished its set-up counts twice for that moment: the cautious side)."""
    next_batch_ms: float | None
    """Predicted milliseconds of a batch with one session more (None before any batch)."""
    budget_ms: float
    """What a batch may take: TARGET_LOAD of the model's frame interval."""


@dataclass
class Sample:
    at: float
    cpu: float
    machine_cpu: float | None
    loop_cpu: float
    work: float
    frames_in: int
    frames_late: int
    streaming: int
    lags: list[float]


def machine_busy(cpus: set[int]) -> float | None:
    """CPU seconds the cores in `cpus` have been busy, all processes together (Linux
    /proc/stat; guest time is inside user time), or None where that is not available."""
    try:
        with open("/proc/stat") as stat:
            lines = [line.split() for line in stat if line.startswith("cpu")]
    except OSError:
        return None
    busy = 0
    for name, *ticks in lines:
        if name == "cpu" or int(name[3:]) not in cpus:
            continue
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, ticks[:8])
        busy += user + nice + system + irq + softirq + steal
    return busy / os.sysconf("SC_CLK_TCK")


def usable_cpus() -> set[int]:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def calibrate(width: int, height: int, fps: int) -> float:
    """Cores one session of this size costs before its model, measured here: CPU seconds of a
    frame's encode, decode and two conversions, times fps, times PATH_OVERHEAD."""
    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
    scene = np.asarray(cv2.GaussianBlur(noise, (0, 0), 3), dtype=np.uint8)  # photo-like texture
    encoder = realtime_vp8(av.VideoFrame(width, height, "yuv420p"), 1_500_000, fps)
    decoder = FfmpegVp8Decoder().codec  # the receivers' decoder, one thread: this one's CPU
    started = time.thread_time()
    for number in range(CALIBRATION_FRAMES):
        frame = encodable(np.roll(scene, number * 7, axis=1))  # a pan
        frame.pts, frame.time_base = number, fractions.Fraction(1, fps)
        for packet in encoder.encode(frame):
            for decoded in decoder.decode(packet):
                decoded.to_ndarray(format="bgr24")
    per_frame = (time.thread_time() - started) / CALIBRATION_FRAMES
    return per_frame * fps * PATH_OVERHEAD


class Admission:
    """Decides on each new session or bare leg; reports the load for /readyz and /metrics."""

    def __init__(
        self,
        legs: Legs,
        max_sessions: int | None,
        cores: float,
        model_workers: int,
        shed: bool = True,
    ) -> None:
        self.legs = legs
        self.max_sessions = max_sessions
        self.shed = shed
        """False (FRAMEWIRE_SHED_LOAD=false): only FRAMEWIRE_MAX_SESSIONS limits admission."""
        self.cores = cores
        self.model_workers = model_workers
        self.prior: float | None = None
        self.measured: Cost | None = None
        """The last cost per session measured over a steady window."""
        self.measured_with = 0
        """How many sessions streamed through that window."""
        self.others = 0.0
        """Cores busy with everything but this process over the last window (sibling workers,
        other programs): not available to this instance's sessions."""
        self._cpus = usable_cpus()
        self._joining: dict[str, int] = {}
        """Model id -> legs being set up (a batch slot may not be joined yet)."""
        self._samples: deque[Sample] = deque(maxlen=WINDOW + 1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Calibrate the prior (in a thread) and sample for the instance's life."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        self.prior = await asyncio.to_thread(calibrate, *PRIOR_SIZE)
        while True:
            lags = []
            for _ in range(round(SAMPLE_EVERY / PROBE_EVERY)):
                before = time.monotonic()
                await asyncio.sleep(PROBE_EVERY)
                lags.append(max(0.0, time.monotonic() - before - PROBE_EVERY))
            self._samples.append(self._sample(lags))
            self._measure()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _sample(self, lags: list[float]) -> Sample:
        legs = self.legs.all()
        return Sample(
            at=time.monotonic(),
            cpu=time.process_time(),
            machine_cpu=machine_busy(self._cpus),
            loop_cpu=time.thread_time(),  # this runs on the event loop's thread
            work=sum(leg.stats.work_seconds for leg in legs),
            frames_in=sum(leg.stats.frames_in for leg in legs),
            frames_late=sum(leg.stats.frames_late for leg in legs),
            streaming=sum(1 for leg in legs if leg.stats.frames_out > 0),
            lags=lags,
        )

    # evidence -----------------------------------------------------------------------------

    def _measure(self) -> None:
        """Update the per-session cost when the window saw the same sessions stream
        throughout (a session starting or ending mid-window would skew the division)."""
        samples = list(self._samples)
        first, last = samples[0], samples[-1]
        if last.at > first.at and first.machine_cpu is not None and last.machine_cpu is not None:
            own = last.cpu - first.cpu
            self.others = max(0.0, (last.machine_cpu - first.machine_cpu - own)) / (
                last.at - first.at
            )
        if len(samples) <= WINDOW or last.streaming == 0:
            return
        if any(s.streaming != last.streaming for s in samples):
            return
        per = (last.at - first.at) * last.streaming
        self.measured = Cost(
            cores=(last.cpu - first.cpu) / per,
            loop=(last.loop_cpu - first.loop_cpu) / per,
            workers=(last.work - first.work) / per,
        )
        self.measured_with = last.streaming

    @property
    def streaming(self) -> int:
        """Sessions and legs streaming throughout the last measured window."""
        return self._samples[-1].streaming if self._samples else 0

    def session_cost(self) -> Cost:
        """What one streaming session uses: measured, or the prior (cores only) until a
        session has streamed through a whole window."""
        return self.measured if self.measured is not None else Cost(self.prior)

    def capacity(self) -> int | None:
        """Sessions this instance holds at TARGET_LOAD (None: not known yet, no limit but
        FRAMEWIRE_MAX_SESSIONS)."""
        if not self.shed:
            return self.max_sessions
        cost = self.session_cost()
        limits = [] if self.max_sessions is None else [self.max_sessions]
        for used, free in (
            (cost.cores, self.cores * TARGET_LOAD - self.others),
            (cost.loop, TARGET_LOAD),  # one event-loop thread: one core at most
            (cost.workers, self.model_workers * TARGET_LOAD),
        ):
            if used:
                limits.append(max(1, math.floor(free / used)))
        return min(limits) if limits else None

    def loop_lag(self) -> float:
        """Median event-loop lag (seconds) over the window's probes."""
        lags = sorted(lag for s in list(self._samples)[1:] for lag in s.lags)
        return lags[len(lags) // 2] if lags else 0.0

    def overload(self) -> str | None:
        """Why the live signals say no to new work now, or None."""
        samples = list(self._samples)
        if len(samples) < 2 or not self.shed:
            return None
        lag = self.loop_lag()
        if lag > LOOP_LAG_LIMIT:
            return f"event-loop lag {lag * 1000:.0f} ms"
        first, last = samples[0], samples[-1]
        frames = last.frames_in - first.frames_in
        late = last.frames_late - first.frames_late
        if frames >= MIN_FRAMES and late / frames > LATE_RATIO_LIMIT:
            return f"{late / frames:.0%} of inbound frames went stale before the model"
        return None

    def shared_batches(self) -> dict[str, SharedLoad]:
        """Every shared model in use and its batches' load."""
        loads = {}
        for model_id, runner in self.legs.runners().items():
            sessions = runner.sessions + self._joining.get(model_id, 0)
            predicted = runner.predicted_seconds(sessions + 1)
            loads[model_id] = SharedLoad(
                sessions=sessions,
                next_batch_ms=None if predicted is None else round(predicted * 1000, 1),
                budget_ms=round(TARGET_LOAD / runner.spec.fps * 1000, 1),
            )
        return loads

    def report(self) -> dict[str, object]:
        """The load, for /readyz and /metrics."""
        cost = self.session_cost()
        capacity = self.capacity()
        return {
            "sessions": self.legs.count(),
            "streaming": self.streaming,
            "capacity": capacity,
            "free_sessions": None if capacity is None else max(0, capacity - self.legs.count()),
            "core_per_session": None if cost.cores is None else round(cost.cores, 3),
            "other_cores": round(self.others, 3),
            "loop_core_per_session": round(cost.loop, 3),
            "model_workers_per_session": round(cost.workers, 3),
            "cost_measured_with": self.measured_with,
            "loop_lag_ms": round(self.loop_lag() * 1000, 1),
            "overload": self.overload(),
            "shared_models": {m: asdict(load) for m, load in self.shared_batches().items()},
        }

    # decisions ----------------------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why one more session would not be admitted now, or None."""
        reason = self.overload()
        if reason is not None:
            return str(Overloaded(reason))
        capacity = self.capacity()
        if capacity is not None and self.legs.count() >= capacity:
            return str(CapacityFull(capacity))
        return None

    def shared_model_full(self, model_id: str) -> str | None:
        """Why one more session of `model_id` does not fit its shared model's batches, or None
        (not a shared model in use, no batch timed yet, or it fits)."""
        if not self.shed:
            return None
        load = self.shared_batches().get(model_id)
        if load is None or load.next_batch_ms is None or load.next_batch_ms <= load.budget_ms:
            return None
        return (
            f"the shared model {model_id} is full: a batch of {load.sessions + 1} frames "
            f"would take {load.next_batch_ms:.0f} ms, over {load.budget_ms:.0f} ms "
            f"({TARGET_LOAD:.0%} of its frame interval)"
        )

    @contextlib.contextmanager
    def reserve(self, model_id: str) -> Iterator[None]:
        """Hold a place for one new leg of `model_id` across the awaits of its set-up. Raises
        Overloaded (live signals, or a full shared model), or CapacityFull at the measured
        capacity (the API answers both 503 + Retry-After)."""
        reason = self.overload() or self.shared_model_full(model_id)
        if reason is not None:
            raise Overloaded(reason)
        with self.legs.reserve(self.capacity() or sys.maxsize):
            self._joining[model_id] = self._joining.get(model_id, 0) + 1
            try:
                yield
            finally:
                self._joining[model_id] -= 1
                if not self._joining[model_id]:
                    del self._joining[model_id]
