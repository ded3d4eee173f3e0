"""The frame loop: inbound track -> newest frame -> model (worker thread) -> paced outbound track.

Latency first: the reader drains the inbound track continuously and keeps only the newest
frame (aiortc's receive queue is unbounded); the outbound track takes the newest frame the moment
the encoder asks for one, so a slow model drops frames instead of queueing them, and a
`FramePacer` drops the frames a faster client sends beyond the model's fps. The worker thread
does all pixel work (`media.pixels`: to the model's size and pixel format, none for a yuv420p
model, and back to the encoder's yuv420p), the model, and the encode itself
(`PacedTrack.finish`, set by the session's fanout), without a second thread hand-off per frame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from fractions import Fraction

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

from framewire.media.codecs import EncodedFrame
from framewire.media.pixels import PixelPath
from framewire.metrics import Metrics
from framewire.models.base import FrameModel, ModelSpec, StreamViolation, pixel_format_of

log = logging.getLogger("framewire.media")

VIDEO_CLOCK = 90_000
PACING_TOLERANCE = 0.5
"""How early (in frame intervals) a frame may arrive and still be taken: absorbs arrival jitter
without letting the output rate exceed the model's fps."""


STATS_WINDOW = 10.0
"""Seconds of recent frames the rates and latency percentiles of a snapshot cover."""
WINDOW_FRAMES = 1200
"""Bound on the frames remembered for the window (10 s at 120 fps)."""
RTP_TIMESTAMPS = 0xFFFFFFFF
DECODING_LIMIT = 64
"""Bound on the frames remembered between the jitter buffer and the decoder's output."""


class FrameStats:
    """Counters of one leg's frame loop; latency is inbound arrival -> outbound hand-off.
    With `metrics`, every observation also feeds the instance's Prometheus collectors."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.frames_dropped = 0
        self.keyframes_sent = 0
        self.frames_late = 0
        """Inbound frames replaced by a newer one before the model could take them: the loop
        is not keeping up (admission sheds load on their ratio)."""
        self.work_seconds = 0.0
        """Worker-thread seconds spent on this leg's frames (scaling, model, conversion and,
        for a session's own model, the encode)."""
        self.last_inbound: float | None = None
        self._metrics = metrics
        self._arrivals: deque[float] = deque(maxlen=WINDOW_FRAMES)
        self._sent: deque[tuple[float, float]] = deque(maxlen=WINDOW_FRAMES)
        self._released: dict[int, float] = {}
        self._origin: int | None = None

    def released(self, timestamp: int) -> None:
        """The jitter buffer handed the frame with this RTP timestamp to the decoder. (aiortc
        gives the decoded frame, as pts, its timestamp minus the stream's first one.)"""
        if self._origin is None:
            self._origin = timestamp
        self._released[(timestamp - self._origin) & RTP_TIMESTAMPS] = time.monotonic()
        if len(self._released) > DECODING_LIMIT:
            del self._released[next(iter(self._released))]

    def inbound(self, now: float, timestamp: int | None = None) -> None:
        """A decoded frame arrived (`timestamp`: its pts, the RTP timestamp)."""
        self.frames_in += 1
        self.last_inbound = now
        self._arrivals.append(now)
        released = None
        if timestamp is not None:
            released = self._released.pop(timestamp & RTP_TIMESTAMPS, None)
        if self._metrics is not None:
            self._metrics.frames_in.inc()
            if released is not None:
                self._metrics.decode_seconds.observe(now - released)

    def dropped(self) -> None:
        self.frames_dropped += 1
        if self._metrics is not None:
            self._metrics.frames_dropped.inc()

    def outbound(self, now: float, arrived: float) -> None:
        self.frames_out += 1
        self._sent.append((now, now - arrived))
        if self._metrics is not None:
            self._metrics.frames_out.inc()
            self._metrics.frame_latency.observe(now - arrived)

    def encoded(self, seconds: float, keyframe: bool) -> None:
        """The encoder (its own thread) took `seconds` for one frame."""
        self.keyframes_sent += keyframe
        if self._metrics is not None:
            self._metrics.encode_seconds.observe(seconds)
            if keyframe:
                self._metrics.keyframes.inc()

    def late(self) -> None:
        """An inbound frame was replaced by a newer one before the model could take it."""
        self.dropped()
        self.frames_late += 1
        if self._metrics is not None:
            self._metrics.frames_late.inc()

    def worked(self, seconds: float) -> None:
        """A worker thread spent `seconds` on one frame (scale, model, conversion, encode)."""
        self.work_seconds += seconds
        if self._metrics is not None:
            self._metrics.model_seconds.observe(seconds)

    def snapshot(self) -> dict[str, float | int | None]:
        """Totals, plus fps each way and added-latency percentiles over the last 10 s."""
        since = time.monotonic() - STATS_WINDOW
        ordered = sorted(lat * 1000.0 for at, lat in self._sent if at >= since)

        def pct(p: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "frames_dropped": self.frames_dropped,
            "keyframes_sent": self.keyframes_sent,
            "fps_in": rate([at for at in self._arrivals if at >= since]),
            "fps_out": rate([at for at, _ in self._sent if at >= since]),
            "added_latency_ms_p50": pct(0.5),
            "added_latency_ms_p95": pct(0.95),
        }


