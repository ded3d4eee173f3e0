"""A model's pixels: the decoded frame as the model's input, and its output as the encoder's.

Models say which pixel format they work in (`models.base.pixel_format_of`: bgr24 unless a
model says otherwise; a shared model always says). yuv420p is what the decoder gives and the
encoder takes, so a model in it costs the session no colour conversion at all; any other format
costs one each way: one swscale pass to the model's size and format on the way in (scaling
inside swscale, on the planar input, the cheapest place), and one cv2 pass on the way out
(bgr24 -> yuv420p: 0.5 ms at 720p against 2 ms in the encoder's own swscale), into a buffer
reused every frame.
"""

from __future__ import annotations

import cv2
import numpy as np
from av import VideoFrame
from av.video.reformatter import VideoReformatter

from framewire.models.base import Frame, ModelSpec, PixelFormat

SCALER_THREADS = 1
"""swscale's threads per stream (its default is one per core): as for the codecs, a server's
cores go further as more sessions than as a faster frame."""


def expected_shape(spec: ModelSpec, pixel_format: PixelFormat) -> tuple[int, ...]:
    """The array a model of `spec` takes and returns in `pixel_format`."""
    if pixel_format == "yuv420p":
        return (spec.height * 3 // 2, spec.width)
    return (spec.height, spec.width, 3)


_TO_I420 = {"bgr24": cv2.COLOR_BGR2YUV_I420, "rgb24": cv2.COLOR_RGB2YUV_I420}


def to_encoder(image: Frame, pixel_format: PixelFormat, scratch: Frame | None = None) -> VideoFrame:
    """A model's output as the encoder's yuv420p frame: one conversion at most, none for
    yuv420p (packed frames of odd size are left to the encoder). `scratch`, a
    (height * 3 // 2, width) uint8 buffer, spares the conversion an allocation."""
    if pixel_format == "yuv420p":
        return VideoFrame.from_ndarray(image, format="yuv420p")
    height, width = image.shape[:2]
    if width % 2 or height % 2:
        return VideoFrame.from_ndarray(image, format=pixel_format)
    if scratch is None or scratch.shape != (height * 3 // 2, width):
        scratch = np.empty((height * 3 // 2, width), np.uint8)
    cv2.cvtColor(image, _TO_I420[pixel_format], dst=scratch)
    return VideoFrame.from_ndarray(scratch, format="yuv420p")


def encodable(image: Frame, scratch: Frame | None = None) -> VideoFrame:
    """A BGR image as the frame the encoder wants."""
    return to_encoder(image, "bgr24", scratch)


class PixelPath:
    """One leg's way in and out of its model (worker threads only, one frame at a time)."""

    def __init__(self, spec: ModelSpec, pixel_format: PixelFormat) -> None:
        self.spec = spec
        self.pixel_format = pixel_format
        self.shape = expected_shape(spec, pixel_format)
        self._reformatter = VideoReformatter()
        self._scratch: Frame = np.empty((spec.height * 3 // 2, spec.width), np.uint8)

    def to_model(self, frame: VideoFrame) -> Frame:
        """A decoded frame at the spec's size in the model's pixel format, as one array."""
        spec = self.spec
        scaled = self._reformatter.reformat(
            frame,
            width=spec.width,
            height=spec.height,
            format=self.pixel_format,
            threads=SCALER_THREADS,
        )
        return np.asarray(scaled.to_ndarray(), dtype=np.uint8)

    def to_encoder(self, image: Frame) -> VideoFrame:
        """The model's output for the encoder; a ValueError when it is not the spec's frame."""
        if image.shape != self.shape or image.dtype != np.uint8:
            raise ValueError(f"model returned {image.dtype} {image.shape}, not {self.shape}")
        return to_encoder(image, self.pixel_format, self._scratch)
