"""The stylizer's effects: pure functions (frame, amount) -> frame on BGR uint8.

Each must stay well under 25 ms at 1280x720 on one core, so per-pixel curves are cv2 LUTs built
once per amount, and expensive filters (edge-preserving smoothing, large blurs) run at half or
quarter resolution and are upscaled. Nothing here is random per frame: the same input and amount
always give the same output, so a still scene does not flicker.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt
from cv2.typing import MatLike

from framewire.models.base import Frame
from framewire.vocabulary import BGR

Lut = npt.NDArray[np.uint8]
"""A cv2.LUT table: shape (256, 1) for one channel, (256, 1, 3) per BGR channel."""

_X = np.linspace(0.0, 1.0, 256, dtype=np.float32)


def _table(curve: npt.NDArray[np.float32]) -> Lut:
    """A read-only uint8 LUT from a curve sampled on [0, 1] and valued in [0, 1]."""
    table: Lut = np.clip(np.rint(curve * 255.0), 0, 255).astype(np.uint8).reshape(256, 1)
    table.flags.writeable = False
    return table


def ramp(stops: Sequence[tuple[float, BGR]], at: npt.NDArray[np.float32] = _X) -> Lut:
    """A gradient map: grey level -> colour, linear between (position, BGR) stops; `at` maps
    each grey level to the position it samples (identity by default)."""
    positions = [p for p, _ in stops]
    channels = [
        np.interp(at, positions, [c[i] / 255.0 for _, c in stops]).astype(np.float32)
        for i in range(3)
    ]
    table = np.dstack([_table(c) for c in channels]).reshape(256, 1, 3)
    table.flags.writeable = False
    return table


def _s_curve(strength: float) -> npt.NDArray[np.float32]:
    """Contrast around mid-grey: 0 is identity, 1 is a full smoothstep."""
    smooth = _X * _X * (3.0 - 2.0 * _X)
    return (_X + strength * (smooth - _X)).astype(np.float32)


def as_frame(image: MatLike) -> Frame:
    """cv2's stubs type every result loosely; state (and ensure) the uint8 frame. No copy."""
    return np.asarray(image, dtype=np.uint8)


def _mix(base: MatLike, styled: MatLike, weight: float) -> Frame:
    """Blend `styled` over `base`; weight 1 returns `styled` itself."""
    if weight >= 1.0:
        return as_frame(styled)
    return as_frame(cv2.addWeighted(base, 1.0 - weight, styled, weight, 0.0))


def _grey3(frame: MatLike) -> MatLike:
    return cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _saturate(frame: MatLike, factor: float) -> MatLike:
    """Push colours away from (factor > 1) or toward (factor < 1) their own grey."""
    return cv2.addWeighted(frame, factor, _grey3(frame), 1.0 - factor, 0.0)


