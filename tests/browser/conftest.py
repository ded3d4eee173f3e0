"""Real Chromium (Debian's, driven by Playwright) with a fake camera playing a known picture.

Traffic stays on this machine. Measured with `strace -f -yy` on Chromium's sends while these
tests ran: the server gathers on 127.0.0.1 only (tests/servers.py), so every packet Chromium
sends goes to 127.0.0.1 (TCP for HTTP, UDP for ICE and media, some from sockets bound to other
local addresses, which still stay on this host). Without `--host-resolver-rules` Chromium also
sent DNS queries to the configured resolver (update.googleapis.com, and stun.l.google.com from
the reference client's STUN server); with it no name resolves and nothing leaves. So no network
namespace is needed (`unshare -n` would have to hold the in-process server as well).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
CAMERA_SIZE = (640, 360)
CAMERA_FPS = 20
CAMERA_FRAMES = 40


def camera_picture(width: int, height: int, phase: int) -> np.ndarray:
    """A colourful sunset (BGR): sky gradient, sun, hills, a red balloon crossing, and their
    reflection in rippling water. Mean chroma ~85, so a grey output is unmistakable."""
    rows = np.arange(height)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    horizon = int(height * 0.6)
    # (position down the sky, B, G, R): violet at the top, magenta, orange at the horizon.
    stops = np.array([[0.0, 110, 30, 40], [0.5, 150, 50, 170], [1.0, 40, 140, 255]], np.float32)
    down = np.clip(np.linspace(0.0, 1.0, height) / 0.6, 0.0, 1.0)
    sky = np.stack([np.interp(down, stops[:, 0], stops[:, c]) for c in (1, 2, 3)], -1)
    image = np.repeat(sky[:, None, :], width, 1).astype(np.uint8)
    sun = (int(width * 0.68), int(height * 0.5))
    cv2.circle(image, sun, int(height * 0.14), (90, 225, 255), -1, cv2.LINE_AA)
    far = horizon - height * 0.13 * (0.6 + 0.4 * np.sin(xs * 5.0 + 0.8))
    near = horizon - height * 0.07 * (0.5 + 0.5 * np.sin(xs * 9.0 + 2.0))
    image[(rows >= far) & (rows < horizon)] = (70, 120, 35)
    image[(rows >= near) & (rows < horizon)] = (45, 85, 25)
    x = int(width * (0.1 + 0.8 * phase / CAMERA_FRAMES))
    y = int(height * (0.25 + 0.04 * np.sin(phase / CAMERA_FRAMES * 2 * np.pi)))
    cv2.line(image, (x, y), (x, y + height // 5), (235, 235, 235), 1, cv2.LINE_AA)
    cv2.circle(image, (x, y), height // 12, (60, 50, 235), -1, cv2.LINE_AA)
    depth = height - horizon
    mirror = image[horizon - depth : horizon][::-1].astype(np.float32)
    ripple = 0.6 + 0.05 * np.sin(np.arange(depth)[:, None, None] * 0.4 + phase * 0.5)
    water = mirror * ripple + np.array([50, 25, 0], np.float32)
    image[horizon:] = np.clip(water, 0, 255).astype(np.uint8)
    return image


def write_y4m(path: Path, width: int, height: int, fps: int, frames: int) -> Path:
    """A YUV4MPEG2 file (4:2:0) that Chrome's fake capture device plays in a loop."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for phase in range(frames):
            i420 = cv2.cvtColor(camera_picture(width, height, phase), cv2.COLOR_BGR2YUV_I420)
            out.write(b"FRAME\n")
            out.write(i420.tobytes())
    return path


@pytest.fixture(scope="session")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("camera")
    return write_y4m(folder / "camera.y4m", *CAMERA_SIZE, CAMERA_FPS, CAMERA_FRAMES)


@pytest.fixture
async def browser(camera_file: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera_file}"],
        )
        try:
            yield chromium
        finally:
            await chromium.close()
