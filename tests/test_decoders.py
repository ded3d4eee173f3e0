"""The server's VP8 decoder (FFmpeg's, one thread) gives the pixels aiortc's libvpx decoder gives,
and is the one a leg's inbound VP8 is decoded with."""

from __future__ import annotations

import fractions

import av
import numpy as np
from aiortc.codecs.h264 import H264Decoder
from aiortc.codecs.vpx import Vp8Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import VideoFrame

from framewire.media import decoders
from framewire.media.codecs import realtime_vp8
from tests.stamped import stamped_pattern

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)


def vp8_stream(count: int) -> list[bytes]:
    """`count` frames of a moving 640x360 pattern, VP8 at realtime settings."""
    frames = []
    encoder = None
    for index in range(count):
        frame = VideoFrame.from_ndarray(stamped_pattern(640, 360, index), format="bgr24")
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = index, fractions.Fraction(1, 20)
        encoder = encoder or realtime_vp8(frame, 800_000, 20)
        frames.extend(bytes(packet) for packet in encoder.encode(frame))
    return frames


def decode_all(decoder: Vp8Decoder, stream: list[bytes]) -> list[np.ndarray]:
    pictures = []
    for index, data in enumerate(stream):
        for frame in decoder.decode(JitterFrame(data=data, timestamp=index * 4500)):
            assert isinstance(frame, av.VideoFrame)
            pictures.append(frame.to_ndarray(format="yuv420p"))
    return pictures


def test_ffmpeg_vp8_decodes_the_same_pixels_as_libvpx() -> None:
    stream = vp8_stream(30)
    ours = decode_all(decoders.FfmpegVp8Decoder(), stream)
    stock = decode_all(Vp8Decoder(), stream)
    assert len(ours) == len(stock) == 30
    assert all(np.array_equal(a, b) for a, b in zip(ours, stock, strict=True))


def test_legs_decode_vp8_with_it_and_h264_with_aiortcs_decoder() -> None:
    assert isinstance(decoders.make_decoder(VP8), decoders.FfmpegVp8Decoder)
    assert type(decoders.make_decoder(H264)) is H264Decoder
