"""Sources, waits and file checks shared by the client tests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import av
import cv2
import numpy as np

from framewire.client import ServerEvent, Session
from tests.peers import test_pattern
from tests.restart_client import drop_path as drop_peer_path


def pattern_frames(width: int = 320, height: int = 240) -> Iterator[np.ndarray]:
    """An endless camera: saturated colour bars with a moving square."""
    return (test_pattern(width, height, i) for i in itertools.count())


E = TypeVar("E", bound=ServerEvent)


async def wait_event(session: Session, kind: type[E], count: int = 1, timeout: float = 20.0) -> E:
    """The `count`-th event of this kind (from the start of the session)."""

    async def find() -> E:
        seen = 0
        async for event in session.events():
            if isinstance(event, kind):
                seen += 1
                if seen == count:
                    return event
        raise AssertionError(f"the stream ended before {count} {kind.__name__}")

    return await asyncio.wait_for(find(), timeout)


@dataclass
class Video:
    """A decoded video file: frame sizes, small copies of the frames, codec, time span."""

    sizes: set[tuple[int, int]]
    frames: list[np.ndarray]
    codec: str
    seconds: float


def read_video(path: Path) -> Video:
    sizes: set[tuple[int, int]] = set()
    frames: list[np.ndarray] = []
    times: list[float] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        for frame in container.decode(stream):
            sizes.add((frame.width, frame.height))
            frames.append(cv2.resize(frame.to_ndarray(format="bgr24"), (320, 180)))
            times.append(float(frame.time or 0.0))
    return Video(sizes, frames, codec, times[-1] - times[0] if times else 0.0)


def drop_path(session: Session) -> None:
    """Lose the client session's current network path both ways."""
    drop_peer_path(session.peer.pc)
