"""One UDP port for every leg (`FRAMEWIRE_ICE_UDP_PORT`), on loopback: every answer offers the
same port, concurrent sessions each get only their own media back (frames stamped with a per-leg
number range), an ICE restart moves a session to a new ufrag on the same port, and garbage sent
to the port at 5,000 datagrams/s disturbs no session."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sys
import time
from collections.abc import AsyncIterator

import httpx
from av import VideoFrame

from tests.peers import ClientPeer, PatternTrack
from tests.restart_client import restart_client
from tests.servers import Running, framewire
from tests.sessions import SESSIONS, open_session
from tests.sse import EventReader
from tests.stamped import stamp_of, stamped_pattern
from tests.test_ice_restart import FAST, attribute

HOST_PORT = re.compile(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host")
SPAN = 400
"""Stamp numbers each leg's camera owns: leg i sends i*SPAN, i*SPAN+1, ..."""
PATIENT = {"ice_disconnect_grace": 60.0}
"""Many sessions on a loaded 2-core machine can go quiet for seconds: these test peers do not
answer ICE restarts, so the server must not ask for one here."""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OffsetCamera(PatternTrack):
    """A StampedCamera whose frame N carries the number `offset + N`."""

    def __init__(self, offset: int, fps: int, width: int, height: int) -> None:
        super().__init__(fps, width, height)
        self.offset = offset

    async def recv(self) -> VideoFrame:
        frame = await super().recv()
        number = self.offset + self._count - 1
        out = VideoFrame.from_ndarray(
            stamped_pattern(self.width, self.height, number), format="bgr24"
        )
        out.pts, out.time_base = frame.pts, frame.time_base
        return out


def offset_peer(offset: int, fps: int = 10, width: int = 160, height: int = 120) -> ClientPeer:
    peer = ClientPeer(fps, width, height)
    camera = OffsetCamera(offset, fps, width, height)
    peer.pc.getSenders()[0].replaceTrack(camera)
    peer.source = camera
    return peer


