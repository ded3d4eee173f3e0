"""A synthetic but photo-like test scene: sky gradient, sun, grass texture, a face, colour cards."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from framewire.models.base import Frame


def make_scene(width: int = 1280, height: int = 720) -> Frame:
    """Deterministic BGR scene with gradients, hard shapes, skin tones and saturated patches."""
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky_top = np.array([200, 120, 40], np.float32)
    sky_low = np.array([235, 210, 170], np.float32)
    scene = (sky_top * (1 - ys) + sky_low * ys) * np.ones((1, width, 1), np.float32)
    horizon = int(height * 0.6)
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 18.0, (height - horizon, width)).astype(np.float32)
    grass = cv2.GaussianBlur(noise, (0, 0), 1.2)[..., None]
    scene[horizon:] = np.array([50, 140, 70], np.float32) + grass
    img: Frame = np.clip(scene, 0, 255).astype(np.uint8)
    s = width / 1280
    cv2.circle(img, (int(1050 * s), int(140 * s)), int(70 * s), (80, 220, 255), -1)
    cv2.ellipse(
        img,
        (int(640 * s), int(330 * s)),
        (int(110 * s), int(150 * s)),
        0,
        0,
        360,
        (120, 160, 225),
        -1,
    )
    for dx in (-45, 45):
        cv2.circle(img, (int((640 + dx) * s), int(300 * s)), int(12 * s), (40, 30, 30), -1)
    cv2.ellipse(
        img, (int(640 * s), int(400 * s)), (int(40 * s), int(15 * s)), 0, 0, 180, (60, 60, 170), -1
    )
    cards = [(30, 30, 220), (220, 60, 30), (200, 40, 200), (210, 200, 20), (128, 128, 128)]
    for i, colour in enumerate(cards):
        x = int((60 + i * 90) * s)
        cv2.rectangle(img, (x, int(560 * s)), (x + int(70 * s), int(660 * s)), colour, -1)
    cv2.rectangle(
        img, (int(900 * s), int(420 * s)), (int(1180 * s), int(640 * s)), (20, 20, 160), -1
    )
    cv2.putText(
        img,
        "framewire",
        (int(930 * s), int(540 * s)),
        cv2.FONT_HERSHEY_SIMPLEX,
        1.2 * s,
        (255, 255, 255),
        max(1, int(3 * s)),
    )
    return img


@pytest.fixture(scope="session")
def scene() -> Frame:
    """A 640x360 scene: big enough to look like video, small enough for fast tests."""
    return make_scene(640, 360)