def _scaled(frame: MatLike, divisor: int) -> MatLike:
    height, width = frame.shape[:2]
    size = (max(1, width // divisor), max(1, height // divisor))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _upscaled(small: MatLike, like: MatLike) -> MatLike:
    height, width = like.shape[:2]
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


@lru_cache(maxsize=16)
def _vignette(height: int, width: int, depth: float) -> npt.NDArray[np.uint8]:
    """A single-channel mask, 255 at the centre falling to 255*(1-depth) in the corners."""
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    radius = (xs * xs + ys * ys) / 2.0
    mask = np.clip(np.rint(255.0 * (1.0 - depth * radius**1.5)), 0, 255).astype(np.uint8)
    mask.flags.writeable = False
    return mask


def darken_edges(grey: MatLike, depth: float) -> MatLike:
    mask = _vignette(grey.shape[0], grey.shape[1], round(depth, 3))
    return cv2.multiply(grey, mask, scale=1.0 / 255.0)


# --- mild grade and tints -------------------------------------------------------------------


@lru_cache(maxsize=16)
def _grade_lut(amount: float) -> Lut:
    contrast = _s_curve(0.25 * amount)
    warm = 0.06 * amount
    return np.dstack(
        [_table(contrast * (1.0 - warm)), _table(contrast), _table(contrast * (1.0 + warm))]
    ).reshape(256, 1, 3)


def grade(frame: Frame, amount: float) -> Frame:
    """The fallback look for prompts the stylizer has no word for: a little contrast, warmth
    and saturation, so the user sees that something runs without a style being guessed."""
    return as_frame(_saturate(cv2.LUT(frame, _grade_lut(amount)), 1.0 + 0.2 * amount))


def _luma(colour: BGR) -> float:
    blue, green, red = colour
    return (0.114 * blue + 0.587 * green + 0.299 * red) / 255.0


@lru_cache(maxsize=32)
def tint_lut(colours: tuple[BGR, ...]) -> Lut:
    stops = sorted(colours, key=_luma)
    positions = np.linspace(0.0, 1.0, len(stops) + 2)[1:-1]
    if len(stops) == 1:
        positions = np.array([min(max(_luma(stops[0]), 0.2), 0.8)])
    return ramp([(0.0, (0, 0, 0)), *zip(positions.tolist(), stops, strict=True), (1.0, (255,) * 3)])


def tint(frame: Frame, colours: Sequence[BGR], amount: float) -> Frame:
    """Move hues toward the named colours: blend in a gradient map of the image's grey levels
    through those colours (darker colours take the shadows, lighter ones the highlights)."""
    toned = cv2.LUT(_grey3(frame), tint_lut(tuple(colours)))
    return _mix(frame, toned, 0.2 + 0.55 * amount)


# --- tone styles ----------------------------------------------------------------------------


@lru_cache(maxsize=16)
def noir_lut(amount: float) -> Lut:
    return _table(_s_curve(0.3 + 0.7 * amount) ** (1.0 + 0.3 * amount))


def noir(frame: Frame, amount: float) -> Frame:
    """Black and white with a contrast curve and a vignette; colour is gone from amount 0.6."""
    grey = cv2.LUT(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), noir_lut(amount))
    styled = cv2.cvtColor(darken_edges(grey, 0.5 * amount), cv2.COLOR_GRAY2BGR)
    return _mix(frame, styled, amount / 0.6)


@lru_cache(maxsize=16)
def sepia_lut(amount: float) -> Lut:
    fade = 0.12 * amount
    return ramp(
        [
            (0.0, (18, 32, 52)),
            (fade, (18, 32, 52)),
            (0.4, (30, 75, 125)),
            (0.75, (120, 180, 220)),
            (1.0, (205, 235, 250)),
        ]
    )


def sepia(frame: Frame, amount: float) -> Frame:
    """An old brown-toned print: grey levels mapped through a brown-to-cream ramp, faded blacks."""
    grey = darken_edges(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 0.4 * amount)
    styled = cv2.LUT(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), sepia_lut(amount))
    return _mix(frame, styled, amount**0.5)


@lru_cache(maxsize=16)
def _thermal_lut(amount: float) -> Lut:
    return _table(_s_curve(0.5 * amount))


def thermal(frame: Frame, amount: float) -> Frame:
    """A heat-camera look: soft low-resolution intensity through the inferno colour map."""
    grey = cv2.cvtColor(_scaled(frame, 4), cv2.COLOR_BGR2GRAY)
    grey = cv2.GaussianBlur(cv2.LUT(grey, _thermal_lut(amount)), (5, 5), 0)
    styled = _upscaled(cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO), frame)
    return _mix(frame, styled, amount**0.5)


# --- cyberpunk ------------------------------------------------------------------------------

_MAGENTA_HUE = 150.0
_CYAN_HUE = 90.0


@lru_cache(maxsize=16)
def _neon_luts(amount: float) -> tuple[Lut, Lut, Lut]:
    """Hue pulled to magenta or cyan (whichever is nearer), saturation raised, shadows crushed."""
    hue = np.arange(256, dtype=np.float32)
    to_cyan = (hue > 30.0) & (hue < 120.0)
    target = np.where(to_cyan, _CYAN_HUE, _MAGENTA_HUE)
    delta = (target - hue + 90.0) % 180.0 - 90.0
    pulled = (hue + (0.45 + 0.5 * amount) * delta) % 180.0
    hue_lut: Lut = np.clip(np.rint(pulled), 0, 179).astype(np.uint8).reshape(256, 1)
    hue_lut.flags.writeable = False
    saturation = _table(np.minimum(1.0, _X * (1.3 + amount) + 0.25 * amount))
    value = _table(_s_curve(0.6 * amount) ** (1.0 + 0.4 * amount))
    return hue_lut, saturation, value


