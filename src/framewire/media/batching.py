"""Contract v2 at run time: one shared model per model id, fed batches across sessions.

A `BatchRunner` per shared model id runs one loop: it waits for a session's frame, gives the
other sessions using the model up to half a frame interval to have theirs ready, then hands the
ready frames (one per session, the newest: each session's track offers one frame at a time,
decoded from what came since its last one) with each session's conditioning to `process_batch`
in a worker thread. A session whose frame is not ready by then is not waited for: it joins the next
batch, so a slow session delays the others by at most that window. Conditioning is rebuilt in
the worker thread before the first batch after a prompt or image change, so the change shows in
the next batch, at worst the second frame after the change.

Pixels (`media.pixels`): each session's frame is scaled once by swscale straight into the model's
size and pixel format, and the output goes to the encoder with at most one conversion (none for
yuv420p).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from av import VideoFrame

from framewire.media.codecs import EncodedFrame
from framewire.media.frameloop import FrameStats, PacedTrack, Processed
from framewire.media.inbound import Decoded, Encoded, EncodedInbox, InboundDecoder
from framewire.media.pixels import PixelPath, expected_shape
from framewire.media.threads import name_os_thread
from framewire.models.base import Frame, ModelSpec, PixelFormat, SharedModel

log = logging.getLogger("framewire.media")

GATHER_WINDOW = 0.5
"""How long (in frame intervals of the model's fps) a batch waits for the other sessions."""
TIMINGS = 100
"""Batches a runner remembers (size, seconds) for admission's prediction of the next size."""
CALIBRATION_SIZES = (1, 2)


def batch_seconds(timings: Sequence[tuple[int, float]], size: int) -> float | None:
    """How long a batch of `size` frames will take, from the batches seen: a least-squares line
    through (size, seconds), its fixed and per-frame costs kept >= 0. From one batch size alone
    the cost is taken as proportional to the size: a model that batches (nearly) for free shows
    it as soon as two sizes have run, and one that does not is never predicted too cheap. None
    before any batch."""
    if not timings:
        return None
    count = len(timings)
    mean_size = sum(n for n, _ in timings) / count
    mean_seconds = sum(t for _, t in timings) / count
    spread = sum((n - mean_size) ** 2 for n, _ in timings)
    if spread == 0:
        return mean_seconds * size / mean_size
    slope = sum((n - mean_size) * (t - mean_seconds) for n, t in timings) / spread
    slope = max(0.0, slope)
    return max(0.0, mean_seconds - slope * mean_size) + slope * size


@dataclass
class _Conditioning:
    version: int = -1
    value: Any = None


@dataclass(frozen=True)
class _Item:
    slot: BatchSlot
    frame: Frame
    prompt: str
    image: Frame | None
    version: int
    result: asyncio.Future[Frame]


class BatchSlot:
    """One session's place at a shared model: its prompt, image and cached conditioning. Stands
    in for the leg's model: `set_prompt` / `set_image` come from the event loop."""

    def __init__(self, runner: BatchRunner) -> None:
        self._runner = runner
        self._prompt = ""
        self._image: Frame | None = None
        self._version = 0
        self.conditioning = _Conditioning()
        """Touched only by the runner's worker thread."""

    @property
    def spec(self) -> ModelSpec:
        return self._runner.spec

    @property
    def pixel_format(self) -> PixelFormat:
        return self._runner.model.pixel_format

    def set_prompt(self, prompt: str) -> None:
        self._prompt = prompt
        self._version += 1

    def set_image(self, image: Frame | None) -> None:
        self._image = image if self.spec.accepts_image else None
        self._version += 1

    async def run(self, frame: Frame) -> Frame:
        """`frame` through the next batch (in the model's pixel format)."""
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._runner.offer(_Item(self, frame, self._prompt, self._image, self._version, future))
        return await future

    def close(self) -> None:
        self._runner.leave(self)


class BatchRunner:
    """The batch loop of one shared model id; `process_batch` calls never overlap."""

    def __init__(self, spec: ModelSpec, model: SharedModel) -> None:
        self.spec = spec
        self.model = model
        self._slots: set[BatchSlot] = set()
        self._ready: dict[BatchSlot, _Item] = {}
        self._wake = asyncio.Event()
        self._thread = ThreadPoolExecutor(
            1, thread_name_prefix=f"batch-{spec.id}", initializer=name_os_thread
        )
        self._task = asyncio.get_running_loop().create_task(self._loop())
        self.batches = 0
        """Batches run so far (stats, tests)."""
        self.timings: deque[tuple[int, float]] = deque(maxlen=TIMINGS)
        """(size, wall-clock seconds) of the latest batches: a device's work shows in wall time,
        which CPU time does not."""
        self.calibrated = asyncio.Event()
        """Set once the calibration batches ran, before the first session's batch."""

    @property
    def sessions(self) -> int:
        """Sessions (and bare legs) using the model."""
        return len(self._slots)

    def predicted_seconds(self, size: int) -> float | None:
        """The next batch of `size` frames' seconds, from the latest batches (None before any)."""
        return batch_seconds(list(self.timings), size)

    def join(self) -> BatchSlot:
        slot = BatchSlot(self)
        self._slots.add(slot)
        return slot

    def leave(self, slot: BatchSlot) -> None:
        self._slots.discard(slot)
        item = self._ready.pop(slot, None)
        if item is not None and not item.result.done():
            item.result.cancel()

    def offer(self, item: _Item) -> None:
        self._ready[item.slot] = item
        self._wake.set()

    async def close(self) -> None:
        self._task.cancel()
        for item in self._ready.values():
            item.result.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._calibrate)
        self.calibrated.set()
        while True:
            await self._wake.wait()
            await self._gather()
            self._wake.clear()
            batch = list(self._ready.values())
            self._ready.clear()
            if not batch:
                continue
            try:
                outputs = await loop.run_in_executor(self._thread, self._run_batch, batch)
            except Exception as exc:  # the backend failed the whole batch: every session ends
                for item in batch:
                    if not item.result.done():
                        item.result.set_exception(exc)
                continue
            self.batches += 1
            for item, output in zip(batch, outputs, strict=True):
                if item.result.done():
                    continue
                if isinstance(output, BaseException):
                    item.result.set_exception(output)
                else:
                    item.result.set_result(output)

    async def _gather(self) -> None:
        """Wait, up to the gather window, for every session's frame to be ready."""
        deadline = time.monotonic() + GATHER_WINDOW / self.spec.fps
        while len(self._ready) < len(self._slots):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return

    def _calibrate(self) -> None:
        """Batch thread, before the first session's batch: time batches of CALIBRATION_SIZES
        synthetic frames, so admission's prediction knows from the start how the batch time
        grows with the batch (from one size alone it could only assume proportionally). The
        first call of each size is a warm-up and not kept. A model that fails here is left to
        fail (or not) on its first real batch."""
        shape = expected_shape(self.spec, self.model.pixel_format)
        frame: Frame = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
        try:
            condition = self.model.condition("", None)
            for size in CALIBRATION_SIZES:
                for kept in (False, True):
                    started = time.monotonic()
                    self.model.process_batch([frame] * size, [condition] * size)
                    if kept:
                        self.timings.append((size, time.monotonic() - started))
        except Exception as exc:  # a plug-in's failure, reported on its real batches too
            log.warning("shared model %s: batch calibration failed: %r", self.spec.id, exc)

    def _run_batch(self, batch: list[_Item]) -> list[Frame | BaseException]:
        """Worker thread: refresh stale conditioning, then one `process_batch` call. An output
        may be an exception instance (a StreamViolation for one session): it ends that one."""
        started = time.monotonic()
        for item in batch:
            cached = item.slot.conditioning
            if cached.version != item.version:
                cached.value = self.model.condition(item.prompt, item.image)
                cached.version = item.version
        outputs = self.model.process_batch(
            [item.frame for item in batch], [item.slot.conditioning.value for item in batch]
        )
        self.timings.append((len(batch), time.monotonic() - started))
        if len(outputs) != len(batch):
            raise ValueError(f"process_batch returned {len(outputs)} outputs for {len(batch)}")
        return list(outputs)


