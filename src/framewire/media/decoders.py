"""Receive path: the decoder a server's receivers use for VP8.

aiortc decodes VP8 with libvpx at libavcodec's automatic thread count: 2.6 ms of CPU per 1280x720
frame on this project's 2-core machine, where FFmpeg's own VP8 decoder on one thread takes
1.9 ms (bench/capacity.py's stream; VP8 decoding is bit-exact, so the pixels are the same). One
thread per stream, as for the encoders: a server's cores go further as more sessions than as a
faster frame. H.264 keeps aiortc's decoder (libavcodec's; its thread count made no measurable
difference here).

`install` makes every receiver created afterwards in this process decode VP8 this way (aiortc's
decoder thread looks its decoder up by codec when the first frame arrives).
"""

from __future__ import annotations

import aiortc.rtcrtpreceiver
import av
from aiortc.codecs.base import Decoder
from aiortc.codecs.vpx import Vp8Decoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.video.codeccontext import VideoCodecContext

from framewire.media.threads import name_os_thread
from framewire.rtc import internals as private

DECODER_THREADS = 1


class FfmpegVp8Decoder(Vp8Decoder):
    """aiortc's VP8 decoder on FFmpeg's native VP8 codec, one thread."""

    def __init__(self) -> None:
        codec = av.CodecContext.create("vp8", "r")
        assert isinstance(codec, VideoCodecContext)
        codec.thread_count = DECODER_THREADS
        self.codec = codec


_STOCK = private.RECEIVER_GET_DECODER.get(aiortc.rtcrtpreceiver)
"""aiortc's own decoder lookup, taken once at import (so `install` may run any number of times)."""


def make_decoder(codec: RTCRtpCodecParameters) -> Decoder:
    """The decoder for `codec`: FFmpeg's VP8 for VP8, aiortc's own for anything else. Called in
    the receiver's decoder thread, which it names at the OS level."""
    name_os_thread()
    if codec.mimeType.lower() == "video/vp8":
        return FfmpegVp8Decoder()
    return _STOCK(codec)


def install() -> None:
    """Receivers created from now on in this process decode VP8 with `FfmpegVp8Decoder`."""
    private.RECEIVER_GET_DECODER.set(aiortc.rtcrtpreceiver, make_decoder)
