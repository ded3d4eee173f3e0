"""Real aiortc peers for tests: a synthetic camera with a known picture, and a client peer that
gathers on loopback only and keeps the frames it receives."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from collections.abc import Callable

import numpy as np
from aiortc import RTCConfiguration
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

from framewire.rtc.peer import CandidateSink, Peer

LOOPBACK = ["127.0.0.1"]


def test_pattern(width: int = 320, height: int = 240, phase: int = 0) -> np.ndarray:
    """Saturated colour bars with a moving white square: colourful, with edges and motion."""
    image = np.zeros((height, width, 3), np.uint8)
    bars = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255), (255, 255, 0)]
    step = width // len(bars)
    for i, colour in enumerate(bars):
        image[:, i * step : (i + 1) * step] = colour
    x = (phase * 4) % (width - 40)
    image[height // 2 - 20 : height // 2 + 20, x : x + 40] = 255
    return image


class PatternTrack(MediaStreamTrack):
    """A camera: the test pattern at `fps`, paced in real time."""

    kind = "video"

    def __init__(self, fps: int = 20, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.fps, self.width, self.height = fps, width, height
        self._count = 0
        self._start: float | None = None
        self.sent_at: dict[int, float] = {}

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._count / self.fps
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = VideoFrame.from_ndarray(
            test_pattern(self.width, self.height, self._count), format="bgr24"
        )
        frame.pts = self._count * (90000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self.sent_at[self._count] = time.monotonic()
        self._count += 1
        return frame


class ClientPeer(Peer):
    """An aiortc client like a browser (framewire.rtc.peer, as the Python client's): sends the
    pattern from loopback, keeps the last frames received."""

    def __init__(
        self,
        fps: int = 20,
        width: int = 320,
        height: int = 240,
        configuration: RTCConfiguration | None = None,
        on_candidate: CandidateSink | None = None,
        on_restart_failed: Callable[[], None] = lambda: None,
    ) -> None:
        self.source = PatternTrack(fps, width, height)
        super().__init__(
            self.source,
            self._keep,
            configuration=configuration,
            interfaces=LOOPBACK,
            on_candidate=on_candidate,
            on_restart_failed=on_restart_failed,
        )
        self.frames: deque[np.ndarray] = deque(maxlen=30)
        self.received = 0
        self._frame_event = asyncio.Event()
        self.local_candidates: list[dict[str, object] | None] = []

    def _keep(self, frame: VideoFrame, at: float) -> None:
        self.frames.append(frame.to_ndarray(format="bgr24"))
        self.received += 1
        self._frame_event.set()

    async def offer(self, trickle: bool = False) -> str:
        """The offer SDP. With `trickle`, candidates are left out of the SDP and kept in
        `local_candidates` (ending with None) for the test to PATCH."""
        sdp = await super().offer()
        if not trickle:
            return sdp
        kept, mid = [], None
        for line in sdp.split("\r\n"):
            if line.startswith("a=mid:"):
                mid = line[6:]
            if line.startswith("a=candidate:"):
                self.local_candidates.append(
                    {"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": 0}
                )
                continue
            if line == "a=end-of-candidates":
                continue
            kept.append(line)
        self.local_candidates.append(None)
        return "\r\n".join(kept)

    def source_frame(self) -> np.ndarray:
        """What the camera sends (at its own resolution)."""
        return test_pattern(self.source.width, self.source.height)

    async def wait_frames(self, count: int, timeout: float = 20.0) -> np.ndarray:
        """Wait until `count` more frames have arrived; return the newest."""
        target = self.received + count
        deadline = time.monotonic() + timeout
        while self.received < target:
            self._frame_event.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"received {self.received} frames, wanted {target}")
            try:
                await asyncio.wait_for(self._frame_event.wait(), remaining)
            except TimeoutError:
                pass
        return self.frames[-1]
