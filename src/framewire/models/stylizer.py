"""The built-in CPU model: restyles each frame by the prompt's Look and the reference palette.

It takes frames in the decoder's yuv420p (`pixel_format`, for specs of even size): the noise
deadband runs on it as it is, the gradient-map looks (noir, sepia, colour tints: `tones`) stay
in it, and every other look converts once to BGR and once back inside the model. BGR frames
(odd sizes, direct callers) take the same looks on BGR.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from framewire.models import effects, tones
from framewire.models.base import Frame, ModelSpec, PixelFormat
from framewire.models.palette import Palette, transfer
from framewire.models.steady import Steadier
from framewire.vocabulary import COLOURS, Look, Style, parse_look

_STYLES: dict[Style, Callable[[Frame, float], Frame]] = {
    Style.ANIME: effects.anime,
    Style.WATERCOLOR: effects.watercolor,
    Style.SKETCH: effects.sketch,
    Style.CYBERPUNK: effects.cyberpunk,
    Style.THERMAL: effects.thermal,
    Style.NOIR: effects.noir,
    Style.SEPIA: effects.sepia,
}

_YUV_STYLES: dict[Style, Callable[[Frame, float], Frame]] = {
    Style.NOIR: tones.noir,
    Style.SEPIA: tones.sepia,
}
"""The styles `tones` runs on yuv420p without a colour conversion."""

_PALETTE_AMOUNT = 0.8
"""How far the reference image pulls the frame's Lab statistics toward its own."""


@dataclass(frozen=True)
class _Params:
    look: Look
    palette: Palette | None


class Stylizer:
    """FrameModel for every built-in model id. Setters parse once and swap one immutable
    `_Params` reference, so `process` (in a worker thread) always sees a consistent pair."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        even = spec.width % 2 == 0 and spec.height % 2 == 0
        self.pixel_format: PixelFormat = "yuv420p" if even else "bgr24"
        """What the media layer hands `process`: the decoder's own format where it can."""
        self._lock = threading.Lock()
        self._params = _Params(look=parse_look(""), palette=None)
        self._steady = Steadier()

    def set_prompt(self, prompt: str) -> None:
        """Any text is accepted; words the vocabulary lacks fall back to a mild grade."""
        look = parse_look(prompt)
        with self._lock:
            self._params = replace(self._params, look=look)

    def set_image(self, image: Frame | None) -> None:
        """Steer the palette toward `image`; ignored when the spec takes no reference image."""
        palette = None if image is None or not self.spec.accepts_image else Palette.of(image)
        with self._lock:
            self._params = replace(self._params, palette=palette)

    def process(self, frame: Frame) -> Frame:
        """Noise held back first (a still scene stays still), then the palette, styles
        (structure before tone) and tints; input untouched. `frame` is yuv420p as one
        (height * 3 // 2, width) array, or BGR (height, width, 3); the output is laid out
        the same way."""
        params = self._params
        held = self._steady(frame)
        if frame.ndim == 3:
            out = _restyle(held, params)
        elif _stays_yuv(params):
            out = _retone(held, params.look)
        else:
            bgr = np.asarray(cv2.cvtColor(held, cv2.COLOR_YUV2BGR_I420), dtype=np.uint8)
            out = np.asarray(cv2.cvtColor(_restyle(bgr, params), cv2.COLOR_BGR2YUV_I420), np.uint8)
        return held.copy() if out is held else out  # the held frame is the deadband's own


def _stays_yuv(params: _Params) -> bool:
    """Whether every step of the look runs on yuv420p as it is."""
    look = params.look
    return (
        params.palette is None
        and not look.grade
        and all(style in _YUV_STYLES for style, _ in look.styles)
    )


def _retone(frame: Frame, look: Look) -> Frame:
    out = frame
    for style, amount in look.styles:
        out = _YUV_STYLES[style](out, amount)
    if look.tints:
        out = tones.tint(out, [COLOURS[name] for name in look.tints], look.tint_amount)
    return out


def _restyle(frame: Frame, params: _Params) -> Frame:
    look = params.look
    out = frame
    if params.palette is not None:
        out = transfer(out, params.palette, _PALETTE_AMOUNT)
    for style, amount in look.styles:
        out = _STYLES[style](out, amount)
    if look.tints:
        out = effects.tint(out, [COLOURS[name] for name in look.tints], look.tint_amount)
    if look.grade:
        out = effects.grade(out, look.grade)
    return out
