"""The loopback model: frames out as they came in (network tests, latency baselines)."""

from __future__ import annotations

from framewire.models.base import Frame, ModelSpec


class Passthrough:
    """FrameModel that ignores prompt and image and returns each frame unchanged."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def set_prompt(self, prompt: str) -> None:
        """Prompts have no effect on a passthrough."""

    def set_image(self, image: Frame | None) -> None:
        """Reference images have no effect on a passthrough."""

    def process(self, frame: Frame) -> Frame:
        return frame
