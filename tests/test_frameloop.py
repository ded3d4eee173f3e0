"""The frame loop on its own: real models, real frames from a paced camera, no network."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from hypothesis import given
from hypothesis import strategies as st

from framewire.media.frameloop import FramePacer, FrameStats, ModelTrack
from framewire.media.inbound import InboundDecoder
from framewire.models.base import Frame, FrameModel, ModelSpec
from framewire.models.passthrough import Passthrough
from framewire.models.stylizer import Stylizer
from framewire.rtc.stamp import luma, read_stamp
from tests.stamped import EncodedFeed, StampedCamera, stamped_pattern
from tests.test_session_flow import saturation

SMALL = ModelSpec("small", fps=20, width=320, height=240, accepts_image=True, backend="stylizer")


class Loop:
    """A ModelTrack fed as a receiver feeds it (tests.stamped.EncodedFeed), and what it
    reported."""

    def __init__(self, model: FrameModel, spec: ModelSpec, camera: StampedCamera) -> None:
        self.camera = camera
        self.stats = FrameStats()
        self.faults: list[str] = []
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.feed = EncodedFeed(camera, self.stats)
        self.track = ModelTrack(
            self.feed.inbox,
            InboundDecoder(self.feed.ask_keyframe),
            model,
            spec,
            self.executor,
            self.stats,
            lambda: None,
            self.faults.append,
        )

    async def frames(self, count: int) -> list[np.ndarray]:
        return [bgr(await self.track.recv()) for _ in range(count)]

    def close(self) -> None:
        self.feed.stop()
        self.executor.shutdown(wait=True)


@pytest.fixture
async def open_loop() -> AsyncIterator[list[Loop]]:
    loops: list[Loop] = []
    yield loops
    for loop in loops:
        loop.close()


def start(loops: list[Loop], model: FrameModel, spec: ModelSpec, fps: int = 20) -> Loop:
    loop = Loop(model, spec, StampedCamera(fps, 320, 240))
    loops.append(loop)
    return loop


def bgr(frame: VideoFrame) -> np.ndarray:
    return np.asarray(frame.to_ndarray(format="bgr24"))


class HeldAfterProcessing:
    """A real model whose `process` pauses after computing a frame until released, so a test
    can change the prompt while that frame is still in flight."""

    def __init__(self, model: FrameModel) -> None:
        self.model = model
        self.hold = False
        self.computed = threading.Event()
        self.release = threading.Event()

    def set_prompt(self, prompt: str) -> None:
        self.model.set_prompt(prompt)

    def set_image(self, image: Frame | None) -> None:
        self.model.set_image(image)

    def process(self, frame: Frame) -> Frame:
        out = self.model.process(frame)
        if self.hold:
            self.computed.set()
            self.release.wait(10)
        return out


async def test_prompt_change_shows_by_the_second_frame_after_it(open_loop: list[Loop]) -> None:
    model = HeldAfterProcessing(Stylizer(SMALL))
    model.set_prompt("vivid neon cyberpunk")
    loop = start(open_loop, model, SMALL)
    assert all(saturation(f) > 60 for f in await loop.frames(3))

    model.hold = True
    in_flight = asyncio.ensure_future(loop.track.recv())
    await asyncio.to_thread(model.computed.wait, 10)
    model.set_prompt("black and white noir film")  # while a frame is in the worker thread
    model.hold = False
    model.release.set()
    first = bgr(await in_flight)
    second, third = await loop.frames(2)

    assert saturation(first) > 60  # computed before the change: the one frame allowed
    assert saturation(second) < 15 and saturation(third) < 15


async def test_frames_go_out_at_the_model_size_as_the_encoder_wants_them(
    open_loop: list[Loop],
) -> None:
    spec = ModelSpec("wide", fps=20, width=640, height=352, accepts_image=True, backend="x")
    loop = start(open_loop, Passthrough(spec), spec)
    out = await loop.track.recv()

    assert out.format.name == "yuv420p" and (out.width, out.height) == (640, 352)
    number = read_stamp(luma(out))
    assert number is not None
    expected = cv2.resize(stamped_pattern(320, 240, number), (640, 352))
    assert np.abs(bgr(out).astype(int) - expected).mean() < 6


class LumaInverter(Passthrough):
    """A v1 model that works on the decoder's yuv420p planes: inverts the luma, keeps the
    chroma, and keeps what it was handed."""

    pixel_format = "yuv420p"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.inputs: list[Frame] = []

    def process(self, frame: Frame) -> Frame:
        self.inputs.append(frame.copy())
        out = frame.copy()
        out[: self.spec.height] = 255 - frame[: self.spec.height]
        return out


async def test_a_yuv420p_model_gets_the_decoders_planes_and_sends_its_own_unconverted(
    open_loop: list[Loop],
) -> None:
    model = LumaInverter(SMALL)
    loop = start(open_loop, model, SMALL)
    out = await loop.track.recv()

    handed = model.inputs[-1]
    assert handed.shape == (240 * 3 // 2, 320) and handed.dtype == np.uint8
    assert read_stamp(handed[:240]) is not None  # the camera's luma, as decoded
    # No colour conversion either way: the output planes are the model's, to the bit.
    assert out.format.name == "yuv420p"
    assert np.array_equal(out.to_ndarray(), np.concatenate([255 - handed[:240], handed[240:]]))


async def test_a_slow_model_drops_frames_instead_of_queueing_them(open_loop: list[Loop]) -> None:
    class Slow(Passthrough):
        def process(self, frame: Frame) -> Frame:
            time.sleep(0.15)  # three camera frames at 20 fps
            return frame

    loop = start(open_loop, Slow(SMALL), SMALL)
    lags = []
    for _ in range(8):
        out = await loop.track.recv()
        number = read_stamp(luma(out))
        assert number is not None
        lags.append(loop.camera.sent - 1 - number)

    assert max(lags[-4:]) <= 5  # a queue would fall ~2 frames further behind per output
    assert loop.stats.frames_dropped >= 8


async def test_a_model_returning_a_wrong_frame_ends_the_leg_with_error(
    open_loop: list[Loop],
) -> None:
    class Cropping(Passthrough):
        def process(self, frame: Frame) -> Frame:
            return frame[:100]

    loop = start(open_loop, Cropping(SMALL), SMALL)
    with pytest.raises(MediaStreamError):
        await loop.track.recv()
    assert loop.faults == ["error"]
    assert loop.track.readyState == "ended"


def admitted(pacer: FramePacer, arrivals: list[float]) -> list[float]:
    return [t for t in arrivals if pacer.admit(t)]


@given(st.lists(st.floats(min_value=0.0, max_value=0.2), min_size=1, max_size=300))
def test_pacer_never_takes_more_than_the_model_fps(gaps: list[float]) -> None:
    arrivals = list(np.cumsum(gaps))
    taken = admitted(FramePacer(20), arrivals)
    for i, t in enumerate(taken):
        assert sum(1 for u in taken[i:] if u < t + 1.0) <= 20 + 2


@given(st.lists(st.floats(min_value=-0.012, max_value=0.012), min_size=2, max_size=200))
def test_pacer_takes_every_frame_of_a_jittery_source_at_the_model_fps(
    jitter: list[float],
) -> None:
    arrivals = [k / 20 + j for k, j in enumerate(jitter)]
    assert admitted(FramePacer(20), arrivals) == arrivals


def test_pacer_decimates_a_30_fps_source_to_20_fps() -> None:
    taken = admitted(FramePacer(20), [k / 30 for k in range(90)])
    assert 58 <= len(taken) <= 62
    assert max(b - a for a, b in itertools.pairwise(taken)) < 0.07


def test_pacer_takes_the_frames_after_a_late_one() -> None:
    arrivals = [0.0, 0.05, 0.13, 0.15, 0.2, 0.25]  # the third came 30 ms late (a keyframe)
    assert admitted(FramePacer(20), arrivals) == arrivals
