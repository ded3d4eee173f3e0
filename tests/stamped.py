"""A test camera whose frames carry their number (framewire.rtc.stamp), so a test can tell
which frame came back and compare it with exactly what was sent."""

from __future__ import annotations

import cv2
import numpy as np
from av import VideoFrame

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
