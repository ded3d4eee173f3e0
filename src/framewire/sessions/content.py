"""Content checks shared by sessions and bare legs: the model exists, the prompt passes
moderation (and is enhanced), a reference image decodes and passes."""

from __future__ import annotations

import asyncio

from framewire import errors
from framewire.models.base import Frame, ModelSpec
from framewire.models.registry import ModelRegistry
from framewire.policy import base as policy


class Content:
    def __init__(
        self,
        registry: ModelRegistry,
        moderator: policy.Moderator,
        enhancer: policy.PromptEnhancer,
    ) -> None:
        self.registry = registry
        self.moderator = moderator
        self.enhancer = enhancer

    def model(self, model_id: str) -> ModelSpec:
        """The model's spec; raises the registry's UnknownModel."""
        return self.registry.get(model_id)

    def prompt(self, prompt: str, enhance: bool, model_id: str) -> str:
        """Moderate a prompt (raises ContentRejected); return the text the model gets."""
        self.moderator.check_prompt(prompt)
        if not enhance:
            return prompt
        return self.enhancer.enhance(prompt, self.model(model_id))

    async def image(self, data: bytes, model_id: str) -> Frame:
        """Vet and decode a reference image, in a worker thread: a large image takes
        hundreds of milliseconds to decode, which the event loop (and every session's media
        on it) must not wait for. Raises InvalidImage or ContentRejected."""
        if not self.model(model_id).accepts_image:
            raise errors.Unprocessable(f"model {model_id!r} does not take a reference image")
        return await self.decode(data)

    async def decode(self, data: bytes) -> Frame:
        return await asyncio.to_thread(self.moderator.decode_image, data)
