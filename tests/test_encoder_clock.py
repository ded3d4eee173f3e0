"""Each encoded frame goes out with its own capture time as its RTP timestamp, however unevenly
the frames come. Receivers group a frame's packets by timestamp: two frames with one timestamp
(what aiortc's VP8 encoder gave frames closer than a frame interval, as a loaded machine makes
them) decode as one broken frame, and the picture stays broken until the next keyframe."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
from aiortc.codecs.h264 import h264_depayload
from aiortc.codecs.vpx import vp8_depayload

from framewire.media.codecs import BitratePolicy, governed_encoder
from framewire.media.pixels import encodable

CAPTURED_MS = [0, 50, 85, 100, 150, 160, 200, 251, 300, 340]
"""Capture times of frames from a 20 fps source on a busy machine: late, early, bunched."""


@pytest.mark.parametrize("mime", ["video/VP8", "video/H264"])
def test_uneven_frames_keep_their_own_capture_times(mime: str) -> None:
    encoder = governed_encoder(mime, BitratePolicy.for_video(320, 240, 20))
    assert encoder is not None
    rng = np.random.default_rng(1)
    timestamps, sizes = [], []
    for index, ms in enumerate(CAPTURED_MS):
        frame = encodable(rng.integers(0, 256, (240, 320, 3), np.uint8))
        frame.pts, frame.time_base = ms * 90, fractions.Fraction(1, 90_000)
        payloads, timestamp = encoder.encode(frame, index == 0)
        timestamps.append(timestamp)
        depayload = vp8_depayload if mime == "video/VP8" else h264_depayload
        sizes.append(sum(len(depayload(p)) for p in payloads))
    assert timestamps == [ms * 90 for ms in CAPTURED_MS]  # 90 kHz, strictly increasing
    assert all(size > 0 for size in sizes)  # every frame was encoded, none merged or dropped
