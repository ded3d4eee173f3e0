"""The shared encoder's fan-out, at the media layer: one encode per frame for any number of
receivers, keyframe requests coalesced, a receiver that stops reading cut off (never waited for)
and taken back at a keyframe once it reads again."""

from __future__ import annotations

import asyncio
import fractions
import time

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

from framewire.media.codecs import BitratePolicy, EncodedFrame
from framewire.media.fanout import Fanout, Subscription
from tests import peers

FPS = 50


class Frames(MediaStreamTrack):
    """A source of `count` small frames at FPS, then the end of the stream."""

    kind = "video"

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count, self.sent = count, 0
        self.tenth = asyncio.Event()

    async def recv(self) -> VideoFrame:
        if self.sent >= self.count:
            raise MediaStreamError
        await asyncio.sleep(1 / FPS)
        frame = VideoFrame.from_ndarray(peers.test_pattern(160, 120, self.sent), format="bgr24")
        frame.pts, frame.time_base = self.sent * 1800, fractions.Fraction(1, 90_000)
        self.sent += 1
        if self.sent == 10:
            self.tenth.set()
        return frame


async def read(subscription: Subscription, count: int) -> list[EncodedFrame]:
    return [await asyncio.wait_for(subscription.recv(), 10) for _ in range(count)]


def started(count: int, depth: int = 16) -> tuple[Fanout, Frames]:
    fanout, source = Fanout(depth), Frames(count)
    fanout.feed(source)
    fanout.use_codec("video/VP8", BitratePolicy.for_video(160, 120, FPS))
    return fanout, source


async def test_every_reader_gets_the_same_frames_from_one_encode() -> None:
    fanout, _ = started(200)
    readers = [fanout.subscribe() for _ in range(3)]
    try:
        got = await asyncio.gather(*(read(r, 20) for r in readers))
        assert got[0][0].keyframe and got[0][0].index == 0
        assert [f.index for f in got[0]] == [f.index for f in got[1]] == [f.index for f in got[2]]
        assert all(a is b for a, b in zip(got[0], got[1], strict=True))  # the very same payloads
        assert fanout.frames_encoded <= got[0][-1].index + 1 + 3  # one encode per frame
    finally:
        await fanout.close()


async def test_a_reader_that_stops_is_cut_off_and_rejoins_at_one_keyframe() -> None:
    fanout, _ = started(400)
    steady, stalled = fanout.subscribe(), fanout.subscribe()
    try:
        await read(stalled, 2)
        start = time.monotonic()
        frames = await read(steady, 30)  # `stalled` reads nothing meanwhile
        elapsed = time.monotonic() - start
        assert [f.index for f in frames] == list(range(frames[0].index, frames[0].index + 30))
        assert elapsed < 30 / FPS * 3  # never waited for the stalled reader
        assert stalled.cut_off >= 1 and steady.cut_off == 0

        # Reading again: it asks for a keyframe and resumes there, not in the middle of a GOP;
        # the steady reader gets that same keyframe, and no other (requests are coalesced).
        first = (await read(stalled, 1))[0]
        assert first.keyframe and first.index > frames[-1].index
        more = await read(steady, first.index - frames[-1].index + 5)
        assert [f.index for f in more if f.keyframe] == [first.index]
    finally:
        await fanout.close()


async def test_nothing_is_encoded_without_readers_and_the_end_reaches_them() -> None:
    fanout, source = started(30)
    await asyncio.wait_for(source.tenth.wait(), 10)
    assert fanout.frames_encoded == 0
    reader = fanout.subscribe()
    frames = []
    try:
        while True:
            frames.append(await asyncio.wait_for(reader.recv(), 10))
    except MediaStreamError:
        pass
    assert frames and frames[0].keyframe
    assert fanout.frames_encoded == len(frames)
    assert np.all(np.diff([f.index for f in frames]) == 1)
    await fanout.close()
