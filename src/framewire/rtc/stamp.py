"""Frame stamps: which sent frame a received frame was made from, so round trips are measured
honestly. The server drops frames when it is short of time (latest frame wins) and restamps
timestamps, so neither counting nor pts can pair an output frame with its input. One codec for
every user: the Python client (`mark_frames`), bench/latency.py and the latency tests.

A stamp is a row of cells in the top-left corner sized in proportion to the frame (1/40 of its
width, 1/24 of its height), so it survives any resize; the first two cells are always white and
black, and every other cell is read against their midpoint, so it also survives codecs and tone
changes (grades, noir, sepia, cartoon looks). 14 bits of frame number plus a 4-bit check: a
misread is rejected (None), not mistaken for another frame. At 1280x720 the stamp is 640x30
pixels, grey (no chroma).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from av import VideoFrame

Image = npt.NDArray[np.uint8]

COUNTER_BITS = 14
CHECK_BITS = 4
CELLS = 2 + COUNTER_BITS + CHECK_BITS
MODULUS = 1 << COUNTER_BITS
_WIDTH_FRACTION = 1 / 40
_HEIGHT_FRACTION = 1 / 24
_MIN_CONTRAST = 48.0
"""Luma levels between the white and black reference cells below which a stamp is unreadable."""
_NEUTRAL_CHROMA = 128


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


def stamp(image: Image, number: int) -> None:
    """Draw `number` (mod 2**14) into the top-left corner of a BGR (or grey) image, in place."""
    height, width = image.shape[:2]
    edges, stamp_h = _cell_edges(width, height)
    for i, bit in enumerate(_bits(number)):
        image[:stamp_h, edges[i] : edges[i + 1]] = 255 if bit else 0


def stamp_planes(luma: Image, chroma: tuple[Image, Image], number: int) -> None:
    """The same stamp drawn into a yuv420p frame's planes, in place: the cells in the luma
    plane, neutral chroma under them, so no colour conversion is needed."""
    stamp(luma, number)
    height, width = luma.shape
    edges, stamp_h = _cell_edges(width, height)
    for plane in chroma:
        plane[: (stamp_h + 1) // 2, : (edges[-1] + 1) // 2] = _NEUTRAL_CHROMA


def read_stamp(luma: Image) -> int | None:
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


def luma(frame: VideoFrame) -> Image:
    """The luma plane of a decoded frame: yuv420p's Y plane, no colour conversion."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
    return np.asarray(frame.to_ndarray()[: frame.height], dtype=np.uint8)
