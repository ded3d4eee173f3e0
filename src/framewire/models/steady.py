"""Temporal stability for the built-in effects: camera noise must not become flicker.

Styles amplify small input changes: a pixel near a band boundary or an edge threshold flips
between two looks on sensor noise alone, and contrast curves scale noise up. `Steadier` holds
each input pixel at its last accepted value until it moves by more than noise does (a deadband
with a soft knee on the largest channel change), so a still scene gives the same styled output
frame after frame, while real motion (a change above the knee) passes through at once: no lag
and no ghosting for anything that moves more than the noise."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from framewire.models.base import Frame

NOISE_FLOOR = 6
"""Per-channel change (0-255) held back entirely: camera noise at normal light."""
KNEE = 18
"""Change taken in full; between the two the pixel moves part of the way."""


def _knee_lut(floor: int, knee: int) -> npt.NDArray[np.uint8]:
    """Change -> weight of the new value, 0..255 (smoothstep between floor and knee)."""
    steps = np.arange(256, dtype=np.float32)
    weight = np.clip((steps - floor) / float(knee - floor), 0.0, 1.0)
    smooth = weight * weight * (3.0 - 2.0 * weight)
    lut: npt.NDArray[np.uint8] = np.rint(255.0 * smooth).astype(np.uint8)
    return lut.reshape(256, 1)


_WEIGHT = _knee_lut(NOISE_FLOOR, KNEE)


class Steadier:
    """Per-stream state: the last accepted input. Not thread-safe; one per model instance."""

    def __init__(self) -> None:
        self._held: Frame | None = None

    def reset(self) -> None:
        self._held = None

    def __call__(self, frame: Frame) -> Frame:
        held = self._held
        if held is None or held.shape != frame.shape:
            self._held = frame.copy()
            return frame
        blue, green, red = cv2.split(cv2.absdiff(frame, held))
        weight = cv2.LUT(cv2.max(cv2.max(blue, green), red), _WEIGHT)
        taken = cv2.cvtColor(weight, cv2.COLOR_GRAY2BGR)
        kept = cv2.bitwise_not(taken)
        steady = cv2.add(
            cv2.multiply(frame, taken, scale=1 / 255), cv2.multiply(held, kept, scale=1 / 255)
        )
        out: Frame = np.asarray(steady, dtype=np.uint8)
        self._held = out
        return out
