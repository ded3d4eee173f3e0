"""Built-in effects hold still: camera noise does not become flicker, motion is not delayed."""

from __future__ import annotations

import numpy as np
import pytest

from framewire.models.base import Frame, ModelSpec
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
    input_flicker = np.mean([change(a, b) for a, b in zip(frames, frames[1:], strict=False)])
    output_flicker = np.mean([change(a, b) for a, b in zip(outputs, outputs[1:], strict=False)])
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
    lagging = change(expected, fresh.process(scene))  # what showing the old frame would cost
    assert change(model.process(moved), expected) < 0.1 * lagging
