"""Receive path: release a video frame as soon as it is complete, not one frame later.

aiortc's `JitterBuffer` hands a frame to the decoder only when the first packet of the *next*
frame arrives, which adds one frame interval per receiving hop (~50 ms at 20 fps). VP8 (RFC
7741) and H.264 (RFC 6184) senders set the RTP marker bit on a frame's last packet, so a frame
whose packets are all present from the buffer's origin up to a marker packet is complete and
can go at once. Everything else (losses, reordering within capacity, overflow and its PLI,
senders that never set the marker) stays aiortc's own logic.

`install_marker_release` swaps the buffer of each video receiver of one peer connection: a
per-instance change, never a process-wide patch. It reaches the receiver's private
`__jitter_buffer` of the pinned aiortc version; tests cover it.
"""

from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer, JitterFrame

VIDEO_CAPACITY = 512
"""The capacity aiortc gives video receivers."""

_BUFFER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, plus release of a complete frame on its marker packet."""

    def __init__(self, capacity: int = VIDEO_CAPACITY) -> None:
        super().__init__(capacity=capacity, is_video=True)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        return self._complete_frame() or super()._remove_frame(sequence_number)

    def _complete_frame(self) -> JitterFrame | None:
        """The frame at the origin if its packets are contiguous up to a marker packet."""
        if self._origin is None:
            return None
        timestamp = None
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                return None  # the marker was not set: aiortc's timestamp rule decides
            if packet.marker:
                packets = [
                    self._packets[(self._origin + i) % self._capacity] for i in range(count + 1)
                ]
                frame = JitterFrame(
                    data=b"".join(p._data for p in packets if p is not None),  # type: ignore[attr-defined]
                    timestamp=timestamp,
                )
                self.remove(count + 1)
                return frame
        return None


def install_marker_release(pc: RTCPeerConnection) -> None:
    """Give every video receiver of `pc` a MarkerJitterBuffer. Call after the remote
    description is set (receivers exist) and before media flows (the buffer is empty)."""
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if transceiver.kind == "video" and not isinstance(
            getattr(receiver, _BUFFER_ATTRIBUTE), MarkerJitterBuffer
        ):
            setattr(receiver, _BUFFER_ATTRIBUTE, MarkerJitterBuffer())