async def create(server: Running, http: httpx.AsyncClient, peer: ClientPeer) -> EventReader:
    """Create a passthrough session for `peer`, connect it; its SSE reader."""
    response = await http.post(
        SESSIONS,
        json={"model": "passthrough", "sdp": {"type": "offer", "sdp": await peer.offer()}},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    await peer.accept(body["sdp"]["sdp"])
    events = body["events"]
    return EventReader(
        server.client(None), f"{events['url']}?event_token={events['event_token']}"
    ).start()


async def own_stamps(peer: ClientPeer, offset: int, count: int) -> list[int]:
    """Wait for `count` frames; every readable stamp must be in this leg's range."""
    await peer.wait_frames(count, timeout=60)
    stamps = [s for s in (stamp_of(f) for f in peer.frames) if s is not None]
    assert stamps, "no frame carried a readable stamp"
    foreign = [s for s in stamps if not offset <= s < offset + SPAN]
    assert not foreign, f"leg with stamps {offset}.. received another leg's frames: {foreign}"
    return stamps


async def test_concurrent_sessions_share_one_port_and_each_gets_only_its_own_media() -> None:
    port, count = free_udp_port(), 20
    async with (
        framewire(
            ice_udp_port=port, max_sessions=count, key_concurrency=count, **PATIENT
        ) as server,
        server.client() as http,
    ):
        peers = [offset_peer(i * SPAN) for i in range(count)]
        readers: list[EventReader] = []
        try:
            readers = list(await asyncio.gather(*(create(server, http, p) for p in peers)))
            ports = {int(m) for p in peers for m in HOST_PORT.findall(p.pc.remoteDescription.sdp)}
            assert ports == {port}
            for i, peer in enumerate(peers):
                await own_stamps(peer, i * SPAN, 5)
            for reader in readers:
                assert "error" not in reader.names()
        finally:
            for reader in readers:
                await reader.stop()
            for peer in peers:
                await peer.close()


async def test_an_ice_restart_on_the_shared_port_moves_to_a_new_ufrag_and_media_resumes() -> None:
    port = free_udp_port()
    async with (
        framewire(ice_udp_port=port, **FAST) as server,
        server.client() as http,
        restart_client(server, http) as client,
    ):
        assert client.events is not None
        first = client.body["sdp"]["sdp"]
        assert {int(p) for p in HOST_PORT.findall(first)} == {port}
        await client.peer.wait_frames(10)
        client.drop_path()
        await client.events.wait_for("ice-restart", timeout=15)
        await client.wait_restarted()
        await client.peer.wait_frames(10)
        answer = client.restart_answers[0]
        assert attribute(answer, "ice-ufrag") != attribute(first, "ice-ufrag")
        assert {int(p) for p in HOST_PORT.findall(answer)} <= {port}
        assert client.peer.pc.remoteDescription is not None
        assert {int(p) for p in HOST_PORT.findall(client.peer.pc.remoteDescription.sdp)} == {port}
        assert "error" not in client.events.names()


JUNK_SENDER = r"""
import os, socket, struct, sys, time
port, rate, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
def stun(ufrag):
    name = ufrag.encode()
    attr = struct.pack("!HH", 0x0006, len(name)) + name + b"\0" * (-len(name) % 4)
    return struct.pack("!HHI12s", 0x0001, len(attr), 0x2112A442, os.urandom(12)) + attr
kinds = [
    lambda: os.urandom(100),                       # random bytes
    lambda: stun("zzzz:abcd")[:15],                # truncated STUN
    lambda: stun("zzzz:abcd"),                     # STUN with an unknown ufrag
    lambda: bytes([23, 254, 253]) + os.urandom(60),  # a DTLS record from an unknown address
    lambda: bytes([0x80, 96]) + os.urandom(150),   # RTP from an unknown address
]
sent, start = 0, time.monotonic()
while time.monotonic() - start < seconds:
    sock.sendto(kinds[sent % len(kinds)](), ("127.0.0.1", port))
    sent += 1
    lag = start + sent / rate - time.monotonic()
    if lag > 0:
        time.sleep(lag)
print(sent)
"""


@contextlib.asynccontextmanager
async def junk(port: int, rate: int, seconds: float) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        JUNK_SENDER,
        str(port),
        str(rate),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def frames_in(peer: ClientPeer, seconds: float) -> float:
    before, start = peer.received, time.monotonic()
    await asyncio.sleep(seconds)
    return (peer.received - before) / (time.monotonic() - start)


async def test_garbage_on_the_shared_port_disturbs_no_session() -> None:
    port, rate, seconds = free_udp_port(), 5000, 5.0
    async with framewire(ice_udp_port=port, **PATIENT) as server, server.client() as http:
        peers = [offset_peer(i * SPAN) for i in range(3)]
        readers: list[EventReader] = []
        try:
            for peer in peers:
                readers.append(await create(server, http, peer))
            for i, peer in enumerate(peers):
                await own_stamps(peer, i * SPAN, 5)
            calm = [await frames_in(p, 2.0) for p in peers]
            async with junk(port, rate, seconds) as sender:
                stormy = await asyncio.gather(*(frames_in(p, seconds - 1.0) for p in peers))
                out, _ = await sender.communicate()
            sent = int(out)
            assert sent >= rate * seconds * 0.8, f"only {sent} junk datagrams were sent"
            dropped = server.app.state.legs.ice.sockets.dropped
            assert dropped >= sent * 0.9, (dropped, sent)
            for before, during in zip(calm, stormy, strict=True):
                assert during >= 0.7 * before, (calm, stormy)
            for i, peer in enumerate(peers):
                await own_stamps(peer, i * SPAN, 5)
            for reader in readers:
                assert not {"error", "generation_ended"} & set(reader.names())
        finally:
            for reader in readers:
                await reader.stop()
            for peer in peers:
                await peer.close()


async def test_announced_candidates_carry_the_shared_port() -> None:
    port = free_udp_port()
    async with (
        framewire(ice_udp_port=port, ice_announced_ip="127.0.0.2") as server,
        server.client() as http,
    ):
        opened = await open_session(server, http, connect=False)
        try:
            answer = opened.body["sdp"]["sdp"]
            assert re.search(rf"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.2 {port} typ srflx", answer)
            assert {int(p) for p in HOST_PORT.findall(answer)} == {port}
        finally:
            await opened.close()