def rate(times: list[float]) -> float:
    """Events per second over the span of `times` (ascending); 0 with fewer than two."""
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return round((len(times) - 1) / (times[-1] - times[0]), 2)


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
                self._stats.inbound(now, frame.pts)
                if self._latest is not None:
                    self._stats.late()
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


class FramePacer:
    """Decides, by arrival time, which inbound frames to take so the output stays at or below
    `fps` without ever holding a frame back (holding adds latency; dropping does not).

    A frame is taken unless it arrives more than PACING_TOLERANCE intervals before the next
    slot; taking one moves the slot an interval on, or to the frame's arrival if that is later.
    So a window of W seconds takes at most W * fps + 2 frames, a late frame (a keyframe) does not
    cost the frames after it, and a client sending faster than the model (30 fps into a 20 fps
    model) is decimated evenly.
    """

    def __init__(self, fps: float) -> None:
        self._interval = 1.0 / fps
        self._tolerance = PACING_TOLERANCE * self._interval
        self._next: float | None = None

    def admit(self, arrived: float) -> bool:
        """Whether to take a frame that arrived at `arrived` (monotonic seconds)."""
        if self._next is None:
            self._next = arrived + self._interval
            return True
        if arrived < self._next - self._tolerance:
            return False
        self._next = max(self._next + self._interval, arrived)
        return True


def drain(track: MediaStreamTrack) -> asyncio.Task[None]:
    """Consume a track we don't use (audio), so aiortc's unbounded queue never grows."""

    async def run() -> None:
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            pass

    return asyncio.get_running_loop().create_task(run())


class PacedTrack(MediaStreamTrack):
    """The outbound video: each `recv` takes the newest admitted inbound frame through
    `_process` (a model of one leg here, a shared batched model in `media.batching`)."""

    kind = "video"

    def __init__(
        self,
        reader: LatestFrameReader,
        spec: ModelSpec,
        stats: FrameStats,
        on_first_frame: Callable[[], None],
        on_fault: Callable[[str], None],
    ) -> None:
        super().__init__()
        self._reader = reader
        self._spec = spec
        self._stats = stats
        self._on_first_frame = on_first_frame
        self._on_fault = on_fault
        self._pacer = FramePacer(spec.fps)
        self._start: float | None = None
        self.finish: Callable[[VideoFrame], VideoFrame | EncodedFrame] | None = None
        """Set by the consumer (the session's fanout): run in the worker thread on each
        timestamped output frame; what it returns is what `recv` returns."""

    async def _process(self, frame: VideoFrame) -> VideoFrame | EncodedFrame:
        """Inbound frame -> model output through `_deliver`, off the event loop."""
        raise NotImplementedError

    def _deliver(self, out: VideoFrame) -> VideoFrame | EncodedFrame:
        """Worker thread: timestamp an output frame (now, on the 90 kHz clock from the first
        output frame; one frame is in flight at a time) and hand it to `finish`."""
        now = time.monotonic()
        if self._start is None:
            self._start = now
        out.pts = int((now - self._start) * VIDEO_CLOCK)
        out.time_base = Fraction(1, VIDEO_CLOCK)
        return out if self.finish is None else self.finish(out)

    async def _next_admitted(self) -> tuple[VideoFrame, float]:
        """The newest inbound frame the pacer lets through."""
        while True:
            frame, arrived = await self._reader.next()
            if self._pacer.admit(arrived):
                return frame, arrived
            self._stats.dropped()

    async def recv(self) -> VideoFrame | EncodedFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        frame, arrived = await self._next_admitted()
        first = self._start is None
        try:
            out = await self._process(frame)
        except StreamViolation as exc:
            self._on_fault("moderation_violation")
            self.stop()
            raise MediaStreamError from exc
        except Exception as exc:  # any other model fault ends the session with reason "error"
            log.warning("model %s failed: %r", self._spec.id, exc)
            self._on_fault("error")
            self.stop()
            raise MediaStreamError from exc
        if first:
            self._on_first_frame()
        self._stats.outbound(time.monotonic(), arrived)
        return out


class ModelTrack(PacedTrack):
    """A leg's own model (contract v1), run on each frame in a worker thread."""

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
        super().__init__(reader, spec, stats, on_first_frame, on_fault)
        self._model = model
        self._executor = executor
        self._pixels = PixelPath(spec, pixel_format_of(model))

    @property
    def model(self) -> FrameModel:
        return self._model

    def _transform(self, frame: VideoFrame) -> VideoFrame | EncodedFrame:
        """Worker thread: inbound frame -> model input (spec size, the model's pixel format) ->
        model -> encoder. The model reads its input in place."""
        began = time.monotonic()
        try:
            image = self._model.process(self._pixels.to_model(frame))
            return self._deliver(self._pixels.to_encoder(image))
        finally:
            self._stats.worked(time.monotonic() - began)

    async def _process(self, frame: VideoFrame) -> VideoFrame | EncodedFrame:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transform, frame)
