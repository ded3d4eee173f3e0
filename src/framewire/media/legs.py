"""The set of legs this instance holds, and the one place they are made."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import cv2

from framewire.media.batching import BatchRunner, BatchSlot
from framewire.media.codecs import VIDEO_CODECS
from framewire.media.leg import IceOptions, Leg, LegFailed, LegListener
from framewire.media.threads import name_os_thread
from framewire.metrics import Metrics
from framewire.models.base import Frame, FrameModel, ModelSpec, SharedModel
from framewire.models.registry import ModelRegistry, is_shared


class LegNotFound(KeyError):
    pass


class CapacityFull(RuntimeError):
    """This instance holds as many legs (bare or in sessions) as it may."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"this instance is at its limit of {limit} sessions and legs")


class ShuttingDown(CapacityFull):
    """This instance is draining before it stops: it opens no more legs."""

    def __init__(self, limit: int) -> None:
        RuntimeError.__init__(self, "this instance is shutting down; try another one")


class Legs:
    """Creates, finds and closes legs; owns the worker threads models run in."""

    def __init__(
        self,
        registry: ModelRegistry,
        ice: IceOptions,
        workers: int,
        video_codecs: list[str] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.registry = registry
        self.ice = ice
        self.video_codecs = video_codecs or list(VIDEO_CODECS)
        self.metrics = metrics
        # Pixel work runs one frame per worker thread, and sessions are the parallelism: OpenCV's
        # own thread pool would split each call over the cores and spin between calls (measured:
        # 0.03 core more per 720p20 session, for no gain in throughput).
        cv2.setNumThreads(1)
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="model", initializer=name_os_thread
        )
        self._legs: dict[str, Leg] = {}
        self._reserved = 0
        self.draining = False
        """Set at shutdown: `reserve` refuses every new leg."""
        self._runners: dict[str, BatchRunner] = {}

    async def open(
        self,
        offer_sdp: str,
        model_id: str,
        prompt: str | None = None,
        image: Frame | None = None,
        listener: LegListener | None = None,
        owner: str | None = None,
    ) -> tuple[Leg, str]:
        """A new leg running `model_id`, and its answer SDP. Raises UnknownModel, InvalidOffer,
        LegFailed; nothing is left behind on failure. `owner`: the key id of a bare leg."""
        spec = self.registry.get(model_id)
        try:
            made = await asyncio.to_thread(self.registry.create, model_id)
        except Exception as exc:  # a plugin backend may fail any way (missing, no GPU, ...)
            raise LegFailed(f"model {model_id!r} could not be started: {exc}") from exc
        model = self._slot(spec, made)
        if prompt:
            model.set_prompt(prompt)
        if image is not None:
            model.set_image(image)
        leg = Leg(
            "leg_" + secrets.token_hex(8),
            spec,
            model,
            self._executor,
            self.ice,
            self.video_codecs,
            self.metrics,
        )
        leg.owner = owner
        if listener is not None:
            leg.attach(listener)
        try:
            answer = await leg.answer(offer_sdp)
        except BaseException:
            await self._close_leg(leg)
            raise
        self._legs[leg.id] = leg
        return leg, answer

    def _slot(self, spec: ModelSpec, made: FrameModel | SharedModel) -> FrameModel | BatchSlot:
        """A v1 model as it is; a place in the batches of a shared (v2) one."""
        if not is_shared(made):
            return cast(FrameModel, made)
        runner = self._runners.get(spec.id)
        if runner is None or runner.model is not made:
            runner = self._runners[spec.id] = BatchRunner(spec, cast(SharedModel, made))
        return runner.join()

    def runner(self, model_id: str) -> BatchRunner | None:
        """The batch loop of a shared model id, once a leg has used it."""
        return self._runners.get(model_id)

    def runners(self) -> dict[str, BatchRunner]:
        """Every shared model id's batch loop, once a leg has used it."""
        return dict(self._runners)

    def get(self, leg_id: str) -> Leg:
        try:
            return self._legs[leg_id]
        except KeyError:
            raise LegNotFound(leg_id) from None

    def all(self) -> list[Leg]:
        return list(self._legs.values())

    def count(self) -> int:
        """Open legs plus reserved places: what a capacity check must count."""
        return len(self._legs) + self._reserved

    @contextlib.contextmanager
    def reserve(self, limit: int) -> Iterator[None]:
        """Hold a place for a leg being set up (across the awaits before `open` returns), so
        concurrent requests cannot overrun `limit`. Raises CapacityFull when none is left."""
        if self.draining:
            raise ShuttingDown(limit)
        if self.count() >= limit:
            raise CapacityFull(limit)
        self._reserved += 1
        try:
            yield
        finally:
            self._reserved -= 1

    async def close(self, leg_id: str) -> None:
        leg = self._legs.pop(leg_id, None)
        if leg is not None:
            await self._close_leg(leg)

    @staticmethod
    async def _close_leg(leg: Leg) -> None:
        await leg.close()
        if isinstance(leg.model, BatchSlot):
            leg.model.close()

    async def close_all(self) -> None:
        for leg_id in list(self._legs):
            await self.close(leg_id)
        for runner in self._runners.values():
            await runner.close()
        self._runners.clear()
        await self.ice.sockets.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
