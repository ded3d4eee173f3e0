"""Backends and policy plug-ins that tests declare only in models files, as `module:attr`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from framewire.models.base import Frame, ModelSpec
from framewire.policy.base import ContentRejected

PAINT: dict[str, tuple[int, int, int]] = {
    "red": (0, 0, 255),
    "green": (0, 255, 0),
    "blue": (255, 0, 0),
}
"""Prompt -> the BGR colour a PromptPaint session's right half is painted."""


class Inverter:
    """A v1 backend: inverts every frame."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def set_prompt(self, prompt: str) -> None: ...

    def set_image(self, image: Frame | None) -> None: ...

    def process(self, frame: Frame) -> Frame:
        return 255 - frame


class PromptPaint:
    """A v2 shared backend: paints the right half of each frame in its session's prompt colour,
    and records every batch (the conditioning of each frame in it) and every frame's shape."""

    shared = True

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.pixel_format = spec.options.get("pixel_format", "bgr24")
        self.warmed = False
        self.batches: list[list[str]] = []
        self.shapes: set[tuple[int, ...]] = set()
        self.first_pixels: list[tuple[int, ...]] = []

    def warm_up(self) -> None:
        if self.spec.options.get("fail"):
            raise RuntimeError("no weights at /nowhere")
        self.warmed = True

    def condition(self, prompt: str, image: Frame | None) -> str:
        return prompt

    def process_batch(self, frames: Sequence[Frame], conditions: Sequence[Any]) -> list[Frame]:
        self.batches.append(list(conditions))
        out = []
        for frame, prompt in zip(frames, conditions, strict=True):
            self.shapes.add(frame.shape)
            self.first_pixels.append(tuple(int(v) for v in np.atleast_1d(frame[8, 8])))
            painted = frame.copy()
            if self.pixel_format == "bgr24":
                painted[:, frame.shape[1] // 2 :] = PAINT.get(prompt, (128, 128, 128))
            out.append(painted)
        return out


class Shouting:
    """An enhancer plug-in: upper-cases prompts (with a suffix from its options)."""

    def __init__(self, suffix: str = "!") -> None:
        self.suffix = suffix

    def enhance(self, prompt: str, spec: ModelSpec) -> str:
        return prompt.upper() + self.suffix


class NoBananas:
    """A moderator plug-in: rejects any prompt mentioning bananas; images are refused."""

    def check_prompt(self, prompt: str) -> None:
        if "banana" in prompt.lower():
            raise ContentRejected("no bananas")

    def decode_image(self, data: bytes) -> Frame:
        raise ContentRejected("no images here")
