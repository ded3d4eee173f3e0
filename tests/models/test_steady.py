"""Built-in effects hold still: camera noise does not become flicker, motion is not delayed."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from framewire.models.base import Frame, ModelSpec
from framewire.models.steady import TAKE, Steadier
from framewire.models.stylizer import Stylizer

SPEC = ModelSpec("s", fps=20, width=640, height=360, accepts_image=True, backend="stylizer")
STYLES = ["anime", "watercolor", "pencil sketch", "cyberpunk", "thermal", "noir", "sepia", "red"]


def noisy(scene: Frame, seed: int) -> Frame:
    noise = np.random.default_rng(seed).normal(0.0, 2.5, scene.shape)
    return np.clip(scene + noise, 0, 255).astype(np.uint8)


def change(a: Frame, b: Frame) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


@pytest.mark.parametrize("prompt", STYLES)
def test_a_still_noisy_camera_gives_a_still_picture(scene: Frame, prompt: str) -> None:
    model = Stylizer(SPEC)
    model.set_prompt(prompt)
    frames = [noisy(scene, seed) for seed in range(6)]
    outputs = [model.process(frame) for frame in frames]
    input_flicker = np.mean([change(a, b) for a, b in itertools.pairwise(frames)])
    output_flicker = np.mean([change(a, b) for a, b in itertools.pairwise(outputs)])
    assert output_flicker < 0.2 * input_flicker


@pytest.mark.parametrize("prompt", ["anime", "noir"])
def test_real_motion_shows_in_the_same_frame(scene: Frame, prompt: str) -> None:
    model = Stylizer(SPEC)
    model.set_prompt(prompt)
    fresh = Stylizer(SPEC)
    fresh.set_prompt(prompt)
    for seed in range(3):
        model.process(noisy(scene, seed))
    moved = np.roll(scene, 40, axis=1)
    expected = fresh.process(moved)  # from a model that never saw the earlier frames
    got = model.process(moved)
    # Where the picture really moved (shapes, not texture), the output is the new frame's.
    moving = np.abs(moved.astype(np.int16) - scene).max(axis=2) > 2 * TAKE
    assert moving.mean() > 0.02
    lagging = change(expected[moving], fresh.process(scene)[moving])
    assert change(got[moving], expected[moving]) < 0.1 * lagging


def test_a_slow_fade_is_followed_in_small_steps() -> None:
    """An exposure drifting 1 level a frame (below the motion threshold each frame) must not be
    held back and then released as one visible flash: the picture follows it closely."""
    steadier = Steadier()
    rng = np.random.default_rng(3)
    base = np.full((90, 160, 3), 100.0)
    shown, actual = [], []
    for level in range(60):
        frame = np.clip(base + level + rng.normal(0.0, 2.5, base.shape), 0, 255).astype(np.uint8)
        actual.append(float(frame.mean()))
        shown.append(float(steadier(frame).mean()))
    jumps = np.abs(np.diff(shown))
    assert shown[-1] - shown[0] > 50  # it did follow the fade
    assert jumps.max() < 4.0  # never one flash (held until TAKE, it would jump by 14)
    assert max(a - s for a, s in zip(actual, shown, strict=True)) < 8.0  # never far behind


def yuv(frame: Frame) -> Frame:
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)


@pytest.mark.parametrize("prompt", STYLES)
def test_a_still_noisy_camera_gives_a_still_yuv420p_picture(scene: Frame, prompt: str) -> None:
    """The same hold on the decoder's planes: the server's path for even-sized models."""
    model = Stylizer(SPEC)
    model.set_prompt(prompt)
    frames = [yuv(noisy(scene, seed)) for seed in range(6)]
    outputs = [model.process(frame) for frame in frames]
    input_flicker = np.mean([change(a, b) for a, b in itertools.pairwise(frames)])
    output_flicker = np.mean([change(a, b) for a, b in itertools.pairwise(outputs)])
    assert output_flicker < 0.2 * input_flicker


@pytest.mark.parametrize("prompt", ["anime", "noir"])
def test_real_motion_shows_in_the_same_yuv420p_frame(scene: Frame, prompt: str) -> None:
    model = Stylizer(SPEC)
    model.set_prompt(prompt)
    fresh = Stylizer(SPEC)
    fresh.set_prompt(prompt)
    for seed in range(3):
        model.process(yuv(noisy(scene, seed)))
    moved = np.roll(scene, 40, axis=1)
    expected, got = fresh.process(yuv(moved)), model.process(yuv(moved))
    still = fresh.process(yuv(scene))
    luma = scene.shape[0]
    moving = np.abs(yuv(moved)[:luma].astype(np.int16) - yuv(scene)[:luma]) > 2 * TAKE
    assert moving.mean() > 0.02
    lagging = change(expected[:luma][moving], still[:luma][moving])
    assert change(got[:luma][moving], expected[:luma][moving]) < 0.1 * lagging


def test_a_slow_fade_on_yuv420p_planes_is_followed_in_small_steps() -> None:
    steadier = Steadier()
    rng = np.random.default_rng(3)
    base = np.full((135, 160), 100.0)
    shown, actual = [], []
    for level in range(60):
        frame = np.clip(base + level + rng.normal(0.0, 2.0, base.shape), 0, 255).astype(np.uint8)
        actual.append(float(frame.mean()))
        shown.append(float(steadier(frame).mean()))
    jumps = np.abs(np.diff(shown))
    assert shown[-1] - shown[0] > 50
    assert jumps.max() < 4.0
    assert max(a - s for a, s in zip(actual, shown, strict=True)) < 8.0
