"""A leg's transport figures: aiortc's `getStats` (packets, loss, jitter, bytes), the codec the
negotiation chose and the type of the ICE candidate pair in use.

aiortc 1.16 reports neither the selected candidate pair nor the codec in `getStats`; they are
read through `internals` (the ICE transport's aioice connection and its nominated pairs, the
transceiver's negotiated codecs)."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCTransportStats,
)

from framewire.rtc import internals as private

WINDOW = 10.0
"""Seconds the bitrates are averaged over."""
VIDEO_CLOCK = 90_000


class RateMeter:
    """Bits per second of two byte counters over the last `WINDOW` seconds."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int, int]] = deque([(time.monotonic(), 0, 0)])

    def rates(self, bytes_in: int, bytes_out: int) -> tuple[float, float]:
        now = time.monotonic()
        while len(self._samples) > 1 and now - self._samples[1][0] >= WINDOW:
            self._samples.popleft()
        at, first_in, first_out = self._samples[0]
        self._samples.append((now, bytes_in, bytes_out))
        span = now - at
        if span <= 0:
            return 0.0, 0.0
        return (
            round((bytes_in - first_in) * 8 / span / 1000, 1),
            round((bytes_out - first_out) * 8 / span / 1000, 1),
        )


def candidate_pair_type(pc: RTCPeerConnection) -> str | None:
    """The local candidate type (host, srflx, prflx, relay) of the nominated ICE pair."""
    for transceiver in pc.getTransceivers():
        dtls = transceiver.sender.transport
        if dtls is None:
            continue
        pair = private.CONN_NOMINATED.get(private.TRANSPORT_CONNECTION.get(dtls.transport)).get(1)
        if pair is not None:
            return str(pair.local_candidate.type)
    return None


def video_codec(pc: RTCPeerConnection) -> str | None:
    for transceiver in pc.getTransceivers():
        codecs = private.TRANSCEIVER_CODECS.get(transceiver)
        if transceiver.kind == "video" and codecs:
            return str(codecs[0].mimeType)
    return None


async def transport_stats(pc: RTCPeerConnection, meter: RateMeter) -> dict[str, Any]:
    """The video stream's packets, loss and jitter each way, the bitrates over the last 10 s,
    the codec and the candidate type in use."""
    packets_in = packets_lost = jitter = packets_out = bytes_in = bytes_out = 0
    for stats in (await pc.getStats()).values():
        if isinstance(stats, RTCInboundRtpStreamStats) and stats.kind == "video":
            packets_in, packets_lost, jitter = (
                stats.packetsReceived,
                stats.packetsLost,
                stats.jitter,
            )
        elif isinstance(stats, RTCOutboundRtpStreamStats) and stats.kind == "video":
            packets_out = stats.packetsSent
        elif isinstance(stats, RTCTransportStats):
            bytes_in, bytes_out = stats.bytesReceived, stats.bytesSent
    kbps_in, kbps_out = meter.rates(bytes_in, bytes_out)
    return {
        "packets_in": packets_in,
        "packets_lost": packets_lost,
        "jitter_ms": round(jitter * 1000 / VIDEO_CLOCK, 2),
        "packets_out": packets_out,
        "bitrate_in_kbps": kbps_in,
        "bitrate_out_kbps": kbps_out,
        "codec": video_codec(pc),
        "candidate_type": candidate_pair_type(pc),
    }
