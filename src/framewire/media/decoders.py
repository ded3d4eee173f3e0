"""Receive path: the decoder a leg's inbound video is decoded with (`media.inbound`, in the
model's worker thread).

aiortc decodes VP8 with libvpx at libavcodec's automatic thread count: 2.6 ms of CPU per 1280x720
frame on this project's 2-core machine, where FFmpeg's own VP8 decoder on one thread takes
1.9 ms (bench/capacity.py's stream; VP8 decoding is bit-exact, so the pixels are the same). One
thread per stream, as for the encoders: a server's cores go further as more sessions than as a
faster frame. H.264 keeps aiortc's decoder (libavcodec's; its thread count made no measurable
difference here).
"""

from __future__ import annotations

import av
from aiortc.codecs import get_decoder
from aiortc.codecs.base import Decoder
from aiortc.codecs.vpx import Vp8Decoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.video.codeccontext import VideoCodecContext

DECODER_THREADS = 1


class FfmpegVp8Decoder(Vp8Decoder):
    """aiortc's VP8 decoder on FFmpeg's native VP8 codec, one thread."""

    def __init__(self) -> None:
        codec = av.CodecContext.create("vp8", "r")
        assert isinstance(codec, VideoCodecContext)
        codec.thread_count = DECODER_THREADS
        self.codec = codec


def make_decoder(codec: RTCRtpCodecParameters) -> Decoder:
    """The decoder for `codec`: FFmpeg's VP8 for VP8, aiortc's own for anything else."""
    if codec.mimeType.lower() == "video/vp8":
        return FfmpegVp8Decoder()
    return get_decoder(codec)
