"""Encode once, send to many: a session's output is encoded by one encoder and the encoded frames
fan out to every sender that shows it (the session's own peer and its WHEP viewers).

aiortc's senders take pre-encoded data from a track (`RTCRtpSender._next_encoded_frame` calls
its encoder's `pack` for anything that is not a `Frame`); each sender still numbers its own RTP
packets, SSRC and SRTP context, so only the encode is shared. A keyframe request (PLI/FIR) from
any receiver asks the one encoder for one keyframe, which every receiver gets.

Latency first: the pump never waits for a receiver. Each subscription holds a few frames; one
that falls behind (its sender not reading: not connected yet, or stalled) is cut off, loses its
backlog and rejoins at a keyframe once it reads again, so the others never slow down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.codecs.base import Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import Packet, VideoFrame
from av.frame import Frame

from framewire.media.codecs import (
    BitratePolicy,
    EncodedFrame,
    GovernedEncoder,
    governed_encoder,
)
from framewire.media.frameloop import PacedTrack
from framewire.rtc import internals as private

SUBSCRIPTION_DEPTH = 8
"""Encoded frames a receiver may be behind (0.4 s at 20 fps) before it is cut off."""
KEYFRAME_INTERVAL = 0.5
"""Least seconds between requested keyframes: a 720p keyframe costs 4-7 delta frames of
encoding, and ten lossy receivers asking at once must not multiply that (a request made sooner
is kept and served when the interval is up)."""


class Subscription(MediaStreamTrack):
    """A video track of encoded frames from a Fanout, for one sender."""

    kind = "video"

    def __init__(self, fanout: Fanout, depth: int) -> None:
        super().__init__()
        self._fanout = fanout
        self._depth = depth
        self._queue: deque[EncodedFrame] = deque()
        self._ready = asyncio.Event()
        self._synced = False
        self.delivered = 0
        self.cut_off = 0
        """Times this receiver fell `depth` frames behind and lost its backlog."""

    def offer(self, frame: EncodedFrame) -> None:
        """Called by the pump: never blocks, never waits for the reader."""
        if not self._synced:
            if not frame.keyframe:
                return
            self._synced = True
        if len(self._queue) >= self._depth:
            self._queue.clear()
            self._synced = False
            self.cut_off += 1
            return
        self._queue.append(frame)
        self._ready.set()

    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            if not self._synced:
                self._fanout.request_keyframe()  # a reader waiting to (re)join
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()
        self._fanout.unsubscribe(self)


class Repacker(Encoder):
    """Stands in for a sender's encoder: the payloads are encoded already. A receiver's
    bandwidth estimate (REMB) steers the shared encoder only when `steer` is set (the session's
    own peer); viewers' estimates are ignored, so a poor viewer can't degrade the others."""

    def __init__(self, fanout: Fanout, steer: bool) -> None:
        self._fanout = fanout
        self._steer = steer

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise TypeError("a shared-encoder sender only packs encoded frames (its track's)")

    def pack(self, packet: Packet[Any]) -> tuple[list[bytes], int]:
        assert isinstance(packet, EncodedFrame)  # what a Subscription hands the sender
        return packet.payloads, packet.timestamp

    @property
    def target_bitrate(self) -> int:
        encoder = self._fanout.encoder
        return 0 if encoder is None else encoder.target_bitrate

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        if self._steer and self._fanout.encoder is not None:
            self._fanout.encoder.target_bitrate = bitrate


class Fanout:
    """One encoder for a session's output and the subscriptions it feeds."""

    def __init__(self, depth: int = SUBSCRIPTION_DEPTH) -> None:
        self.encoder: GovernedEncoder | None = None
        self.mime_type: str | None = None
        """The codec every receiver must take, once chosen."""
        self.frames_encoded = 0
        self.keyframes_encoded = 0
        self._depth = depth
        self._last_keyframe = -KEYFRAME_INTERVAL
        self._subscriptions: set[Subscription] = set()
        self._source: MediaStreamTrack | None = None
        self._keyframe = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def feed(self, source: MediaStreamTrack) -> None:
        """The frames to encode (the model's output); pumping starts once a codec is chosen. A
        model's track encodes each frame in the worker thread that made it (`_encode`): one
        thread hand-off per frame fewer."""
        self._source = source
        if isinstance(source, PacedTrack):
            source.finish = self._encode
        self._start()

    def use_codec(
        self,
        mime_type: str,
        policy: BitratePolicy,
        on_encoded: Callable[[float, bool], None] | None = None,
    ) -> None:
        """Encode as `mime_type` (the codec the session negotiated) under `policy`; `on_encoded`
        is told each frame's encode time and whether it was a keyframe."""
        if self.encoder is None:
            self.encoder = governed_encoder(mime_type, policy, on_encoded)
            self.mime_type = mime_type if self.encoder is not None else None
            self._start()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self, self._depth)
        if self._closed:
            subscription.stop()
        else:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def attach(self, sender: RTCRtpSender, steer: bool) -> None:
        """Make `sender` (whose track is a subscription) send the shared encoder's frames, and
        route its receiver's keyframe requests to that encoder."""
        private.SENDER_ENCODER.set(sender, Repacker(self, steer))
        # PLI/FIR handling calls this; the stock one flags the sender's own (unused) encoder.
        private.SENDER_SEND_KEYFRAME.set(sender, self.request_keyframe)

    def request_keyframe(self) -> None:
        """The next frame encoded is a keyframe (however many receivers asked)."""
        self._keyframe = True

    def _start(self) -> None:
        if self._task is None and self._source is not None and self.encoder is not None:
            self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        assert self._source is not None and self.encoder is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                received: object = await self._source.recv()
                if isinstance(received, VideoFrame):  # a source that does not encode itself
                    received = await loop.run_in_executor(None, self._encode, received)
                if not isinstance(received, EncodedFrame) or not received.payloads:
                    continue  # nobody watches: the model runs (and bills), nothing is encoded
                for subscription in list(self._subscriptions):
                    subscription.offer(received)
        except MediaStreamError:
            pass
        finally:
            self._end_subscriptions()

    def _encode(self, frame: VideoFrame) -> VideoFrame | EncodedFrame:
        """Worker thread: `frame` encoded, or returned as it is when nobody watches (or the
        fanout is closed). One frame of a session is encoded at a time."""
        encoder = self.encoder
        if encoder is None or not self._subscriptions:
            return frame
        keyframe = self._keyframe_due()
        payloads, timestamp = encoder.encode(frame, keyframe)
        encoded = EncodedFrame(payloads, timestamp, keyframe, self.frames_encoded)
        if payloads:
            self.frames_encoded += 1
            self.keyframes_encoded += keyframe
        return encoded

    def _keyframe_due(self) -> bool:
        """Whether the frame about to be encoded is a keyframe: the first one, or one asked for
        (at most one every KEYFRAME_INTERVAL)."""
        now = time.monotonic()
        if self.frames_encoded and not (
            self._keyframe and now - self._last_keyframe >= KEYFRAME_INTERVAL
        ):
            return False
        self._keyframe, self._last_keyframe = False, now
        return True

    def _end_subscriptions(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.stop()

    async def close(self) -> None:
        """Stop encoding, end every subscription and let go of the encoder and the source at
        once (a 720p codec context holds megabytes; the senders may keep this object longer)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._end_subscriptions()
        self.encoder, self._source = None, None
