"""What a server says about its models (`GET /v1/models`), read by the client's own type so the
client depends on no server module; fields the client does not use are ignored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    """A model's output size and frame rate, and whether it takes a reference image."""

    id: str
    fps: float
    width: int
    height: int
    accepts_image: bool

    @classmethod
    def of(cls, body: dict[str, Any]) -> ModelInfo:
        fps = float(body["fps"])
        return cls(
            id=str(body["id"]),
            fps=int(fps) if fps.is_integer() else fps,
            width=int(body["width"]),
            height=int(body["height"]),
            accepts_image=bool(body.get("accepts_image", False)),
        )
