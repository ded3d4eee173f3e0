"""A leg's inbound video waits undecoded for the worker thread that runs the model, and the
decoder never sees a frame whose reference it lacks."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from framewire.media.codecs import realtime_vp8
from framewire.media.inbound import DECODING_LIMIT, EncodedInbox, InboundDecoder

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)


def vp8_stream(count: int, keyframes: tuple[int, ...] = (0,)) -> list[JitterFrame]:
    """`count` encoded 160x120 frames of a moving picture, keyframes where asked."""
    first = av.VideoFrame(160, 120, "yuv420p")
    encoder = realtime_vp8(first, 300_000, 20)
    frames = []
    for number in range(count):
        image = np.full((180, 160), 40 + 2 * number, np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts, frame.time_base = number, fractions.Fraction(1, 20)
        if number in keyframes:
            frame.pict_type = av.video.frame.PictureType.I
        data = b"".join(bytes(p) for p in encoder.encode(frame))
        frames.append(JitterFrame(data, number * 4500))
    return frames


class Counts:
    def __init__(self) -> None:
        self.late = self.lost = self.keyframes = 0

    def inbox(self) -> EncodedInbox:
        return EncodedInbox(self.on_late, self.on_lost, self.ask)

    def on_late(self) -> None:
        self.late += 1

    def on_lost(self) -> None:
        self.lost += 1

    def ask(self) -> None:
        self.keyframes += 1


async def test_frames_wait_undecoded_and_are_taken_together_oldest_first() -> None:
    counts = Counts()
    inbox = counts.inbox()
    stream = vp8_stream(3)
    for frame in stream:
        inbox.put((VP8, frame))
    await inbox.newest()
    taken = inbox.take()
    assert [t.frame for t in taken] == stream
    assert counts.late == 2  # each replaced before the frame loop looked
    decoded = InboundDecoder(counts.ask).decode(taken)
    assert [d.frame.pts for d in decoded] == [0, 4500, 9000]  # every reference decoded


async def test_frames_before_a_keyframe_are_not_decoded() -> None:
    stream = vp8_stream(6, keyframes=(0, 4))
    inbox = Counts().inbox()
    for frame in stream:
        inbox.put((VP8, frame))
    await inbox.newest()
    decoded = InboundDecoder(lambda: None).decode(inbox.take())
    assert [d.frame.pts for d in decoded] == [4 * 4500, 5 * 4500]


async def test_past_the_bound_frames_are_dropped_until_a_keyframe() -> None:
    counts = Counts()
    inbox = counts.inbox()
    stream = vp8_stream(DECODING_LIMIT + 4, keyframes=(0, DECODING_LIMIT + 2))
    for frame in stream[: DECODING_LIMIT + 1]:  # a model stuck while they came
        inbox.put((VP8, frame))
    assert counts.lost == DECODING_LIMIT + 1 and counts.keyframes == 1
    inbox.put((VP8, stream[DECODING_LIMIT + 1]))  # a delta frame: its reference is gone
    assert counts.lost == DECODING_LIMIT + 2
    for frame in stream[DECODING_LIMIT + 2 :]:  # the keyframe asked for, and what follows
        inbox.put((VP8, frame))
    await inbox.newest()
    decoder = InboundDecoder(counts.ask)
    decoded = decoder.decode(inbox.take())
    assert len(decoded) == 2 and decoder.failures == 0


async def test_a_frame_that_fails_to_decode_asks_for_a_keyframe_and_is_skipped() -> None:
    counts = Counts()
    decoder = InboundDecoder(counts.ask)
    inbox = counts.inbox()
    junk = JitterFrame(b"\x00" + bytes(range(200)), 0)  # keyframe flag, not a picture
    inbox.put((VP8, junk))
    for frame in vp8_stream(2):
        inbox.put((VP8, frame))
    await inbox.newest()
    assert decoder.decode(inbox.take()[:1]) == []
    assert decoder.failures == 1 and counts.keyframes == 1


async def test_an_ended_inbox_takes_nothing_more_and_wakes_its_reader() -> None:
    inbox = Counts().inbox()
    waiting = asyncio.ensure_future(inbox.newest())
    await asyncio.sleep(0)  # one turn of the loop: the reader is now waiting
    inbox.put(None)  # the receiver stopped
    with pytest.raises(EOFError):
        await asyncio.wait_for(waiting, 5)
    inbox.put((VP8, vp8_stream(1)[0]))
    assert inbox.take() == []
    assert inbox.get_nowait() is None  # aiortc's own decoder thread is told to end
