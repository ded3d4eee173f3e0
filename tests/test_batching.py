"""Contract v2: one shared model serves every session of its id in batched calls."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from av import VideoFrame

from framewire.media.batching import BatchedTrack, BatchRunner, batch_seconds
from framewire.media.frameloop import FrameStats
from framewire.media.inbound import InboundDecoder
from framewire.models.base import Frame, ModelSpec, StreamViolation
from framewire.rtc.stamp import luma, read_stamp
from tests.models.plugins import PAINT, PromptPaint
from tests.peers import ClientPeer
from tests.servers import framewire
from tests.sessions import open_session
from tests.stamped import EncodedFeed, StampedCamera

MODELS = """
[models.paint]
backend = "tests.models.plugins:PromptPaint"
width = 320
height = 240
fps = 15
accepts_image = false
[models.paint.options]
pixel_format = "{fmt}"
"""


def painted(frame: np.ndarray) -> tuple[int, int, int]:
    """The mean BGR colour of the right half (what PromptPaint paints)."""
    right = frame[:, frame.shape[1] // 2 + 8 :].reshape(-1, 3).mean(axis=0)
    return (int(right[0]), int(right[1]), int(right[2]))


def near(colour: tuple[int, int, int], prompt: str) -> bool:
    return max(abs(a - b) for a, b in zip(colour, PAINT[prompt], strict=True)) < 40


async def wait_painted(peer: ClientPeer, prompt: str, frames: int = 40) -> None:
    for _ in range(frames):
        await peer.wait_frames(1)
        if near(painted(peer.frames[-1]), prompt):
            return
    raise AssertionError(f"never painted {prompt}: last {painted(peer.frames[-1])}")


async def test_two_sessions_share_one_model_in_batched_calls_with_their_own_prompts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "models.toml"
    path.write_text(MODELS.format(fmt="bgr24"))
    async with framewire(models=path) as server, server.client() as http:
        red = await open_session(server, http, model="paint", prompt="red", enhance_prompt=False)
        blue = await open_session(server, http, model="paint", prompt="blue", enhance_prompt=False)
        try:
            await wait_painted(red.peer, "red")
            await wait_painted(blue.peer, "blue")
            runner = server.app.state.legs.runner("paint")
            model = runner.model
            assert isinstance(model, PromptPaint) and model.warmed
            assert any(sorted(batch) == ["blue", "red"] for batch in model.batches)
            assert model.shapes == {(240, 320, 3)}

            changed = await http.post(
                f"{red.url}/prompt", json={"prompt": "green", "enhance_prompt": False}
            )
            assert changed.status_code == 200
            await wait_painted(red.peer, "green")
            await blue.peer.wait_frames(3)
            assert near(painted(blue.peer.frames[-1]), "blue")
            assert runner.model is model  # one instance for the model id, all along
        finally:
            await red.close()
            await blue.close()


@pytest.mark.parametrize(
    ("fmt", "shape", "first_bar"),
    [("rgb24", (240, 320, 3), (255, 0, 0)), ("yuv420p", (360, 320), None)],
)
async def test_frames_reach_a_shared_model_in_the_pixel_format_it_asks_for(
    tmp_path: Path, fmt: str, shape: tuple[int, ...], first_bar: tuple[int, ...] | None
) -> None:
    path = tmp_path / "models.toml"
    path.write_text(MODELS.format(fmt=fmt))
    async with framewire(models=path) as server, server.client() as http:
        session = await open_session(server, http, model="paint", prompt="red")
        try:
            frame = await session.peer.wait_frames(5)
            model = server.app.state.legs.runner("paint").model
            assert model.shapes == {shape}
            if first_bar is not None:  # the camera's first bar is red, in RGB order here
                r, g, b = model.first_pixels[-1]
                assert r > 200 and g < 60 and b < 60
            # Untouched by this model: the picture comes back as sent (bars, red first).
            assert frame.shape == (240, 320, 3)
            blue, green, red = frame[20, 10]
            assert red > 200 and green < 60 and blue < 60
        finally:
            await session.close()


class Gated:
    """A shared model whose batches wait for the test to open a gate; echoes frames."""

    shared = True
    pixel_format = "bgr24"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.batches: list[list[str]] = []

    def warm_up(self) -> None: ...

    def condition(self, prompt: str, image: Frame | None) -> str:
        return prompt

    def process_batch(self, frames: Sequence[Frame], conditions: Sequence[Any]) -> list[Frame]:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(list(conditions))
        return list(frames)


SPEC = ModelSpec("gated", fps=20, width=320, height=240, accepts_image=False, backend="x")


async def calibrated(model: Gated) -> BatchRunner:
    """A runner for `model` past its calibration batches, which `model` then forgets."""
    runner = BatchRunner(SPEC, model)
    await asyncio.wait_for(runner.calibrated.wait(), 10)
    assert [len(batch) for batch in model.batches] == [1, 1, 2, 2]  # timed before any session
    model.batches.clear()
    model.entered.clear()
    return runner


@pytest.fixture
async def gated() -> AsyncIterator[tuple[Gated, BatchRunner]]:
    model = Gated()
    runner = await calibrated(model)
    yield model, runner
    model.gate.set()
    await runner.close()


def frame_of(value: int) -> Frame:
    return np.full((240, 320, 3), value, np.uint8)


async def test_a_prompt_change_during_a_batch_shows_in_the_next_one(
    gated: tuple[Gated, BatchRunner],
) -> None:
    model, runner = gated
    slot = runner.join()
    slot.set_prompt("before")
    model.gate.clear()
    in_flight = asyncio.ensure_future(slot.run(frame_of(1)))
    await asyncio.to_thread(model.entered.wait, 10)
    slot.set_prompt("after")  # while a frame is in the batch
    model.gate.set()
    await in_flight
    await slot.run(frame_of(2))
    assert model.batches == [["before"], ["after"]]


async def test_a_session_without_a_frame_does_not_hold_the_others(
    gated: tuple[Gated, BatchRunner],
) -> None:
    model, runner = gated
    idle = runner.join()  # joined, never offers a frame (a stalled client)
    busy = runner.join()
    busy.set_prompt("busy")
    for value in range(5):
        out = await asyncio.wait_for(busy.run(frame_of(value)), 10)
        assert out[0, 0, 0] == value
    assert model.batches == [["busy"]] * 5
    idle.close()


async def test_frames_offered_together_go_in_one_batch(gated: tuple[Gated, BatchRunner]) -> None:
    model, runner = gated
    slots = [runner.join() for _ in range(3)]
    for number, slot in enumerate(slots):
        slot.set_prompt(f"s{number}")
    outs = await asyncio.gather(*(slot.run(frame_of(n)) for n, slot in enumerate(slots)))
    assert [int(out[0, 0, 0]) for out in outs] == [0, 1, 2]
    assert model.batches == [["s0", "s1", "s2"]]


async def test_a_slow_batch_drops_stale_frames_instead_of_queueing_them() -> None:
    model = Gated()
    runner = BatchRunner(SPEC, model)
    camera = StampedCamera(20, 320, 240)
    stats = FrameStats()
    feed = EncodedFeed(camera, stats)
    executor = ThreadPoolExecutor(max_workers=1)
    decoder = InboundDecoder(feed.ask_keyframe)
    track = BatchedTrack(feed.inbox, decoder, runner.join(), executor, stats, lambda: None, print)
    original = model.process_batch

    def slow(frames: Sequence[Frame], conditions: Sequence[Any]) -> list[Frame]:
        threading.Event().wait(0.15)  # three camera frames at 20 fps
        return original(frames, conditions)

    model.process_batch = slow  # type: ignore[method-assign]
    try:
        lags = []
        for _ in range(8):
            out: VideoFrame = await track.recv()
            number = read_stamp(luma(out))
            assert number is not None
            lags.append(camera.sent - 1 - number)
        assert max(lags[-4:]) <= 5  # a queue would fall ~2 frames further behind per output
        assert stats.frames_dropped >= 8
    finally:
        feed.stop()
        await runner.close()
        executor.shutdown(wait=True)


class Flagging(Gated):
    """Flags the stream of any session whose prompt is "unsafe"; echoes the others."""

    def process_batch(self, frames: Sequence[Frame], conditions: Sequence[Any]) -> list[Frame]:
        self.batches.append(list(conditions))
        return [
            StreamViolation("flagged") if prompt == "unsafe" else frame
            for frame, prompt in zip(frames, conditions, strict=True)
        ]


async def test_a_violation_in_one_output_ends_that_session_only() -> None:
    model = Flagging()
    runner = await calibrated(model)
    try:
        safe, unsafe = runner.join(), runner.join()
        safe.set_prompt("fine")
        unsafe.set_prompt("unsafe")
        results = await asyncio.gather(
            safe.run(frame_of(7)), unsafe.run(frame_of(8)), return_exceptions=True
        )
        assert model.batches == [["fine", "unsafe"]]
        assert isinstance(results[0], np.ndarray) and int(results[0][0, 0, 0]) == 7
        assert isinstance(results[1], StreamViolation)
    finally:
        await runner.close()


def test_a_batchs_time_is_predicted_from_the_sizes_seen() -> None:
    """What admission asks before a shared model takes one more session."""
    assert batch_seconds([], 3) is None
    assert batch_seconds([(1, 0.03), (1, 0.03)], 3) == pytest.approx(0.09)  # one size: pro rata
    per_frame = [(1, 0.03), (2, 0.06), (1, 0.031), (2, 0.059)]
    assert batch_seconds(per_frame, 3) == pytest.approx(0.09, abs=0.003)
    fixed = [(1, 0.1), (2, 0.1), (3, 0.1)]
    assert batch_seconds(fixed, 8) == pytest.approx(0.1)
    noisy = [(1, 0.1), (2, 0.08)]  # a bigger batch never predicts cheaper than the mean
    assert batch_seconds(noisy, 5) == pytest.approx(0.09)
