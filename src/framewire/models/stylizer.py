"""The built-in CPU model: restyles each frame by the prompt's Look and the reference palette."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from framewire.models import effects
from framewire.models.base import Frame, ModelSpec
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
        (structure before tone) and tints; input untouched."""
        params = self._params
        look = params.look
        out = self._steady(frame)
        if params.palette is not None:
            out = transfer(out, params.palette, _PALETTE_AMOUNT)
        for style, amount in look.styles:
            out = _STYLES[style](out, amount)
        if look.tints:
            out = effects.tint(out, [COLOURS[name] for name in look.tints], look.tint_amount)
        if look.grade:
            out = effects.grade(out, look.grade)
        return out
