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


def as_yuv(frame: Frame) -> Frame:
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)


def as_bgr(frame: Frame) -> Frame:
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_I420), dtype=np.uint8)


def unchanged(frame: Frame) -> Frame:
    return frame


LAYOUTS = {"bgr24": (unchanged, unchanged), "yuv420p": (as_yuv, as_bgr)}
"""How a BGR picture is handed to the model, and how its output is read back as BGR: the
server hands the built-in model yuv420p (even sizes); a BGR caller gets the same hold."""


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("prompt", STYLES)
def test_a_still_noisy_camera_gives_a_still_picture(scene: Frame, prompt: str, layout: str) -> None:
    given, _ = LAYOUTS[layout]
    model = Stylizer(SPEC)
    model.set_prompt(prompt)
    frames = [given(noisy(scene, seed)) for seed in range(6)]
    outputs = [model.process(frame) for frame in frames]
    input_flicker = np.mean([change(a, b) for a, b in itertools.pairwise(frames)])
    output_flicker = np.mean([change(a, b) for a, b in itertools.pairwise(outputs)])
    assert output_flicker < 0.2 * input_flicker


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("prompt", ["anime", "noir"])
def test_real_motion_shows_in_the_same_frame(scene: Frame, prompt: str, layout: str) -> None:
    given, read = LAYOUTS[layout]
    model = Stylizer(SPEC)
    model.set_prompt(prompt)
    fresh = Stylizer(SPEC)
    fresh.set_prompt(prompt)
    for seed in range(3):
        model.process(given(noisy(scene, seed)))
    moved = np.roll(scene, 40, axis=1)
    expected = read(fresh.process(given(moved)))  # from a model that never saw earlier frames
    got = read(model.process(given(moved)))
    # Where the picture really moved (shapes, not texture), the output is the new frame's.
    moving = np.abs(moved.astype(np.int16) - scene).max(axis=2) > 2 * TAKE
    assert moving.mean() > 0.02
    lagging = change(expected[moving], read(fresh.process(given(scene)))[moving])
    assert change(got[moving], expected[moving]) < 0.1 * lagging


@pytest.mark.parametrize("shape", [(90, 160, 3), (135, 160)], ids=["bgr24", "yuv420p"])
def test_a_slow_fade_is_followed_in_small_steps(shape: tuple[int, ...]) -> None:
    """An exposure drifting 1 level a frame (below the motion threshold each frame) must not be
    held back and then released as one visible flash: the picture follows it closely."""
    steadier = Steadier()
    rng = np.random.default_rng(3)
    base = np.full(shape, 100.0)
    shown, actual = [], []
    for level in range(60):
        frame = np.clip(base + level + rng.normal(0.0, 2.5, base.shape), 0, 255).astype(np.uint8)
        actual.append(float(frame.mean()))
        shown.append(float(steadier(frame).mean()))
    jumps = np.abs(np.diff(shown))
    assert shown[-1] - shown[0] > 50  # it did follow the fade
    assert jumps.max() < 4.0  # never one flash (held until TAKE, it would jump by 14)
    assert max(a - s for a, s in zip(actual, shown, strict=True)) < 8.0  # never far behind
