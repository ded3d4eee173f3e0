"""Hostile media: a peer that completed ICE and DTLS sends malformed RTP and RTCP (bad versions,
strangers' SSRCs, impossible sequence jumps, truncated VP8 and H.264, a giant frame, RTCP with
bogus lengths) and storms of NACKs and PLIs at 1,000/s. Its leg keeps streaming or ends with
`error`; another session's frame rate stays within 5 %; memory stops growing. Junk sent to the
media port before DTLS is dropped and the session connects anyway."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import time

from framewire.media.leg import MEDIA_STALL
from tests.hostile import HostilePeer
from tests.peers import ClientPeer
from tests.servers import Running, framewire
from tests.sessions import SESSIONS, open_session

STORM_RATE = 1000
STORM_SECONDS = 3


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class FrameClock:
    """Samples a peer's received-frame count against wall time (shared with other processes)."""

    def __init__(self, peer: ClientPeer) -> None:
        self.peer = peer
        self.samples: list[tuple[float, int]] = []
        self._task = asyncio.ensure_future(self._sample())

    async def _sample(self) -> None:
        while True:
            self.samples.append((time.time(), self.peer.received))
            await asyncio.sleep(0.05)

    def fps(self, start: float, end: float) -> float:
        inside = [(t, n) for t, n in self.samples if start <= t <= end]
        assert len(inside) >= 2, "no samples in the window"
        (t0, n0), (t1, n1) = inside[0], inside[-1]
        return (n1 - n0) / (t1 - t0)

    def stop(self) -> None:
        self._task.cancel()


async def hostile_session(server: Running) -> dict[str, object]:
    """One hostile peer, in its own process, against `server` (tests/hostile.py)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.hostile",
        server.url,
        "--storm-rate",
        str(STORM_RATE),
        "--storm-seconds",
        str(STORM_SECONDS),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0
    result: dict[str, object] = json.loads(out)
    return result


async def test_malformed_media_and_feedback_storms_hurt_no_one_else() -> None:
    async with framewire(max_sessions=8) as server, server.client() as http:
        bystander = await open_session(server, http)
        await bystander.peer.wait_frames(20)
        clock = FrameClock(bystander.peer)
        rounds = []
        for _ in range(2):
            rss_before = rss_mb()
            result = await hostile_session(server)
            await asyncio.sleep(3.0)
            started, ended = float(result["started"]), float(result["ended"])  # type: ignore[arg-type]
            calm = (
                clock.fps(started - 3.0, started) + clock.fps(time.time() - 3.0, time.time())
            ) / 2
            attacked = clock.fps(started, ended)
            rounds.append((round(calm, 1), round(attacked, 1), round(rss_mb() - rss_before, 1)))
            print(f"\nround: fps calm/attacked, RSS growth MB {rounds[-1]}; hostile: {result}")
            assert result["outcome"] in ("streaming", "error")
        clock.stop()
        for calm, attacked, _ in rounds:
            assert attacked >= 0.95 * calm
        assert rounds[1][2] < 64, "memory kept growing in the second round"
        await bystander.close()


def server_ports(answer: str) -> list[int]:
    return [
        int(p)
        for p in re.findall(
            r"^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", answer, re.MULTILINE
        )
    ]


async def test_junk_before_dtls_is_dropped() -> None:
    async with framewire() as server, server.client() as http:
        peer = ClientPeer()
        offer = await peer.offer()
        response = await http.post(
            SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
        )
        assert response.status_code == 201, response.text
        answer = response.json()["sdp"]["sdp"]
        ports = server_ports(answer)
        assert ports
        junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        junk.bind(("127.0.0.1", 0))
        junk.setblocking(False)
        rand = os.urandom
        kinds = [
            lambda: rand(100),  # noise
            lambda: b"\x16\xfe\xfd" + rand(60),  # a DTLS record from a stranger
            lambda: b"\x80\x60" + rand(200),  # RTP before any keys exist
            lambda: b"\x81\xc8" + rand(30),  # RTCP likewise
            lambda: b"\x00\x01\x00\x00\x21\x12\xa4\x42" + rand(12),  # STUN binding, no auth
        ]
        for n in range(3000):
            for port in ports:
                junk.sendto(kinds[n % len(kinds)](), ("127.0.0.1", port))
            if n % 100 == 0:
                await asyncio.sleep(0)
        await peer.accept(answer)
        await peer.wait_frames(10)
        replies = []
        while True:
            try:
                replies.append(junk.recv(2048))
            except BlockingIOError:
                break
        # only STUN may answer (an error to the unauthenticated binding request); nothing else
        assert all(reply[:1] in (b"\x01", b"\x00") for reply in replies), replies[:3]
        junk.close()
        assert (await http.delete(response.headers["location"])).status_code == 200
        await peer.close()


async def test_a_leg_fed_only_undecodable_packets_ends_with_error() -> None:
    """The client stops its real video and keeps sending 50 packets/s that never decode (RTP
    that fails SRTP's check): its session ends with `error` within the 5 s stall bound, rather
    than sitting connected and frozen until the inactivity timeout."""
    async with framewire(inactivity_timeout=60.0) as server, server.client() as http:
        session = await open_session(server, http)
        await session.peer.wait_frames(10)
        session.peer.pc.getSenders()[0].replaceTrack(None)
        hostile = HostilePeer(session.peer)
        started = time.monotonic()

        async def junk() -> None:
            while True:
                await hostile.dtls.transport._send(b"\x80\x60" + os.urandom(300))
                await asyncio.sleep(0.02)

        sender = asyncio.ensure_future(junk())
        end = await session.events.wait_for("generation_ended", timeout=20)
        sender.cancel()
        assert end.data["reason"] == "error"
        assert time.monotonic() - started < MEDIA_STALL + 5
        await session.close()
