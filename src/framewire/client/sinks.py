"""Writing received video to a file, off the event loop.

Every frame handed to `write` is encoded, in order, by one worker thread (PyAV releases the GIL
while coding), so a slow disk or encoder never stalls WebRTC. Nothing is dropped: the hand-off
queue is unbounded, which is right for a recording and costs memory only while the encoder
lags. Timestamps are the frames' own (the server's send clock) on a grid of the model's frame
interval (time base 1/fps), so the file plays at the pace the model produced and players and
ffprobe see the model's frame rate (`r_frame_rate`); a frame the server skipped leaves a gap of
one interval, and two frames in one interval are spread to consecutive ones.
"""

from __future__ import annotations

import asyncio
import fractions
import os
import queue
import sys
import threading
from pathlib import Path

import av
from av import VideoFrame

CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx"}
"""Container suffix -> encoder: H.264 in mp4/mov/mkv, VP8 in webm."""
OPTIONS = {
    "libx264": {"preset": "superfast", "crf": "21"},
    "libvpx": {"deadline": "realtime", "cpu-used": "16", "crf": "10", "b": "4M"},
}
"""Measured on 720p model output (one core): x264 superfast 12.6 ms a frame (veryfast 24.7),
VP8 at cpu-used 16 13.3 ms (at 8: 17.7) -- a recording must not starve the live pipeline."""
BACKGROUND_NICE = 10
"""The encoder thread (and the codec threads it starts) yield to the live pipeline; the
hand-off queue absorbs the difference."""


class VideoFileSink:
    """Encodes received frames to `path` (H.264 in .mp4, VP8 in .webm) at `fps`."""

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in CODECS:
            raise ValueError(f"can't write {self.path.name}: use one of {', '.join(CODECS)}")
        self.codec = CODECS[suffix]
        self.fps = fps
        self.frames_written = 0
        self.error: Exception | None = None
        self._queue: queue.SimpleQueue[tuple[VideoFrame, float] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="framewire-sink", daemon=True)
        self._started = False
        self._closed = False

    def write(self, frame: VideoFrame, at: float) -> None:
        """Queue a frame received at `at` (monotonic seconds) for encoding; never blocks."""
        if self._closed:
            return
        if not self._started:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._thread.start()
            self._started = True
        self._queue.put((frame, at))

    async def close(self) -> None:
        """Encode what is queued, finish the file, and wait for the worker."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        if sys.platform == "linux":  # Linux applies this to the calling thread alone
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        try:
            self._encode_all()
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.error = exc
            while self._queue.get() is not None:
                pass  # drain, so close() returns

    def _encode_all(self) -> None:
        first = self._queue.get()
        if first is None:
            return
        frame, _ = first
        width, height = frame.width - frame.width % 2, frame.height - frame.height % 2
        with av.open(os.fspath(self.path), "w") as container:
            rate = fractions.Fraction(self.fps).limit_denominator(1001)
            time_base = 1 / rate
            stream = container.add_stream(self.codec, rate=rate)
            assert isinstance(stream, av.VideoStream)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            stream.options = dict(OPTIONS[self.codec])
            origin: float | None = None
            last_pts = -1
            item: tuple[VideoFrame, float] | None = first
            while item is not None:
                frame, at = item
                seconds = at if frame.pts is None or frame.time_base is None else frame.time
                origin = seconds if origin is None else origin
                pts = max(last_pts + 1, round((seconds - origin) * rate))
                out = frame.reformat(width=width, height=height, format="yuv420p")
                out.pts, out.time_base, last_pts = pts, time_base, pts
                for packet in stream.encode(out):
                    container.mux(packet)
                self.frames_written += 1
                item = self._queue.get()
            for packet in stream.encode(None):
                container.mux(packet)
