"""The one frame-stamp codec (framewire.rtc.stamp): drawn into BGR images (tests, bench) or into
yuv420p planes (the Python client), read back from the luma plane after resizing, a video codec
and a tone change; a damaged stamp reads as None, never as another frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from av import VideoFrame

from framewire.rtc.stamp import MODULUS, luma, read_stamp, stamp, stamp_planes
from tests.peers import test_pattern as pattern


def planes(frame: VideoFrame) -> list[np.ndarray]:
    out = []
    for p in frame.planes:
        rows = np.frombuffer(memoryview(p), np.uint8).reshape(p.height, p.line_size)
        out.append(rows[:, : p.width])
    return out


@pytest.mark.parametrize("number", [0, 1, 255, 256, 9999, MODULUS - 1])
def test_bgr_and_yuv_stamps_read_back_the_same_number(number: int) -> None:
    image = pattern(640, 360, 3)
    stamp(image, number)
    grey = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    assert read_stamp(grey) == number

    frame = VideoFrame.from_ndarray(pattern(640, 360, 3), format="bgr24").reformat(format="yuv420p")
    y, u, v = planes(frame)
    stamp_planes(y, (u, v), number)
    assert read_stamp(luma(frame)) == number
    # Under the stamp the chroma is neutral: the stamp is grey, whatever the picture there.
    rgb = frame.to_ndarray(format="bgr24")[:10, :300].astype(int)
    assert np.abs(rgb.max(axis=2) - rgb.min(axis=2)).mean() < 8


def test_a_stamp_survives_resizing_coding_and_a_tone_change() -> None:
    frame = VideoFrame.from_ndarray(pattern(640, 360, 5), format="bgr24").reformat(format="yuv420p")
    y, u, v = planes(frame)
    stamp_planes(y, (u, v), 1234)
    big = cv2.resize(frame.to_ndarray(format="bgr24"), (1280, 720))
    ok, jpeg = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 40])
    assert ok
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    sepia = cv2.transform(
        decoded, np.array([[0.27, 0.53, 0.13], [0.35, 0.69, 0.17], [0.39, 0.77, 0.19]])
    )
    grey = np.asarray(cv2.cvtColor(sepia.clip(0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY))
    assert read_stamp(grey.astype(np.uint8)) == 1234


def test_no_stamp_or_a_damaged_one_reads_as_none() -> None:
    image = pattern(640, 360, 0)
    grey = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    assert read_stamp(grey) is None
    stamp(image, 777)
    image[:15, 160:176] = 255 - image[:15, 160:176]  # one data cell flipped: the check fails
    grey = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    assert read_stamp(grey) is None
