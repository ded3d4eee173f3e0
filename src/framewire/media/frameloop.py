"""The frame loop: inbound encoded frames -> decode, model and encode (worker thread) -> paced
outbound track.

Latency first: the receiver's complete encoded frames wait in the leg's `EncodedInbox`, and the
outbound track takes the ones that came since its last frame the moment the encoder asks for one:
a worker thread decodes them (`media.inbound`) and runs the model on the newest, so a slow model
drops frames instead of queueing them, and a `FramePacer` drops the frames a faster client
sends beyond the model's fps. The worker thread does all pixel work (`media.pixels`: to the
model's size and pixel format, none for a yuv420p model, and back to the encoder's yuv420p),
the model, and the encode itself (`PacedTrack.finish`, set by the session's fanout): one thread
hand-off each way per frame.
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
from framewire.media.inbound import Decoded, Encoded, EncodedInbox, InboundDecoder
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


class FrameStats:
    """Counters of one leg's frame loop; latency is an inbound frame complete in the jitter
    buffer -> its output handed to the encoder (decode, model and conversions included).
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
        """Worker-thread seconds spent on this leg's frames (decode, scaling, model, conversion
        and, for a session's own model, the encode)."""
        self.last_inbound: float | None = None
        self._metrics = metrics
        self._arrivals: deque[float] = deque(maxlen=WINDOW_FRAMES)
        self._sent: deque[tuple[float, float]] = deque(maxlen=WINDOW_FRAMES)

    def inbound(self, frame: Decoded) -> None:
        """A frame was decoded (event loop, after the worker thread)."""
        self.frames_in += 1
        self.last_inbound = frame.arrived
        self._arrivals.append(frame.arrived)
        if self._metrics is not None:
            self._metrics.frames_in.inc()
            self._metrics.decode_seconds.observe(frame.decoded_at - frame.arrived)

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
        """An inbound frame was replaced by a newer one before the frame loop could take it."""
        self.dropped()
        self.frames_late += 1
        if self._metrics is not None:
            self._metrics.frames_late.inc()

    def worked(self, seconds: float) -> None:
        """A worker thread spent `seconds` on one frame (decode, scale, model, conversion,
        encode)."""
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


Processed = tuple[list[Decoded], VideoFrame | EncodedFrame | None]
"""What a worker thread made of the frames it took: the decoded ones, and the output of the
newest (None when none decoded)."""


class PacedTrack(MediaStreamTrack):
    """The outbound video: each `recv` takes the inbound frames that came since the last one
    (when the pacer admits the newest) through `_process`: decoded, and the newest through a
    model of one leg here, a shared batched model in `media.batching`."""

    kind = "video"

    def __init__(
        self,
        inbox: EncodedInbox,
        decoder: InboundDecoder,
        spec: ModelSpec,
        stats: FrameStats,
        on_first_frame: Callable[[], None],
        on_fault: Callable[[str], None],
    ) -> None:
        super().__init__()
        self._inbox = inbox
        self._decoder = decoder
        self._spec = spec
        self._stats = stats
        self._on_first_frame = on_first_frame
        self._on_fault = on_fault
        self._pacer = FramePacer(spec.fps)
        self._start: float | None = None
        self.finish: Callable[[VideoFrame], VideoFrame | EncodedFrame] | None = None
        """Set by the consumer (the session's fanout): run in the worker thread on each
        timestamped output frame; what it returns is what `recv` returns."""

    async def _process(self, frames: list[Encoded]) -> Processed:
        """Inbound frames -> decoded -> the newest's model output through `_deliver`, off the
        event loop."""
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

    async def _next_admitted(self) -> tuple[list[Encoded], float]:
        """The inbound frames since the last take, once the pacer lets the newest through, and
        when it arrived. The frames it does not let through wait to be decoded with it."""
        while True:
            try:
                arrived = await self._inbox.newest()
            except EOFError:
                raise MediaStreamError from None
            if self._pacer.admit(arrived):
                return self._inbox.take(), arrived
            self._stats.dropped()

    async def recv(self) -> VideoFrame | EncodedFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        while True:
            frames, arrived = await self._next_admitted()
            first = self._start is None
            try:
                decoded, out = await self._process(frames)
            except StreamViolation as exc:
                self._on_fault("moderation_violation")
                self.stop()
                raise MediaStreamError from exc
            except Exception as exc:  # any other model fault ends the session with reason "error"
                log.warning("model %s failed: %r", self._spec.id, exc)
                self._on_fault("error")
                self.stop()
                raise MediaStreamError from exc
            for frame in decoded:
                self._stats.inbound(frame)
            if out is not None:
                break
        if first:
            self._on_first_frame()
        self._stats.outbound(time.monotonic(), arrived)
        return out

    def stop(self) -> None:
        super().stop()
        self._inbox.end()  # frames that come now are dropped on arrival


class ModelTrack(PacedTrack):
    """A leg's own model (contract v1), run on each frame in a worker thread."""

    def __init__(
        self,
        inbox: EncodedInbox,
        decoder: InboundDecoder,
        model: FrameModel,
        spec: ModelSpec,
        executor: Executor,
        stats: FrameStats,
        on_first_frame: Callable[[], None],
        on_fault: Callable[[str], None],
    ) -> None:
        super().__init__(inbox, decoder, spec, stats, on_first_frame, on_fault)
        self._model = model
        self._executor = executor
        self._pixels = PixelPath(spec, pixel_format_of(model))

    @property
    def model(self) -> FrameModel:
        return self._model

    def _transform(self, frames: list[Encoded]) -> Processed:
        """Worker thread: inbound frames -> decoded -> the newest as model input (spec size,
        the model's pixel format) -> model -> encoder. The model reads its input in place."""
        began = time.monotonic()
        try:
            decoded = self._decoder.decode(frames)
            if not decoded:
                return decoded, None
            image = self._model.process(self._pixels.to_model(decoded[-1].frame))
            return decoded, self._deliver(self._pixels.to_encoder(image))
        finally:
            self._stats.worked(time.monotonic() - began)

    async def _process(self, frames: list[Encoded]) -> Processed:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transform, frames)