class BatchedTrack(PacedTrack):
    """A leg's outbound video through a shared model's batches."""

    def __init__(
        self,
        inbox: EncodedInbox,
        decoder: InboundDecoder,
        slot: BatchSlot,
        executor: Executor,
        stats: FrameStats,
        on_first_frame: Callable[[], None],
        on_fault: Callable[[str], None],
    ) -> None:
        super().__init__(inbox, decoder, slot.spec, stats, on_first_frame, on_fault)
        self._slot = slot
        self._executor = executor
        self._pixels = PixelPath(slot.spec, slot.pixel_format)

    def _prepare(self, frames: list[Encoded]) -> tuple[list[Decoded], Frame | None]:
        """Worker thread: the frames decoded, the newest as the model's input."""
        decoded = self._decoder.decode(frames)
        return decoded, self._pixels.to_model(decoded[-1].frame) if decoded else None

    def _finish(self, image: Frame) -> VideoFrame | EncodedFrame:
        return self._deliver(self._pixels.to_encoder(image))

    async def _process(self, frames: list[Encoded]) -> Processed:
        loop = asyncio.get_running_loop()
        decoded, image = await loop.run_in_executor(self._executor, self._prepare, frames)
        if image is None:
            return decoded, None
        output = await self._slot.run(image)
        return decoded, await loop.run_in_executor(self._executor, self._finish, output)
