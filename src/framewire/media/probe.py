"""Client-side probes of the media path: frame stamps (which frame came back, so round trips
are measured honestly) and a keyframe count of a received stream (each one an encoder rebuild
or a picture-loss recovery). Used by bench/latency.py and the latency tests.

A stamp is a row of cells in the top-left corner sized in proportion to the frame (1/40 of its
width, 1/24 of its height), so it survives any resize; the first two cells are always white and
black, and every other cell is read against their midpoint, so it also survives codecs and tone
changes (grades, noir, sepia, cartoon looks). 14 bits of frame number plus a 4-bit check: a
misread is rejected, not mistaken for another frame.
"""

from __future__ import annotations

import queue
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection
from av import VideoFrame

from framewire.media import internals as private
from framewire.models.base import Frame

COUNTER_BITS = 14
CHECK_BITS = 4
CELLS = 2 + COUNTER_BITS + CHECK_BITS
MODULUS = 1 << COUNTER_BITS
_WIDTH_FRACTION = 1 / 40
_HEIGHT_FRACTION = 1 / 24
_MIN_CONTRAST = 48.0
"""Luma levels between the white and black reference cells below which a stamp is unreadable."""

_H264_IDR = 5


def _check(counter: int) -> int:
    return (counter ^ (counter >> 4) ^ (counter >> 8) ^ (counter >> 12)) & ((1 << CHECK_BITS) - 1)


def _bits(number: int) -> list[int]:
    counter = number % MODULUS
    word = (counter << CHECK_BITS) | _check(counter)
    return [1, 0] + [(word >> i) & 1 for i in reversed(range(COUNTER_BITS + CHECK_BITS))]


def _cell_edges(width: int, height: int) -> tuple[list[int], int]:
    """Left edges of the cells (CELLS + 1 boundaries) and the stamp's height, in pixels."""
    cell_w = width * _WIDTH_FRACTION
    return [round(i * cell_w) for i in range(CELLS + 1)], max(2, round(height * _HEIGHT_FRACTION))


def stamp(image: Frame, number: int) -> None:
    """Draw `number` (mod 2**14) into the top-left corner of a BGR image, in place."""
    height, width = image.shape[:2]
    edges, stamp_h = _cell_edges(width, height)
    for i, bit in enumerate(_bits(number)):
        image[:stamp_h, edges[i] : edges[i + 1]] = 255 if bit else 0


def read_stamp(luma: Frame) -> int | None:
    """The frame number (mod 2**14) stamped in a frame, given its luma plane (or a grey image);
    None when no valid stamp is there."""
    height, width = luma.shape[:2]
    edges, stamp_h = _cell_edges(width, height)
    top, bottom = stamp_h // 4, max(stamp_h // 4 + 1, stamp_h * 3 // 4)
    levels = []
    for i in range(CELLS):
        quarter = (edges[i + 1] - edges[i]) // 4
        levels.append(float(luma[top:bottom, edges[i] + quarter : edges[i + 1] - quarter].mean()))
    white, black = levels[0], levels[1]
    if white - black < _MIN_CONTRAST:
        return None
    threshold = (white + black) / 2
    word = 0
    for level in levels[2:]:
        word = (word << 1) | (level > threshold)
    counter, check = word >> CHECK_BITS, word & ((1 << CHECK_BITS) - 1)
    return counter if _check(counter) == check else None


def luma(frame: VideoFrame) -> Frame:
    """The luma plane of a decoded frame: yuv420p's Y plane, no colour conversion."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
    return np.asarray(frame.to_ndarray()[: frame.height], dtype=np.uint8)


def is_keyframe(mime_type: str, data: bytes) -> bool:
    """Whether an encoded frame (as the jitter buffer assembles it) is a keyframe: VP8's
    inverse key-frame bit (RFC 6386 9.1), or an H.264 IDR slice among its NAL units."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        return bool(data) and not data[0] & 1
    if mime == "video/h264":
        return any(part[:1] and part[0] & 0x1F == _H264_IDR for part in data.split(b"\0\0\1"))
    return False


class KeyframeCounter(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue and counts keyframes on their way through."""

    def __init__(self) -> None:
        super().__init__()
        self.keyframes = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is not None:
            codec, encoded = item
            self.keyframes += is_keyframe(codec.mimeType, encoded.data)
        super().put(item, block, timeout)


def count_keyframes(pc: RTCPeerConnection) -> KeyframeCounter:
    """Count the keyframes `pc` receives on its first video transceiver. Call before the
    connection starts (the receiver's decoder thread takes the queue when media begins)."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            counter = KeyframeCounter()
            private.RECEIVER_DECODER_QUEUE.set(transceiver.receiver, counter)
            return counter
    raise ValueError("no video transceiver to count keyframes on")
