"""The frame loop: inbound track -> newest frame -> model (worker thread) -> paced outbound track.

Latency first: the reader drains the inbound track continuously and keeps only the newest
frame (aiortc's receive queue is unbounded); the outbound track pulls one fresh frame per
output slot, so a slow model drops frames instead of queueing them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from fractions import Fraction

import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

from framewire.models.base import Frame, FrameModel, ModelSpec
from framewire.policy.base import StreamViolation

log = logging.getLogger("framewire.media")

VIDEO_CLOCK = 90_000
PACING_SLACK = 0.9
"""Output slots are 0.9/fps apart: caps the rate near fps without adding a slot of delay when
inbound frames arrive a little early."""


class FrameStats:
    """Counters of one leg's frame loop; latency is inbound arrival -> outbound hand-off."""

    def __init__(self) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.frames_dropped = 0
        self.last_inbound: float | None = None
        self._latency_ms: deque[float] = deque(maxlen=1200)

    def record_latency(self, seconds: float) -> None:
        self._latency_ms.append(seconds * 1000.0)

    def snapshot(self) -> dict[str, float | int | None]:
        ordered = sorted(self._latency_ms)

        def pct(p: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "frames_dropped": self.frames_dropped,
            "added_latency_ms_p50": pct(0.5),
            "added_latency_ms_p95": pct(0.95),
        }


class LatestFrameReader:
    """Reads a remote video track as fast as it delivers and keeps only the newest frame."""

    def __init__(self, track: MediaStreamTrack, stats: FrameStats) -> None:
        self._track = track
        self._stats = stats
        self._latest: tuple[VideoFrame, float] | None = None
        self._fresh = asyncio.Event()
        self.ended = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                frame = await self._track.recv()
                now = time.monotonic()
                self._stats.frames_in += 1
                self._stats.last_inbound = now
                if self._latest is not None:
                    self._stats.frames_dropped += 1
                assert isinstance(frame, VideoFrame)
                self._latest = (frame, now)
                self._fresh.set()
        except MediaStreamError:
            pass
        finally:
            self.ended = True
            self._fresh.set()

    async def next(self) -> tuple[VideoFrame, float]:
        """The newest frame not handed out before, and when it arrived."""
        while self._latest is None:
            if self.ended:
                raise MediaStreamError
            self._fresh.clear()
            await self._fresh.wait()
        latest, self._latest = self._latest, None
        return latest

    def stop(self) -> None:
        self._task.cancel()


def drain(track: MediaStreamTrack) -> asyncio.Task[None]:
    """Consume a track we don't use (audio), so aiortc's unbounded queue never grows."""

    async def run() -> None:
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            pass

    return asyncio.get_running_loop().create_task(run())


class ModelTrack(MediaStreamTrack):
    """The outbound video: each `recv` takes the newest inbound frame through the model."""

    kind = "video"

    def __init__(
        self,
        reader: LatestFrameReader,
        model: FrameModel,
        spec: ModelSpec,
        executor: Executor,
        stats: FrameStats,
        on_first_frame: Callable[[], None],
        on_fault: Callable[[str], None],
    ) -> None:
        super().__init__()
        self._reader = reader
        self._model = model
        self._spec = spec
        self._executor = executor
        self._stats = stats
        self._on_first_frame = on_first_frame
        self._on_fault = on_fault
        self._interval = PACING_SLACK / spec.fps
        self._start: float | None = None
        self._next_slot = 0.0

    @property
    def model(self) -> FrameModel:
        return self._model

    def _transform(self, frame: VideoFrame) -> Frame:
        image: Frame = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
        size = (self._spec.width, self._spec.height)
        if (image.shape[1], image.shape[0]) != size:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.uint8)
        return self._model.process(image)

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        delay = self._next_slot - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame, arrived = await self._reader.next()
        loop = asyncio.get_running_loop()
        try:
            image = await loop.run_in_executor(self._executor, self._transform, frame)
        except StreamViolation as exc:
            self._on_fault("moderation_violation")
            self.stop()
            raise MediaStreamError from exc
        except Exception as exc:  # any other model fault ends the session with reason "error"
            log.warning("model %s failed: %r", self._spec.id, exc)
            self._on_fault("error")
            self.stop()
            raise MediaStreamError from exc
        out = VideoFrame.from_ndarray(image, format="bgr24")
        now = time.monotonic()
        if self._start is None:
            self._start = now
            self._on_first_frame()
        out.pts = int((now - self._start) * VIDEO_CLOCK)
        out.time_base = Fraction(1, VIDEO_CLOCK)
        self._next_slot = now + self._interval
        self._stats.frames_out += 1
        self._stats.record_latency(now - arrived)
        return out
