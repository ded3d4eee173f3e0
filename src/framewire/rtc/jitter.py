"""Receive path: release a video frame as soon as it is complete, not one frame later.

aiortc's `JitterBuffer` hands a frame to the decoder only when the first packet of the *next*
frame arrives, which adds one frame interval per receiving hop (~50 ms at 20 fps). VP8 (RFC
7741) and H.264 (RFC 6184) senders set the RTP marker bit on a frame's last packet, so a frame
whose packets are all present from the buffer's origin up to a marker packet is complete and
can go at once. Everything else (losses, reordering within capacity, overflow and its PLI,
senders that never set the marker) stays aiortc's own logic.

`install_marker_release` swaps the buffer of each video receiver of one peer connection: a
per-instance change, never a process-wide patch. The private aiortc attributes it reaches (the
receiver's buffer, the buffer's own state) are named in internals.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from framewire.rtc import internals as private

VIDEO_CAPACITY = 512
"""The capacity aiortc gives video receivers."""

HOLE_TIMEOUT = 0.25
"""Seconds a packet may be missing at the buffer's origin (NACK's chance to repair it: several
round trips on any network worth using) before the frames behind it are released."""


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, plus release of a complete frame on its marker packet."""

    def __init__(
        self, capacity: int = VIDEO_CAPACITY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(capacity=capacity, is_video=True)
        # Read directly below (the per-packet path): checked once here.
        private.require(
            self, private.JITTER_ORIGIN, private.JITTER_PACKETS, private.JITTER_CAPACITY
        )
        self._clock = clock
        self._last_release: float | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        now = self._clock()
        if frame is not None or self._last_release is None:
            self._last_release = now
        elif packet.marker and now - self._last_release >= HOLE_TIMEOUT:
            # A frame ended, none could be released, and none has been for a while: a hole.
            skipped = self._skip_hole()
            if skipped is not None:
                self._last_release = now
                return True, skipped  # frames were dropped: ask the sender for a keyframe
        return pli, frame

    def _skip_hole(self) -> JitterFrame | None:
        """A packet missing at the origin stalls aiortc's buffer until it overflows (512
        packets: seconds of video) before it asks for a keyframe. After HOLE_TIMEOUT the hole is
        not a reordering but a loss retransmission did not repair: drop up to the first complete
        frame behind it and release that.

        A frame is known to start only right after a marker packet or a packet of another
        timestamp; a packet behind a gap may be a frame's tail, so it starts nothing."""
        assert self._origin is not None
        run_start: int | None = None
        previous: RtpPacket | None = self._packets[self._origin % self._capacity]
        for count in range(1, self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                run_start = None
            else:
                if previous is not None and (
                    previous.marker or previous.timestamp != packet.timestamp
                ):
                    run_start = count
                if packet.marker and run_start is not None:
                    self.remove(run_start)
                    return self._complete_frame()
            previous = packet
        return None

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        # aiortc's rule first, so nothing it would release comes later; then the marker rule.
        return super()._remove_frame(sequence_number) or self._complete_frame()

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
                    data=b"".join(private.PACKET_DATA.get(p) for p in packets if p is not None),
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
            private.RECEIVER_JITTER_BUFFER.get(receiver), MarkerJitterBuffer
        ):
            private.RECEIVER_JITTER_BUFFER.set(receiver, MarkerJitterBuffer())
