"""Temporal stability for the built-in effects: camera noise must not become flicker.

Styles amplify small input changes: a pixel near a band boundary or an edge threshold flips
between two looks on sensor noise alone, and contrast curves scale noise up. `Steadier` holds
each input pixel at its last accepted value until it moves by more than noise does: a change
above TAKE passes through at once (real motion: no lag, no ghosting), a change at or below
NOISE_FLOOR is held, and a change between the two (a slow fade, a drifting exposure) moves the
held pixel halfway every DRIFT_EVERY frames, so it follows in small steps instead of one late
jump. A BGR pixel's change is its largest channel change; a yuv420p frame's samples (luma and
the quarter-size chroma planes, as the decoder gives them) are judged one by one, so neither
layout needs a colour conversion first.

Cost matters here (it runs on every frame of every session): three masked copies and no
per-pixel arithmetic on most frames, 0.9-1.3 ms for a 1280x720 BGR frame on one core, against
2.4 ms for a per-pixel soft-knee blend that gave the same flicker figures (bench/models.py
--tables flicker); a yuv420p frame has half the bytes and no channels to compare: 0.3 ms.
"""

from __future__ import annotations

import cv2

from framewire.models.base import Frame

NOISE_FLOOR = 6
"""Largest per-channel change (0-255) held back entirely: camera noise at normal light."""
TAKE = 14
"""A change above this is motion and is taken in full, in the same frame."""
DRIFT_EVERY = 3
"""Every this many frames, pixels changed by more than the floor move halfway to the input."""


class Steadier:
    """Per-stream state: the last accepted input. Not thread-safe; one per model instance.
    Returns its held frame: read it before the next call, never write to it."""

    def __init__(self) -> None:
        self._held: Frame | None = None
        self._frames = 0

    def reset(self) -> None:
        self._held = None

    def __call__(self, frame: Frame) -> Frame:
        held = self._held
        if held is None or held.shape != frame.shape:
            self._held = frame.copy()
            return self._held
        change = cv2.absdiff(frame, held)
        if change.ndim == 3:  # packed BGR: a pixel moves by its largest channel change
            blue, green, red = cv2.split(change)
            change = cv2.max(cv2.max(blue, green), red)
        self._frames += 1
        if self._frames % DRIFT_EVERY == 0:
            _, drifted = cv2.threshold(change, NOISE_FLOOR, 255, cv2.THRESH_BINARY)
            cv2.copyTo(cv2.addWeighted(frame, 0.5, held, 0.5, 0.0), drifted, held)
        _, moved = cv2.threshold(change, TAKE, 255, cv2.THRESH_BINARY)
        cv2.copyTo(frame, moved, held)
        return held
