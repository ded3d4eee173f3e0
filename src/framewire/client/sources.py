"""Media sources: what a session sends. A video file, a camera, numpy frames, or any aiortc track.

Files are decoded by PyAV in a worker thread and paced at their own frame rate; cameras are
captured by aiortc's MediaPlayer. Numpy frames (BGR, uint8) come from a sync or async iterator
and are paced at `fps`. Whatever the source, the session wraps it in an `OutboundTrack`, which
counts and timestamps each frame as the encoder takes it and, when asked, stamps the frame
index stamp (framewire.rtc.stamp).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import os
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

from framewire.rtc.stamp import stamp_planes

log = logging.getLogger("framewire.client")

VIDEO_CLOCK = 90_000
BGRFrame = npt.NDArray[np.uint8]
Source = str | os.PathLike[str] | MediaStreamTrack | Iterable[BGRFrame] | AsyncIterable[BGRFrame]
"""What `RealtimeClient.connect` accepts: a file path (or `/dev/videoN` camera), a video track,
or an iterator of BGR frames."""


class ArrayTrack(MediaStreamTrack):
    """A video track from numpy BGR frames, paced in real time at `fps`. A sync iterator is
    advanced in a worker thread, so a slow producer never blocks the event loop."""

    kind = "video"

    def __init__(self, frames: Iterable[BGRFrame] | AsyncIterable[BGRFrame], fps: float) -> None:
        super().__init__()
        self._fps = fps
        self._async: AsyncIterator[BGRFrame] | None = None
        self._sync: Iterator[BGRFrame] | None = None
        if isinstance(frames, AsyncIterable):
            self._async = aiter(frames)
        else:
            self._sync = iter(frames)
        self._count = 0
        self._start: float | None = None

    async def _next(self) -> BGRFrame | None:
        if self._async is not None:
            return await anext(self._async, None)
        assert self._sync is not None
        return await asyncio.to_thread(next, self._sync, None)

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        image = await self._next()
        if image is None:
            self.stop()
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count / self._fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = round(self._count * VIDEO_CLOCK / self._fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class OpenedSource:
    """A source ready to send: its video track, and how long it lasts when that is known."""

    def __init__(
        self,
        track: MediaStreamTrack,
        duration: float | None = None,
        player: MediaPlayer | None = None,
    ) -> None:
        self.track = track
        self.duration = duration
        self._player = player

    def close(self) -> None:
        self.track.stop()
        if self._player is not None and self._player.audio is not None:
            self._player.audio.stop()  # the player's worker runs until all its tracks stop


def open_camera(device: str, fps: float, size: str = "1280x720") -> OpenedSource:
    """A V4L2 camera (Linux), captured at `size` and `fps` by FFmpeg."""
    player = MediaPlayer(
        device, format="v4l2", options={"framerate": f"{fps:g}", "video_size": size}
    )
    if player.video is None:
        raise ValueError(f"{device} has no video")
    return OpenedSource(player.video, None, player)


def open_file(path: str | os.PathLike[str]) -> OpenedSource:
    """A video file, played at its own frame rate."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such video file: {path}")
    track = FileTrack(path)
    return OpenedSource(track, track.duration)


class FileTrack(MediaStreamTrack):
    """A video file's frames, decoded by PyAV in a worker thread at most `AHEAD` frames ahead
    of playback, paced by their own timestamps. (aiortc's MediaPlayer loses a file's last
    frame and queues the audio nobody reads.)"""

    kind = "video"
    AHEAD = 16

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self._container = av.open(os.fspath(path))
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"{path} has no video stream")
        stream = self._container.streams.video[0]
        self.duration: float | None = None
        """Seconds of video, when the container says."""
        if stream.duration is not None and stream.time_base is not None:
            self.duration = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            self.duration = self._container.duration / av.time_base
        self._frames: asyncio.Queue[VideoFrame | None] = asyncio.Queue()
        self._room = threading.Semaphore(self.AHEAD)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start: float | None = None
        self._first_time: float | None = None

    def _decode(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for frame in self._container.decode(video=0):
                self._room.acquire()
                if self._stopping.is_set():
                    return
                loop.call_soon_threadsafe(self._frames.put_nowait, frame)
        except av.FFmpegError as exc:
            log.warning("stopped reading %s: %s", self._container.name, exc)
        finally:
            self._container.close()
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._frames.put_nowait, None)

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._thread is None:
            loop = asyncio.get_running_loop()
            self._thread = threading.Thread(
                target=self._decode, args=(loop,), name="framewire-file", daemon=True
            )
            self._thread.start()
        frame = await self._frames.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        self._room.release()
        at = frame.time or 0.0
        if self._start is None or self._first_time is None:
            self._start, self._first_time = time.monotonic(), at
        delay = self._start + (at - self._first_time) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return frame

    def stop(self) -> None:
        super().stop()
        self._stopping.set()
        self._room.release()
        if self._thread is None:
            self._container.close()


def open_source(source: Source, fps: float) -> OpenedSource:
    """Turn anything `Source` names into a track; numpy frames are paced at `fps`."""
    if isinstance(source, MediaStreamTrack):
        return OpenedSource(source)
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        return open_camera(path, fps) if path.startswith("/dev/video") else open_file(path)
    return OpenedSource(ArrayTrack(source, fps))


class OutboundTrack(MediaStreamTrack):
    """What the peer connection sends: the source's frames, counted as the encoder pulls them,
    optionally marked with their index. `ended` is set when the source runs out."""

    kind = "video"

    def __init__(
        self,
        source: MediaStreamTrack,
        on_sent: Callable[[int, float], None],
        mark: bool,
    ) -> None:
        super().__init__()
        self._source = source
        self._on_sent = on_sent
        self._mark = mark
        self._index = 0
        self.ended = asyncio.Event()

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            frame = await self._source.recv()
        except MediaStreamError:
            self.ended.set()
            self.stop()
            raise
        assert isinstance(frame, VideoFrame)
        if self._mark and frame.width % 2 == 0 and frame.height % 2 == 0:
            frame = self._marked(frame)
        self._on_sent(self._index, time.monotonic())
        self._index += 1
        return frame

    def _marked(self, frame: VideoFrame) -> VideoFrame:
        # A copy: a decoder may still reference the source frame's buffers.
        out = VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
        out.pts, out.time_base = frame.pts, frame.time_base
        stamp_planes(plane(out, 0), (plane(out, 1), plane(out, 2)), self._index)
        return out


def plane(frame: VideoFrame, index: int) -> npt.NDArray[np.uint8]:
    """A numpy view (not a copy) of one plane of a planar frame, without its row padding."""
    p = frame.planes[index]
    rows = np.frombuffer(memoryview(p), np.uint8).reshape(p.height, p.line_size)
    return rows[:, : p.width]
