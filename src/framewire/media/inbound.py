"""A leg's inbound video: the jitter buffer's encoded frames, decoded in the model's worker thread.

aiortc decodes each receiver's video in a thread of its own and hands every decoded frame back to
the event loop through an unbounded queue, where the frame loop picks the newest for a worker
thread: three thread hand-offs per frame, and the decoded picture built on one core and read on
another. Here the receiver's decoder queue is an `EncodedInbox` instead: complete encoded frames
wait in it, undecoded, and the worker thread that runs the model decodes them (`InboundDecoder`)
right before it: one hand-off each way per frame, and the picture still in the cache when the
model reads it. aiortc's own decoder thread idles until the receiver stops.

Every frame is decoded (each one is the next one's reference), but only when the worker takes
the frames that came since its last frame; where a keyframe is among them, the frames before it
are not decoded at all. The inbox is bounded: past DECODING_LIMIT undecoded frames (a model
stuck for seconds) they are dropped and a keyframe is asked for, and frames wait for it, so the
decoder never sees a frame whose reference it lacks.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import VideoFrame

from framewire.media.decoders import make_decoder
from framewire.media.probe import is_keyframe

log = logging.getLogger("framewire.media")

DECODING_LIMIT = 64
"""Undecoded frames an inbox holds (3 s at 20 fps) before it drops them for a keyframe."""


@dataclass(frozen=True)
class Encoded:
    """One complete encoded frame from the jitter buffer, and when it was complete."""

    codec: RTCRtpCodecParameters
    frame: JitterFrame
    arrived: float

    @property
    def keyframe(self) -> bool:
        return is_keyframe(self.codec.mimeType, self.frame.data)


@dataclass(frozen=True)
class Decoded:
    """A decoded frame, when its encoded frame was complete, and when it was decoded."""

    frame: VideoFrame
    arrived: float
    decoded_at: float


class EncodedInbox(queue.Queue[Any]):
    """Stands in for an aiortc receiver's decoder queue (`put` runs on the event loop, in the
    receiver's packet handler); the frame loop takes what came since it last took. `None`, put
    when the receiver stops, ends the inbox and reaches aiortc's idle decoder thread, which
    then ends too. `on_late` is told of each frame a newer one replaced before the frame loop
    looked at it; `on_lost` of each frame dropped (the bound, or waiting for a keyframe);
    `ask_keyframe` asks the sender for one."""

    def __init__(
        self,
        on_late: Callable[[], None],
        on_lost: Callable[[], None],
        ask_keyframe: Callable[[], None],
    ) -> None:
        super().__init__()
        self._on_late = on_late
        self._on_lost = on_lost
        self._ask_keyframe = ask_keyframe
        self._pending: list[Encoded] = []
        self._seen = 0
        """How many of the pending frames the frame loop has looked at (and let wait)."""
        self._fresh = asyncio.Event()
        self._awaiting_keyframe = False
        self.ended = False

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            self.end()
            super().put(None, block, timeout)
            return
        if self.ended:
            return
        codec, frame = item
        encoded = Encoded(codec, frame, time.monotonic())
        if self._awaiting_keyframe:
            if not encoded.keyframe:
                self._on_lost()
                return
            self._awaiting_keyframe = False
        if len(self._pending) > self._seen:
            self._on_late()  # the newest frame nobody looked at is replaced by this one
        self._pending.append(encoded)
        if len(self._pending) > DECODING_LIMIT:
            for _ in self._pending:
                self._on_lost()
            self._pending, self._seen = [], 0
            self._awaiting_keyframe = True
            self._ask_keyframe()
            return
        self._fresh.set()

    def end(self) -> None:
        """No more frames: the frame loop's `newest` raises once the pending ones are taken."""
        self.ended = True
        self._fresh.set()

    async def newest(self) -> float:
        """When the newest frame nobody looked at yet arrived (waiting for one). Raises
        EOFError once the inbox has ended."""
        while len(self._pending) <= self._seen:
            if self.ended:
                raise EOFError
            self._fresh.clear()
            await self._fresh.wait()
        self._seen = len(self._pending)
        return self._pending[-1].arrived

    def take(self) -> list[Encoded]:
        """Every frame since the last take, oldest first."""
        taken, self._pending, self._seen = self._pending, [], 0
        return taken


class InboundDecoder:
    """Decodes a leg's inbound frames in whichever worker thread takes them (one batch at a
    time per leg). A frame that fails to decode is skipped, the decoder kept (resetting it
    would fail every frame up to the next keyframe) and `ask_keyframe` called, as aiortc's
    decoder thread does."""

    def __init__(self, ask_keyframe: Callable[[], None]) -> None:
        self._ask_keyframe = ask_keyframe
        self._decoder: Decoder | None = None
        self._codec: str | None = None
        self.failures = 0

    def decode(self, frames: list[Encoded]) -> list[Decoded]:
        """`frames` decoded in order, from the last keyframe among them on."""
        keyframes = [i for i, f in enumerate(frames) if f.keyframe] if len(frames) > 1 else []
        start = keyframes[-1] if keyframes else 0
        decoded: list[Decoded] = []
        for item in frames[start:]:
            if self._decoder is None or item.codec.name != self._codec:
                self._decoder, self._codec = make_decoder(item.codec), item.codec.name
            try:
                out = self._decoder.decode(item.frame)
            except av.FFmpegError as exc:
                self.failures += 1
                log.debug("a %s frame failed to decode: %s", item.codec.name, exc)
                self._ask_keyframe()
                continue
            now = time.monotonic()
            decoded.extend(Decoded(f, item.arrived, now) for f in out if isinstance(f, VideoFrame))
        return decoded
