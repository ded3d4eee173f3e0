"""Content policy contracts: moderation and prompt enhancement, pluggable per deployment."""

from __future__ import annotations

from typing import Protocol

from framewire.models.base import Frame, ModelSpec


class ContentRejected(Exception):
    """Raised by a moderator; the API maps it to 422 `moderation-rejected`."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidImage(Exception):
    """The image bytes are not a PNG/JPEG/WebP within the limits; the API maps it to 422."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Moderator(Protocol):
    def check_prompt(self, prompt: str) -> None:
        """Raise ContentRejected if the prompt may not be used."""
        ...

    def decode_image(self, data: bytes) -> Frame:
        """Decode and vet a reference image; raise InvalidImage or ContentRejected."""
        ...


class PromptEnhancer(Protocol):
    def enhance(self, prompt: str, spec: ModelSpec) -> str:
        """Expand a short prompt into the model's vocabulary; deterministic by default."""
        ...
