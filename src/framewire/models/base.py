"""The frame-model contract: what the media layer asks of any model, CPU or GPU."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]
"""A BGR image, shape (height, width, 3), dtype uint8."""


@dataclass(frozen=True)
class ModelSpec:
    """What a model id promises: output size and rate, and whether it takes a reference image."""

    id: str
    fps: int
    width: int
    height: int
    accepts_image: bool
    backend: str


class FrameModel(Protocol):
    """One model instance per leg. `process` runs in a worker thread; the setters are called
    from the event loop and must take effect atomically for the next processed frame."""

    def set_prompt(self, prompt: str) -> None: ...

    def set_image(self, image: Frame | None) -> None: ...

    def process(self, frame: Frame) -> Frame:
        """Transform one frame already resized to the spec's width x height; same shape out."""
        ...


class ModelBackend(Protocol):
    """An entry point in the group `framewire.models` names a callable of this shape."""

    def __call__(self, spec: ModelSpec) -> FrameModel: ...


class StreamViolation(Exception):
    """Raised by a model's `process` (or a safety checker it runs) when the running stream breaks
    the content policy; the session ends with reason `moderation_violation`."""
