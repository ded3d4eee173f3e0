"""A frame-index marker, so the client can tell which sent frame a received frame was made from.

The server drops frames when it is short of time (latest frame wins) and restamps timestamps, so
neither counting nor pts can pair an output frame with its input. Instead each sent frame gets a
small strip in its bottom-right corner: 11 pairs of grey cells, each pair light-dark or
dark-light for one bit (a sync bit, the frame index modulo 256, two parity bits). Reading
compares the two cells of each pair, which survives resizing, video coding, contrast curves,
colour maps and vignettes. A strip whose pairs are too close to call, or whose sync or parity
bits are wrong, reads as None: that frame is left out of the latency figures rather than
guessed. Looks that repaint small detail (watercolour) hide the strip entirely.

Cells are square, 1/60 of the frame height (12 px at 720p, never below 6 px): the smallest size
measured to survive two VP8 hops at aiortc's starting bitrate (500 kbps) at 720p under every
look but watercolour; 8 px cells lost two frames in three there. At 1280x720 the strip is
264x12 pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DATA_BITS = 8
PERIOD = 1 << DATA_BITS
PAIRS = 1 + DATA_BITS + 2
CELLS = 2 * PAIRS
CELL_OF_HEIGHT = 60
MIN_CELL = 6
LIGHT, DARK = 220, 30
MIN_CONTRAST = 12.0
"""The two cells of every pair must differ by this much (of 255) for the strip to be read."""

Gray = npt.NDArray[np.uint8]


def _bits(code: int) -> list[int]:
    data = [(code >> i) & 1 for i in range(DATA_BITS)]
    return [1, *data, sum(data[0::2]) & 1, sum(data[1::2]) & 1]


@dataclass(frozen=True)
class Layout:
    """Where the strip sits, as fractions of the frame, so it can be found at any output size."""

    cell_w: float
    cell_h: float

    @classmethod
    def for_size(cls, width: int, height: int) -> Layout:
        side = max(MIN_CELL, round(height / CELL_OF_HEIGHT))
        return cls(side / width, side / height)

    def cells(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """(x0, y0, x1, y1) of each cell in a width x height frame, one cell from the corner."""
        cw, ch = self.cell_w * width, self.cell_h * height
        right, bottom = width - cw, height - ch
        left = right - CELLS * cw
        return [
            (round(left + i * cw), round(bottom - ch), round(left + (i + 1) * cw), round(bottom))
            for i in range(CELLS)
        ]


def stamp(luma: Gray, chroma: tuple[Gray, Gray], layout: Layout, index: int) -> None:
    """Draw the strip for frame `index` into a yuv420p frame's planes, in place (grey cells)."""
    height, width = luma.shape
    for (x0, y0, x1, y1), bit in zip(
        layout.cells(width, height), _cells_of(index % PERIOD), strict=True
    ):
        luma[y0:y1, x0:x1] = LIGHT if bit else DARK
        for plane in chroma:
            plane[y0 // 2 : (y1 + 1) // 2, x0 // 2 : (x1 + 1) // 2] = 128


def _cells_of(code: int) -> list[int]:
    return [v for bit in _bits(code) for v in (bit, 1 - bit)]


def read(luma: Gray, layout: Layout) -> int | None:
    """The index modulo PERIOD that the strip in this luma plane carries, or None."""
    height, width = luma.shape
    means = []
    for x0, y0, x1, y1 in layout.cells(width, height):
        # The inner half of the cell: edges blur in coding and resizing.
        qx, qy = max(1, (x1 - x0) // 4), max(1, (y1 - y0) // 4)
        means.append(float(luma[y0 + qy : y1 - qy, x0 + qx : x1 - qx].mean()))
    bits = []
    for first, second in zip(means[0::2], means[1::2], strict=True):
        if abs(first - second) < MIN_CONTRAST:
            return None
        bits.append(1 if first > second else 0)
    code = sum(bit << i for i, bit in enumerate(bits[1 : 1 + DATA_BITS]))
    return code if bits == _bits(code) else None
