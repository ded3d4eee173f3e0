"""A hostile media peer: after a real aiortc peer has done ICE and DTLS, it sends malformed RTP
and RTCP over the same (SRTP-protected) path, the way a broken or malicious client could.

`python -m tests.hostile URL` runs one in its own process (so that its own work does not load
the process a test measures): it opens a session, attacks its leg, and prints as JSON how many
packets it sent and how its leg fared: `streaming` (frames still come back) or the end reason."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from collections.abc import Iterator

import httpx
import pylibsrtp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRtpfbPacket, RtpPacket

from tests.peers import ClientPeer
from tests.servers import API_KEY
from tests.sessions import SESSIONS


def ssrcs(sdp: str) -> list[int]:
    return [int(s) for s in re.findall(r"^a=ssrc:(\d+) ", sdp, re.MULTILINE)]


def payload_types(sdp: str, codec: str) -> list[int]:
    return [int(p) for p in re.findall(rf"^a=rtpmap:(\d+) {codec}/", sdp, re.MULTILINE)]


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: int = 0) -> bytes:
    return RtpPacket(pt, marker, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, payload).serialize()


def with_version(packet: bytes, version: int) -> bytes:
    return bytes([(packet[0] & 0x3F) | (version << 6)]) + packet[1:]


def malformed(offer: str, answer: str) -> Iterator[bytes]:
    """One round of every kind of bad packet, in a mixed order."""
    mine = ssrcs(offer)[0]
    vp8 = payload_types(offer, "VP8")[0]
    h264 = payload_types(offer, "H264")[0]
    rand = random.Random(18)
    seq, ts = rand.randrange(1 << 16), rand.randrange(1 << 32)
    for version in (0, 1, 3):
        yield with_version(rtp(vp8, seq, ts, mine, b"\x10" + b"x" * 100, 1), version)
    for _ in range(20):  # strangers' SSRCs
        yield rtp(vp8, rand.randrange(1 << 16), ts, rand.randrange(1 << 32), b"\x10" + b"y" * 500)
    for jump in (30000, -20000, 1, 32768, 5, -1):  # impossible sequence jumps
        seq += jump
        yield rtp(vp8, seq, ts + jump * 3000, mine, b"\x10" + b"z" * 200, 1)
    for payload in (b"", b"\x90", b"\x80", b"\xff", b"\x90\x80"):  # truncated VP8 descriptors
        yield rtp(vp8, seq := seq + 1, ts, mine, payload, 1)
    for payload in (b"\x1c", b"\x1c\x85", b"\x18\x00\xff\x65", b"\x18", b"\x00", b"\x7c\x05"):
        yield rtp(h264, seq := seq + 1, ts, mine, payload, 1)  # truncated H.264 (FU-A, STAP-A)
    ts += 90_000
    for _ in range(1500):  # a giant frame: 1.8 MB that never ends (no marker)
        yield rtp(vp8, seq := seq + 1, ts, mine, b"\x00" + bytes(1200))
    yield bytes([0x80, 200, 0xFF, 0xFF]) + bytes(24)  # RTCP SR claiming 256 KB
    yield bytes([0x9F, 201, 0x00, 0x01]) + mine.to_bytes(4, "big")  # RR: 31 blocks, none there
    yield bytes([0x81, 205, 0x00, 0x02]) + bytes(8)  # a NACK with no FCI
    yield bytes([0x80, 206, 0x00, 0x00])  # a PLI shorter than its header


def feedback(offer: str, answer: str, count: int) -> Iterator[bytes]:
    """PLIs and NACKs aimed at the server's outgoing video."""
    mine, theirs = ssrcs(offer)[0], ssrcs(answer)[0]
    for n in range(count):
        if n % 2:
            yield bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=mine, media_ssrc=theirs))
        else:
            lost = list(range(n % 60000, n % 60000 + 17))
            yield bytes(
                RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=mine, media_ssrc=theirs, lost=lost)
            )


class HostilePeer:
    """Sends crafted packets over a connected ClientPeer's transport: SRTP-protected when
    libsrtp takes them, raw otherwise (then the server's SRTP check drops them)."""

    def __init__(self, peer: ClientPeer) -> None:
        transport = peer.pc.getTransceivers()[0].sender.transport
        assert isinstance(transport, RTCDtlsTransport) and transport.state == "connected"
        self.dtls = transport
        self.sent = 0

    async def send(self, packet: bytes) -> None:
        try:
            await self.dtls._send_rtp(packet)
        except pylibsrtp.Error:  # libsrtp refuses to protect it: send it as it is
            await self.dtls.transport._send(packet)
        self.sent += 1

    async def paced(self, packets: Iterator[bytes], per_second: float) -> None:
        start = time.monotonic()
        for n, packet in enumerate(packets):
            delay = start + n / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.send(packet)


async def outcome(http: httpx.AsyncClient, url: str, peer: ClientPeer) -> str:
    """'streaming' if frames still come back, else how the session ended ('frozen': neither)."""
    try:
        await peer.wait_frames(10, timeout=10.0)
        return "streaming"
    except TimeoutError:
        pass
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        body = (await http.get(url)).json()
        if body["status"] == "ended":
            return str(body["summary"]["reason"])
        await asyncio.sleep(0.2)
    return "frozen"


async def attack(base_url: str, storm_rate: int, storm_seconds: float) -> dict[str, object]:
    peer = ClientPeer()
    async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": API_KEY}) as http:
        offer = await peer.offer()
        response = await http.post(
            SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
        )
        assert response.status_code == 201, response.text
        url, answer = response.headers["location"], response.json()["sdp"]["sdp"]
        await peer.accept(answer)
        await peer.wait_frames(20)
        hostile = HostilePeer(peer)
        started = time.time()
        await hostile.paced(malformed(offer, answer), per_second=2000)
        await hostile.paced(feedback(offer, answer, int(storm_rate * storm_seconds)), storm_rate)
        ended = time.time()
        result = await outcome(http, url, peer)
        await http.delete(url)
    await peer.close()
    return {"sent": hostile.sent, "started": started, "ended": ended, "outcome": result}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--storm-rate", type=int, default=1000)
    parser.add_argument("--storm-seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(attack(args.url, args.storm_rate, args.storm_seconds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
