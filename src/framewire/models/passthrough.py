"""The loopback model: frames out as they came in (network tests, latency baselines)."""

from __future__ import annotations

from framewire.models.base import Frame, ModelSpec, PixelFormat


class Passthrough:
    """FrameModel that ignores prompt and image and returns each frame unchanged, in the
    decoder's own yuv420p where the size allows: no colour conversion either way."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        even = spec.width % 2 == 0 and spec.height % 2 == 0
        self.pixel_format: PixelFormat = "yuv420p" if even else "bgr24"

    def set_prompt(self, prompt: str) -> None:
        """Prompts have no effect on a passthrough."""

    def set_image(self, image: Frame | None) -> None:
        """Reference images have no effect on a passthrough."""

    def process(self, frame: Frame) -> Frame:
        return frame
