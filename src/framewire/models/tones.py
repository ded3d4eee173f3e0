"""The gradient-map looks (noir, sepia, colour tints) on yuv420p frames, as the decoder gives them
and the encoder takes them: no colour conversion either way.

Each of these looks maps a pixel's grey level through a colour ramp and mixes the result over the
frame (`effects.noir`, `effects.sepia`, `effects.tint` do it on BGR). BT.601 luma is the grey
level (limited range: grey = (Y - 16) * 255 / 219, whatever the chroma), and mixing is linear,
so the same look in yuv420p is: the ramp's Y, U and V read from tables over the grey level (the
chroma tables at chroma resolution, from the grey averaged over each 2x2 block), mixed plane by
plane. The result matches the BGR look converted to yuv420p to within a few levels (the chroma
of a 2x2 block comes from its mean grey rather than from the mean of its colours; tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

from framewire.models import effects
from framewire.models.base import Frame
from framewire.models.effects import Lut
from framewire.vocabulary import BGR

_LIMITED_BLACK = 16
_LIMITED_SPAN = 219 / 255
"""BT.601 limited-range luma: Y = 16 + grey * 219 / 255."""

_LEVELS = np.arange(256, dtype=np.float32)
_GREY: Lut = np.clip(np.rint((_LEVELS - 16.0) / _LIMITED_SPAN), 0, 255).astype(np.uint8)
"""Limited-range luma -> grey level (what BGR2GRAY gives for the decoded pixel)."""


def planes(frame: Frame) -> tuple[Frame, Frame, Frame]:
    """Views of a yuv420p frame's (height * 3 // 2, width) array: Y, U and V."""
    height, width = frame.shape[0] * 2 // 3, frame.shape[1]
    flat, luma, chroma = frame.reshape(-1), height * width, height * width // 4
    u = flat[luma : luma + chroma].reshape(height // 2, width // 2)
    v = flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2)
    return frame[:height], u, v


@lru_cache(maxsize=64)
def _ramp_tables(ramp: bytes) -> tuple[Lut, Lut, Lut]:
    """A BGR gradient map (grey level -> colour, 256 entries) as grey level -> Y, U and V, by
    the encoder-side conversion itself (cv2's BGR -> I420, BT.601 limited range)."""
    colours = np.frombuffer(ramp, np.uint8).reshape(1, 256, 3)
    blocks = np.ascontiguousarray(np.repeat(np.repeat(colours, 2, axis=1), 2, axis=0))
    y, u, v = planes(np.asarray(cv2.cvtColor(blocks, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8))
    tables = (
        np.ascontiguousarray(y[0, ::2]),
        np.ascontiguousarray(u[0]),
        np.ascontiguousarray(v[0]),
    )
    for table in tables:
        table.flags.writeable = False
    return tables


def _gradient_map(frame: Frame, grey: Frame, ramp: Lut, weight: float) -> Frame:
    """`frame` with the colour `ramp` gives each pixel's `grey` level mixed over it by `weight`."""
    y_table, u_table, v_table = _ramp_tables(np.ascontiguousarray(ramp).tobytes())
    out = np.empty_like(frame)
    y_out, u_out, v_out = planes(out)
    grey_small = cv2.resize(grey, (u_out.shape[1], u_out.shape[0]), interpolation=cv2.INTER_AREA)
    for source, target, level, table in zip(
        planes(frame),
        (y_out, u_out, v_out),
        (grey, grey_small, grey_small),
        (y_table, u_table, v_table),
        strict=True,
    ):
        cv2.LUT(level, table, dst=target)
        if weight < 1.0:
            cv2.addWeighted(source, 1.0 - weight, target, weight, 0.0, dst=target)
    return out


def _grey(frame: Frame) -> Frame:
    """The grey level of every pixel: (Y - 16) * 255 / 219, saturated, in one arithmetic pass
    over the Y plane (a cv2.LUT pass costs several times as much)."""
    y = planes(frame)[0]
    scale = 1.0 / _LIMITED_SPAN
    return np.asarray(cv2.addWeighted(y, scale, y, 0.0, -_LIMITED_BLACK * scale), np.uint8)


@lru_cache(maxsize=16)
def _noir_table(amount: float) -> Lut:
    """Limited-range luma -> the noir contrast curve of its grey level, in one table."""
    table: Lut = effects.noir_lut(amount).reshape(256)[_GREY]
    table.flags.writeable = False
    return table


def noir(frame: Frame, amount: float) -> Frame:
    """`effects.noir` on yuv420p: the contrast curve and vignette on the grey level, colour
    mixed toward neutral (gone from amount 0.6). A neutral ramp needs no tables: grey to luma
    is arithmetic and the chroma is a constant."""
    y, u, v = planes(frame)
    grey = effects.darken_edges(cv2.LUT(y, _noir_table(amount)), 0.5 * amount)
    out = np.empty_like(frame)
    y_out, u_out, v_out = planes(out)
    cv2.convertScaleAbs(grey, dst=y_out, alpha=_LIMITED_SPAN, beta=_LIMITED_BLACK)
    weight = min(1.0, amount / 0.6)
    if weight < 1.0:
        cv2.addWeighted(y, 1.0 - weight, y_out, weight, 0.0, dst=y_out)
    for source, target in ((u, u_out), (v, v_out)):
        cv2.convertScaleAbs(source, dst=target, alpha=1.0 - weight, beta=128 * weight)
    return out


def sepia(frame: Frame, amount: float) -> Frame:
    """`effects.sepia` on yuv420p: the vignetted grey level through the brown-to-cream ramp."""
    grey = effects.darken_edges(_grey(frame), 0.4 * amount)
    return _gradient_map(frame, np.asarray(grey, np.uint8), effects.sepia_lut(amount), amount**0.5)


def tint(frame: Frame, colours: Sequence[BGR], amount: float) -> Frame:
    """`effects.tint` on yuv420p: the grey level through a ramp of the named colours."""
    ramp = effects.tint_lut(tuple(colours))
    return _gradient_map(frame, _grey(frame), ramp, 0.2 + 0.55 * amount)
