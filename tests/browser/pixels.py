"""Read what a page's <video> shows: draw its current frame to a canvas and average the pixels."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from playwright.async_api import Page

TIMEOUT = 30.0

MEASURE = """(selector) => {
  AVERAGES
  const video = document.querySelector(selector);
  if (!video || video.readyState < 2 || !video.videoWidth) return null;
  return averages(video, video.videoWidth, video.videoHeight,
    video.getVideoPlaybackQuality().totalVideoFrames);
}"""

AVERAGES = """function averages(source, width, height, frames) {
  const canvas = document.createElement("canvas");
  canvas.width = 160;
  canvas.height = 90;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0, canvas.width, canvas.height);
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  let r = 0, g = 0, b = 0, chroma = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [red, green, blue] = [data[i], data[i + 1], data[i + 2]];
    r += red; g += green; b += blue;
    chroma += Math.max(red, green, blue) - Math.min(red, green, blue);
  }
  const n = data.length / 4;
  return { r: r / n, g: g / n, b: b / n, chroma: chroma / n, width, height, frames };
}"""

STILL = """(selector) => {
  AVERAGES
  const still = document.querySelector(selector);
  if (!still || still.hidden || !still.width) return null;
  return averages(still, still.width, still.height, 1);
}"""


@dataclass(frozen=True)
class Picture:
    """Mean colour of a video's current frame; chroma is mean (max - min channel): ~0 for grey."""

    r: float
    g: float
    b: float
    chroma: float
    width: int
    height: int
    frames: int


async def measure(page: Page, selector: str) -> Picture | None:
    values = await page.evaluate(MEASURE.replace("AVERAGES", AVERAGES), selector)
    return None if values is None else Picture(**values)


async def still_picture(page: Page, selector: str = "#output-still") -> Picture | None:
    """The last output frame the page keeps after a session ended (a visible canvas)."""
    values = await page.evaluate(STILL.replace("AVERAGES", AVERAGES), selector)
    return None if values is None else Picture(**values)


async def wait_for_picture(
    page: Page, selector: str, wanted: Callable[[Picture], bool], timeout: float = TIMEOUT
) -> Picture:
    """Poll the video until its picture satisfies `wanted`; fail with the last one seen."""
    deadline = time.monotonic() + timeout
    last: Picture | None = None
    while time.monotonic() < deadline:
        last = await measure(page, selector)
        if last is not None and wanted(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{selector} never showed the wanted picture; last: {last}")
