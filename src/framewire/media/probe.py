"""Client-side probes of the media path: a keyframe count of a received stream (each one an
encoder rebuild or a picture-loss recovery). Used by bench/latency.py and the latency tests;
the frame stamps they pair frames with are framewire.rtc.stamp.
"""

from __future__ import annotations

import queue
from typing import Any

from aiortc import RTCPeerConnection

from framewire.media import internals as private

_H264_IDR = 5


def is_keyframe(mime_type: str, data: bytes) -> bool:
    """Whether an encoded frame (as the jitter buffer assembles it) is a keyframe: VP8's
    inverse key-frame bit (RFC 6386 9.1), or an H.264 IDR slice among its NAL units."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        return bool(data) and not data[0] & 1
    if mime == "video/h264":
        return any(part[:1] and part[0] & 0x1F == _H264_IDR for part in data.split(b"\0\0\1"))
    return False


class KeyframeCounter(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue and counts keyframes on their way through."""

    def __init__(self) -> None:
        super().__init__()
        self.keyframes = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is not None:
            codec, encoded = item
            self.keyframes += is_keyframe(codec.mimeType, encoded.data)
        super().put(item, block, timeout)


def count_keyframes(pc: RTCPeerConnection) -> KeyframeCounter:
    """Count the keyframes `pc` receives on its first video transceiver. Call before the
    connection starts (the receiver's decoder thread takes the queue when media begins)."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            counter = KeyframeCounter()
            private.RECEIVER_DECODER_QUEUE.set(transceiver.receiver, counter)
            return counter
    raise ValueError("no video transceiver to count keyframes on")
