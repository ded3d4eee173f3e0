"""The frame-model contract: what the media layer asks of any model, CPU or GPU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    """The models file's `[models.ID.options]`, for the backend only (never listed to clients)."""

    def public(self) -> dict[str, Any]:
        """What `/v1/models` shows of this id."""
        return {
            "id": self.id,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "accepts_image": self.accepts_image,
            "backend": self.backend,
        }


class FrameModel(Protocol):
    """One model instance per leg. `process` runs in a worker thread; the setters are called
    from the event loop and must take effect atomically for the next processed frame. A model
    may declare the pixel format it works in as a `pixel_format` attribute (as a SharedModel
    does; see `pixel_format_of`): without one, frames are BGR."""

    def set_prompt(self, prompt: str) -> None: ...

    def set_image(self, image: Frame | None) -> None: ...

    def process(self, frame: Frame) -> Frame:
        """Transform one frame already resized to the spec's width x height, in the model's
        pixel format; same shape out."""
        ...


class ModelBackend(Protocol):
    """An entry point in the group `framewire.models` names a callable of this shape."""

    def __call__(self, spec: ModelSpec) -> FrameModel | SharedModel: ...


PixelFormat = Literal["bgr24", "rgb24", "yuv420p"]
"""How a shared model wants its frames: packed (height, width, 3) BGR or RGB, or yuv420p as one
(height * 3 // 2, width) array of Y, U and V planes (what the decoder has and the encoder wants)."""


PIXEL_FORMATS: tuple[PixelFormat, ...] = ("bgr24", "rgb24", "yuv420p")


def pixel_format_of(model: object) -> PixelFormat:
    """The pixel format a model works in: its `pixel_format`, bgr24 when it has none. yuv420p
    costs a session no colour conversion (the decoder's and the encoder's own format); the
    packed formats cost one each way. Raises ValueError for a format the media layer lacks."""
    declared = getattr(model, "pixel_format", "bgr24")
    for known in PIXEL_FORMATS:
        if declared == known:
            return known
    raise ValueError(f"pixel_format {declared!r} is not one of {', '.join(PIXEL_FORMATS)}")


class SharedModel(Protocol):
    """Contract v2: one instance serves every session of a model id (one set of weights).

    The frame loop calls `process_batch` once per model tick, in a worker thread, with the latest
    frame of each session using the model that has one ready, and each session's conditioning
    (what `condition` returned for that session's prompt and reference image). Calls never
    overlap. A backend becomes shared by having the class attribute `shared = True`."""

    pixel_format: PixelFormat

    def warm_up(self) -> None:
        """Load weights and run once, before the first session (at startup when declared in a
        models file). Runs in a worker thread."""
        ...

    def condition(self, prompt: str, image: Frame | None) -> Any:
        """Conditioning for one session (prompt embeddings, reference latents). Called in the
        worker thread before the batch whose frames first use it; cache by prompt as you like."""
        ...

    def process_batch(
        self, frames: Sequence[Frame], conditions: Sequence[Any]
    ) -> Sequence[Frame | BaseException]:
        """One output per input, same order, same shape and dtype, in `pixel_format`; an
        exception instance in a session's place ends that session only (a StreamViolation with
        reason `moderation_violation`)."""
        ...


class StreamViolation(Exception):
    """Raised by a model's `process` (or a safety checker it runs) when the running stream breaks
    the content policy; the session ends with reason `moderation_violation`."""
