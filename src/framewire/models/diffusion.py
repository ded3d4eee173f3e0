"""The `diffusers` backend: realtime image-to-image in the StreamDiffusion manner (contract v2).

One shared instance per model id holds one set of weights: a single-step turbo UNet (sd-turbo
class), a tiny autoencoder (TAESD) and the text encoder. Each model tick turns the latest frame of
every session into one batch: encode with the tiny autoencoder, noise to one fixed timestep with
fixed noise (the same input gives the same output: a still scene stays still), one UNet step
conditioned on each session's cached prompt embeddings, predict the clean latents, decode. A
session's reference image is encoded once and its latents mixed into that session's frames (how
this pipeline takes image conditioning). A frame nearly identical to the session's last one
reuses the last output without running the model. fp16 on CUDA when present, else float32 CPU.

Weights are read from `options.model` (a local directory in the diffusers layout, or a hub id
already in the user's model cache) and `options.tiny_vae`; nothing is ever downloaded. Needs the
optional extra: `pip install 'framewire[diffusers]'`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framewire.models.base import Frame, ModelSpec, PixelFormat

PROMPT_CACHE = 64
"""Prompt embeddings kept (least recently used dropped)."""


@dataclass(frozen=True)
class DiffusionOptions:
    """`[models.ID.options]` of a diffusers model id."""

    model: str
    tiny_vae: str = "madebyollin/taesd"
    strength: float = 0.5
    """How far from the camera frame the output may go: the noise level of the single step."""
    skip_threshold: float = 1.0
    """Mean absolute change (0-255) under which a frame reuses the session's last output."""
    image_strength: float = 0.3
    """Weight of the reference image's latents mixed into each frame's latents."""
    seed: int = 0
    device: str | None = None
    """`cuda`, `cpu`, ...; by default CUDA when present."""

    @classmethod
    def of(cls, spec: ModelSpec) -> DiffusionOptions:
        options = dict(spec.options)
        if not isinstance(options.get("model"), str):
            raise ValueError(f"model {spec.id!r}: options.model (weights directory or id) missing")
        known = set(cls.__dataclass_fields__)
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"model {spec.id!r}: unknown options {sorted(unknown)}")
        made = cls(**options)
        if not 0.0 < made.strength <= 1.0 or not 0.0 <= made.image_strength < 1.0:
            raise ValueError(f"model {spec.id!r}: strength in (0, 1], image_strength in [0, 1)")
        return made


@dataclass
class DiffusionSession:
    """One session's conditioning, made on each prompt or image change; also holds the
    session's last frame and output for skipping near-identical frames."""

    embeddings: Any
    reference: Any | None
    last_input: Frame | None = None
    last_output: Frame | None = None
    runs: int = field(default=0)
    """Frames this conditioning went through the model (not skipped)."""


class DiffusionModel:
    """SharedModel for the `diffusers` backend; frames are RGB."""

    shared = True
    pixel_format: PixelFormat = "rgb24"

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.options = DiffusionOptions.of(spec)
        if spec.width % 8 or spec.height % 8:
            raise ValueError(f"model {spec.id!r}: width and height must be multiples of 8")
        self._pipe: Any = None
        self._prompts: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        from framewire.models.diffusion_pipe import TurboPipe

        self._pipe = TurboPipe.load(self.options, self.spec.width, self.spec.height)
        blank = np.zeros((self.spec.height, self.spec.width, 3), np.uint8)
        self.process_batch([blank], [self.condition("", None)])

    @property
    def pipe(self) -> Any:
        if self._pipe is None:
            raise RuntimeError("warm_up() was not called")
        return self._pipe

    def condition(self, prompt: str, image: Frame | None) -> DiffusionSession:
        """Cached embeddings of `prompt`; the reference image (BGR) encoded to latents."""
        with self._lock:
            embeddings = self._prompts.get(prompt)
            if embeddings is None:
                embeddings = self.pipe.embed(prompt)
                self._prompts[prompt] = embeddings
                while len(self._prompts) > PROMPT_CACHE:
                    self._prompts.popitem(last=False)
            else:
                self._prompts.move_to_end(prompt)
        reference = None
        if image is not None:
            rgb = image[..., ::-1]
            reference = self.pipe.encode_reference(rgb, self.spec.width, self.spec.height)
        return DiffusionSession(embeddings, reference)

    def process_batch(self, frames: Sequence[Frame], conditions: Sequence[Any]) -> list[Frame]:
        """One UNet call for every session whose frame changed; the others reuse their output."""
        sessions: list[DiffusionSession] = list(conditions)
        outputs: list[Frame | None] = [
            s.last_output if self._unchanged(s, f) else None
            for f, s in zip(frames, sessions, strict=True)
        ]
        todo = [i for i, out in enumerate(outputs) if out is None]
        if todo:
            made = self.pipe.img2img(
                [frames[i] for i in todo],
                [sessions[i].embeddings for i in todo],
                [sessions[i].reference for i in todo],
            )
            for i, image in zip(todo, made, strict=True):
                sessions[i].last_input, sessions[i].last_output = frames[i], image
                sessions[i].runs += 1
                outputs[i] = image
        return [out for out in outputs if out is not None]

    def _unchanged(self, session: DiffusionSession, frame: Frame) -> bool:
        last = session.last_input
        if last is None or session.last_output is None or last.shape != frame.shape:
            return False
        change = np.abs(frame[::4, ::4].astype(np.int16) - last[::4, ::4]).mean()
        return bool(change < self.options.skip_threshold)