_NEON_SPLIT = ramp(
    [(0.0, (40, 5, 15)), (0.35, (150, 20, 110)), (0.7, (220, 60, 230)), (1.0, (255, 255, 180))]
)


def cyberpunk(frame: Frame, amount: float) -> Frame:
    """Neon night: hues split into magenta and cyan, high saturation, dark shadows with a
    magenta-to-cyan split tone, and a soft glow around bright areas."""
    hue, sat, val = cv2.split(cv2.cvtColor(frame, cv2.COLOR_BGR2HSV))
    hue_lut, sat_lut, val_lut = _neon_luts(amount)
    hsv = cv2.merge([cv2.LUT(hue, hue_lut), cv2.LUT(sat, sat_lut), cv2.LUT(val, val_lut)])
    neon = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    split = cv2.LUT(cv2.cvtColor(val, cv2.COLOR_GRAY2BGR), _NEON_SPLIT)
    neon = cv2.addWeighted(neon, 0.7, split, 0.3, 0.0)
    small = _scaled(neon, 4)
    bright = cv2.threshold(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), 170, 255, cv2.THRESH_TOZERO)[1]
    glow = cv2.GaussianBlur(cv2.bitwise_and(small, small, mask=bright), (0, 0), 6)
    styled = cv2.scaleAdd(_upscaled(glow, frame), 0.45 * amount, neon)
    return _mix(frame, styled, amount**0.5)


# --- structure styles -----------------------------------------------------------------------


@lru_cache(maxsize=16)
def _cel_luts(amount: float) -> tuple[Lut, Lut]:
    """Cel shading: value in three flat tones (shadow, mid, light) joined by short ramps, so a
    tone border is a clean line, not a jagged one; skin and most lit surfaces fall in the light
    tone. And a mild saturation boost. Fixed tables, so tones never drift."""
    edges = np.array([0.0, 0.25, 0.48, 1.0], np.float32)
    levels = np.array([0.22, 0.6, 0.93], np.float32)
    width = 0.05
    value = np.full_like(_X, levels[0])
    for border, low, high in zip(edges[1:-1], levels[:-1], levels[1:], strict=True):
        step = np.clip((_X - border) / width + 0.5, 0.0, 1.0)
        value += (high - low) * step * step * (3.0 - 2.0 * step)
    saturation = np.minimum(1.0, _X * (1.1 + 0.3 * amount) + 0.04)
    return _table(value.astype(np.float32)), _table(saturation.astype(np.float32))


