"""A test camera whose frames carry their number (framewire.rtc.stamp), so a test can tell
which frame came back and compare it with exactly what was sent."""

from __future__ import annotations

import asyncio
import fractions

import cv2
import numpy as np
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import VideoFrame

from framewire.media.codecs import realtime_vp8
from framewire.media.frameloop import FrameStats
from framewire.media.inbound import EncodedInbox
from framewire.rtc.stamp import read_stamp, stamp
from tests.peers import ClientPeer, PatternTrack, test_pattern


def stamped_pattern(width: int, height: int, number: int) -> np.ndarray:
    """What a StampedCamera sends as frame `number`."""
    image = test_pattern(width, height, number)
    stamp(image, number)
    return image


def stamp_of(image: np.ndarray) -> int | None:
    """The number stamped in a received BGR frame, or None."""
    return read_stamp(np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8))


class StampedCamera(PatternTrack):
    """PatternTrack whose frame N shows the pattern of phase N with N stamped in its corner."""

    async def recv(self) -> VideoFrame:
        frame = await super().recv()
        number = self._count - 1
        out = VideoFrame.from_ndarray(
            stamped_pattern(self.width, self.height, number), format="bgr24"
        )
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    @property
    def sent(self) -> int:
        """Frames handed to the encoder so far."""
        return self._count


def stamped_peer(fps: int = 20, width: int = 320, height: int = 240) -> ClientPeer:
    """A ClientPeer whose camera is a StampedCamera (call before `offer`)."""
    peer = ClientPeer(fps, width, height)
    camera = StampedCamera(fps, width, height)
    peer.pc.getSenders()[0].replaceTrack(camera)
    peer.source = camera
    return peer


VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)


class EncodedFeed:
    """Feeds a frame loop as a receiver does: a StampedCamera's frames, VP8-encoded, each put in
    an inbox as the jitter buffer puts a complete frame. Counts the keyframes asked for."""

    def __init__(self, camera: StampedCamera, stats: FrameStats) -> None:
        self.camera = camera
        self.keyframes_asked = 0
        self.inbox = EncodedInbox(stats.late, stats.dropped, self.ask_keyframe)
        self._task = asyncio.get_running_loop().create_task(self._feed())

    def ask_keyframe(self) -> None:
        self.keyframes_asked += 1

    async def _feed(self) -> None:
        encoder = None
        while True:
            frame = await self.camera.recv()
            yuv = frame.reformat(format="yuv420p")
            encoder = encoder or realtime_vp8(yuv, 1_000_000, self.camera.fps)
            yuv.pts, yuv.time_base = self.camera.sent - 1, fractions.Fraction(1, self.camera.fps)
            data = b"".join(bytes(packet) for packet in encoder.encode(yuv))
            if data:
                self.inbox.put((VP8, JitterFrame(data, frame.pts)))

    def stop(self) -> None:
        self._task.cancel()
        self.camera.stop()
