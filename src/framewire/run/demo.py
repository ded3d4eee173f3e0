"""The demo clip: a synthetic scene drawn with numpy and OpenCV, nothing downloaded.

A sunset sky over a scrolling perspective grid, a cartoon face that sways, looks around, blinks
and talks, bouncing shapes, a title and a running clock: colour, gradients, edges, text and real
motion everywhere, so every model look has something to work on.
"""

from __future__ import annotations

import fractions
import math
import os
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

BGRFrame = npt.NDArray[np.uint8]
WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 20, 10.0
AA = cv2.LINE_AA


def _sky(width: int, height: int) -> BGRFrame:
    """Deep blue at the top to orange at the horizon, then a dark violet ground."""
    horizon = int(height * 0.58)
    sky = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None]
    top, low = np.array([90, 30, 20], np.float32), np.array([40, 140, 255], np.float32)
    image = np.empty((height, width, 3), np.float32)
    image[:horizon] = (top + (low - top) * sky**1.6)[:, None, :]
    ground = np.linspace(0.0, 1.0, height - horizon, dtype=np.float32)[:, None]
    near, far = np.array([70, 20, 50], np.float32), np.array([120, 40, 110], np.float32)
    image[horizon:] = (far + (near - far) * ground)[:, None, :]
    return np.clip(image, 0, 255).astype(np.uint8)


def _grid(image: BGRFrame, t: float) -> None:
    height, width = image.shape[:2]
    horizon = int(height * 0.58)
    centre = width // 2
    for k in range(-12, 13):
        cv2.line(image, (centre, horizon), (centre + k * width // 6, height), (255, 80, 230), 2, AA)
    scroll = (t * 0.6) % 1.0
    for k in range(10):
        depth = (k + scroll) / 10.0
        y = horizon + int((height - horizon) * depth**2.2)
        cv2.line(image, (0, y), (width, y), (255, 200, 80), 2, AA)


def _face(image: BGRFrame, t: float, s: float) -> None:
    """A cartoon head and shoulders; `s` scales from the 1280x720 design."""
    height, width = image.shape[:2]
    cx = int(width * (0.5 + 0.18 * math.sin(t * 0.9)))
    cy = int(height * 0.47 + 10 * s * math.sin(t * 2.1))

    def p(x: float, y: float) -> tuple[int, int]:
        return int(cx + x * s), int(cy + y * s)

    def r(value: float) -> int:
        return max(1, int(value * s))

    shoulders = np.array([p(-230, 330), p(-150, 190), p(150, 190), p(230, 330)], np.int32)
    cv2.fillPoly(image, [shoulders], (60, 160, 40), AA)
    cv2.rectangle(image, p(-40, 120), p(40, 200), (120, 170, 230), -1, AA)
    cv2.ellipse(image, p(0, 0), (r(125), r(160)), 0, 0, 360, (125, 175, 235), -1, AA)
    cv2.ellipse(image, p(0, -60), (r(135), r(115)), 0, 180, 360, (30, 40, 90), -1, AA)
    for side in (-1, 1):
        cv2.ellipse(image, p(side * 125, 10), (r(22), r(38)), 0, 0, 360, (110, 160, 220), -1, AA)
    look = 14 * math.sin(t * 1.3)
    blink = (t % 3.0) < 0.15
    for side in (-1, 1):
        if blink:
            cv2.line(image, p(side * 48 - 26, -5), p(side * 48 + 26, -5), (40, 40, 40), r(5), AA)
            continue
        cv2.ellipse(image, p(side * 48, -5), (r(30), r(20)), 0, 0, 360, (250, 250, 250), -1, AA)
        cv2.circle(image, p(side * 48 + look, -5), r(12), (160, 90, 30), -1, AA)
        cv2.circle(image, p(side * 48 + look, -5), r(5), (10, 10, 10), -1, AA)
        cv2.line(image, p(side * 48 - 28, -40), p(side * 48 + 28, -44), (30, 40, 90), r(7), AA)
    cv2.line(image, p(0, 5), p(-8, 45), (90, 130, 200), r(4), AA)
    talk = abs(math.sin(t * 7.0))
    cv2.ellipse(image, p(0, 85), (r(42), r(6 + 22 * talk)), 0, 0, 360, (50, 40, 170), -1, AA)
    for side in (-1, 1):
        cv2.circle(image, p(side * 80, 55), r(18), (120, 140, 245), -1, AA)


def _shapes(image: BGRFrame, t: float, s: float) -> None:
    height, width = image.shape[:2]
    colours = [(0, 220, 255), (255, 120, 0), (80, 255, 80), (200, 60, 255)]
    for i, colour in enumerate(colours):
        phase = t * (0.7 + 0.23 * i) + i * 1.7
        x = int(width * (0.08 + 0.84 * (0.5 + 0.5 * math.sin(phase))))
        y = int(height * 0.58 - abs(math.sin(phase * 2.3)) * height * 0.4)
        if i % 2:
            cv2.circle(image, (x, y), int(34 * s), colour, -1, AA)
            cv2.circle(image, (x, y), int(34 * s), (255, 255, 255), max(1, int(3 * s)), AA)
        else:
            size = 38 * s
            angle = math.degrees(phase * 1.5)
            box = cv2.boxPoints(((x, y), (size * 2, size * 2), angle)).astype(np.int32)
            cv2.fillPoly(image, [box], colour, AA)
    sun_x = int(width * (0.15 + 0.05 * t / SECONDS))
    cv2.circle(image, (sun_x, int(height * 0.2)), int(60 * s), (120, 235, 255), -1, AA)


def _text(image: BGRFrame, t: float, s: float) -> None:
    height, width = image.shape[:2]
    font, bold = cv2.FONT_HERSHEY_DUPLEX, max(1, int(3 * s))
    for offset, colour in ((4, (0, 0, 0)), (0, (255, 255, 255))):
        origin = (int((26 + offset) * s), int((66 + offset) * s))
        cv2.putText(image, "framewire", origin, font, 2.0 * s, colour, bold, AA)
    clock = f"t = {t:05.2f} s"
    cv2.putText(
        image, clock, (width - int(300 * s), int(60 * s)), font, 1.1 * s, (255, 255, 255), 2
    )
    ticker = "realtime AI video  *  WebRTC in, WebRTC out  *  one prompt away  *  "
    x = width - int((t * 160 * s) % (width + 900 * s))
    cv2.putText(image, ticker, (x, height - int(60 * s)), font, 0.9 * s, (230, 255, 255), 2, AA)


def frames(
    seconds: float = SECONDS, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS
) -> Iterator[BGRFrame]:
    """The demo scene, frame by frame (BGR, uint8)."""
    background = _sky(width, height)
    scale = min(width / WIDTH, height / HEIGHT)
    for index in range(round(seconds * fps)):
        t = index / fps
        image = background.copy()
        _grid(image, t)
        _shapes(image, t, scale)
        _face(image, t, scale)
        _text(image, t, scale)
        yield image


def write_clip(
    path: str | os.PathLike[str],
    seconds: float = SECONDS,
    width: int = WIDTH,
    height: int = HEIGHT,
    fps: int = FPS,
) -> Path:
    """Write the demo scene to an H.264 mp4 and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(os.fspath(target), "w") as container:
        stream = container.add_stream("libx264", rate=fractions.Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18"}
        for index, image in enumerate(frames(seconds, width, height, fps)):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return target