def _outlines(grey: MatLike, amount: float) -> MatLike:
    """Ink lines where regions meet: Canny on the flattened image at low resolution, keeping only
    long connected contours (a wrinkle or a texture speck draws none), softly upscaled later."""
    edges = cv2.Canny(grey, 100, 200)
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
    min_length = max(8, grey.shape[0] // 14)
    long_enough = (stats[:, cv2.CC_STAT_AREA] >= min_length).astype(np.uint8) * 255
    long_enough[0] = 0
    lines: MatLike = long_enough[labels].astype(np.uint8)
    return lines


def anime(frame: Frame, amount: float) -> Frame:
    """Cel-shaded cartoon: the picture flattened into regions of one colour (repeated
    edge-preserving smoothing at half resolution), value in a few tones with vivid colour,
    and dark outlines only along long region borders (found at quarter resolution)."""
    sigma = 30 + 20 * amount
    flat = cv2.bilateralFilter(cv2.medianBlur(_scaled(frame, 2), 5), 5, sigma, 3)
    flat = cv2.medianBlur(cv2.bilateralFilter(flat, 5, sigma, 3), 5)
    hue, sat, val = cv2.split(cv2.cvtColor(flat, cv2.COLOR_BGR2HSV))
    value_lut, sat_lut = _cel_luts(amount)
    toned = cv2.cvtColor(
        cv2.merge([hue, cv2.LUT(sat, sat_lut), cv2.LUT(val, value_lut)]), cv2.COLOR_HSV2BGR
    )
    lines = _outlines(cv2.cvtColor(_scaled(flat, 2), cv2.COLOR_BGR2GRAY), amount)
    ink = _upscaled(cv2.GaussianBlur(lines, (3, 3), 0), frame)
    keep = cv2.convertScaleAbs(ink, alpha=-(1.2 + 0.6 * amount), beta=255)
    cel = cv2.multiply(
        _upscaled(toned, frame), cv2.cvtColor(keep, cv2.COLOR_GRAY2BGR), scale=1 / 255
    )
    return _mix(frame, cel, 0.3 + amount)


@lru_cache(maxsize=16)
def _pencil_lut(amount: float) -> Lut:
    """Graphite on paper: lines darkened by a gamma, paper slightly warm."""
    return ramp([(0.0, (50, 45, 45)), (1.0, (238, 245, 248))], at=_X ** (1.0 + 1.5 * amount))


def sketch(frame: Frame, amount: float) -> Frame:
    """Pencil drawing: colour-dodge the grey image with its blurred inverse (grey / blur),
    which leaves white paper in flat regions and graphite strokes along edges and texture."""
    # A light blur first (wider on bigger frames): sensor-level grain would draw strokes that
    # crawl as the camera moves.
    sigma = 0.6 * max(1.0, frame.shape[1] / 640)
    grey = cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (0, 0), sigma)
    blurred = _upscaled(cv2.GaussianBlur(_scaled(grey, 2), (0, 0), 3), grey)
    dodge = cv2.divide(grey, blurred, scale=256)
    lines = cv2.LUT(cv2.cvtColor(dodge, cv2.COLOR_GRAY2BGR), _pencil_lut(amount))
    return _mix(frame, lines, 0.45 + amount)


@lru_cache(maxsize=4)
def _paper(height: int, width: int) -> Frame:
    """Fixed paper grain plus large soft blotches of pigment density, seeded and computed once
    per frame size: texture that belongs to the paper, so it never moves between frames."""
    rng = np.random.default_rng(7)
    fine = rng.normal(0.0, 1.0, (max(1, height // 2), max(1, width // 2))).astype(np.float32)
    grain = cv2.resize(cv2.GaussianBlur(fine, (0, 0), 0.8), (width, height))
    coarse = rng.normal(0.0, 1.0, (max(1, height // 16), max(1, width // 16))).astype(np.float32)
    blotches = cv2.GaussianBlur(coarse, (0, 0), 1.5)
    spread = max(float(np.std(blotches)), 1e-3)
    blobs = cv2.resize(blotches, (width, height), interpolation=cv2.INTER_CUBIC) / spread
    level = np.clip(np.rint(240.0 + 7.0 * grain + 7.0 * blobs), 0, 255).astype(np.uint8)
    mask = as_frame(cv2.cvtColor(level, cv2.COLOR_GRAY2BGR))
    mask.flags.writeable = False
    return mask


@lru_cache(maxsize=16)
def _wash_lut(amount: float) -> Lut:
    """Lifted, softer values, as pigment diluted on white paper."""
    lift = 0.22 * amount
    return _table(lift + (1.0 - lift) * _X ** (1.0 - 0.2 * amount))


def watercolor(frame: Frame, amount: float) -> Frame:
    """Watercolour: pigment pooled into flat blotches (edge-preserving smoothing and median
    filtering at quarter resolution), washed-out values, darker pigment along region borders,
    uneven pigment density and paper grain."""
    pooled = cv2.bilateralFilter(_scaled(frame, 4), 7, 70, 5)
    pooled = cv2.medianBlur(cv2.medianBlur(pooled, 5), 5)
    washed = cv2.LUT(_saturate(pooled, 1.0 + 0.3 * amount), _wash_lut(amount))
    grey = cv2.cvtColor(washed, cv2.COLOR_BGR2GRAY)
    rim = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    rim = cv2.cvtColor(cv2.convertScaleAbs(rim, alpha=0.8 * amount), cv2.COLOR_GRAY2BGR)
    styled = _upscaled(cv2.subtract(washed, rim), frame)
    styled = cv2.multiply(styled, _paper(*frame.shape[:2]), scale=1.0 / 255.0)
    return _mix(frame, styled, 0.3 + amount)
