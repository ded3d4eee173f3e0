"""Server-side trickle ICE against real STUN servers on loopback: one that never answers must
not delay the answer, one that answers yields a server-reflexive candidate later (through the
leg API's drain, and as an SSE `ice-candidate` event of a session)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import cast

from aioice import stun

from framewire.rtc.gathering import LATE_GATHER_TIMEOUT
from tests.legs import LEGS, OFFER, drain_until_done, send_candidates
from tests.peers import ClientPeer
from tests.servers import framewire
from tests.sessions import open_session

HOST = re.compile(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host")


class StunServer(asyncio.DatagramProtocol):
    """A STUN server on loopback that records Binding requests and, if `replies`, answers each
    with the sender's address in XOR-MAPPED-ADDRESS (RFC 8489), as a real one does."""

    def __init__(self, replies: bool) -> None:
        self.replies = replies
        self.requests: list[tuple[str, int]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = stun.parse_message(data)
        if (request.message_method, request.message_class) != (
            stun.Method.BINDING,
            stun.Class.REQUEST,
        ):
            return
        self.requests.append(addr)
        if self.replies and self.transport is not None:
            response = stun.Message(
                stun.Method.BINDING, stun.Class.RESPONSE, request.transaction_id
            )
            response.attributes["XOR-MAPPED-ADDRESS"] = addr
            self.transport.sendto(bytes(response), addr)


@contextlib.asynccontextmanager
async def stun_server(replies: bool) -> AsyncIterator[tuple[StunServer, str]]:
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: StunServer(replies), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    try:
        yield protocol, f"stun:127.0.0.1:{port}"
    finally:
        transport.close()


async def test_a_silent_stun_server_does_not_delay_the_answer() -> None:
    async with (
        stun_server(replies=False) as (silent, url),
        framewire(ice_servers=[{"urls": url}]) as server,
        server.client() as http,
    ):
        peer = ClientPeer()
        offer = await peer.offer(trickle=True)
        started = time.monotonic()
        created = await http.post(OFFER, json={"sdp": offer})
        answered = time.monotonic() - started
        assert created.status_code == 200, created.text
        # Waiting for the silent server would take aioice's 5 s gathering timeout; the bound
        # leaves a loaded machine room for the answer's own work.
        assert answered < 2.5, f"answer took {answered:.3f} s"
        body = created.json()
        assert HOST.search(body["sdp"]) and "a=end-of-candidates" not in body["sdp"]

        first = (await http.get(f"{LEGS}/{body['leg_id']}/ice-candidates")).json()
        assert first == {
            "candidates": [],
            "done": False,
            "status": "ok",
            "instance_id": server.app.state.instance_id,
        }
        # Gathering goes on: the server did ask the STUN server, from its host candidate's port.
        deadline = time.monotonic() + 2
        while not silent.requests:
            assert time.monotonic() < deadline, "the server never queried the STUN server"
            await asyncio.sleep(0.05)
        host_port = int(HOST.findall(body["sdp"])[0])
        assert silent.requests[0] == ("127.0.0.1", host_port)

        # ...and ends without a candidate once the late-gathering timeout has passed.
        assert await drain_until_done(http, body["leg_id"], timeout=LATE_GATHER_TIMEOUT + 5) == []
        assert time.monotonic() - started >= LATE_GATHER_TIMEOUT - 0.5

        # The connection forms on the host candidates all the same.
        await peer.accept(body["sdp"])
        await send_candidates(http, body["leg_id"], peer)
        await peer.wait_frames(5)
        await peer.close()


async def test_a_replying_stun_server_trickles_a_srflx_candidate_through_the_leg_api() -> None:
    async with (
        stun_server(replies=True) as (stun_replier, url),
        framewire(ice_servers=[{"urls": url}]) as server,
        server.client() as http,
    ):
        peer = ClientPeer()
        created = await http.post(OFFER, json={"sdp": await peer.offer(trickle=True)})
        body = created.json()
        assert "typ srflx" not in body["sdp"] and "a=end-of-candidates" not in body["sdp"]
        host_port = int(HOST.findall(body["sdp"])[0])

        late = await drain_until_done(http, body["leg_id"])
        assert len(late) == 1, late
        srflx = late[0]
        assert srflx["sdpMid"] == "0" and srflx["sdpMLineIndex"] == 0
        assert srflx["candidate"].startswith("candidate:")
        assert (
            f"127.0.0.1 {host_port} typ srflx raddr 127.0.0.1 rport {host_port}"
            in (srflx["candidate"])
        )
        assert stun_replier.requests == [("127.0.0.1", host_port)]
        # Drained means drained: a second call has nothing new, and stays done.
        again = (await http.get(f"{LEGS}/{body['leg_id']}/ice-candidates")).json()
        assert again["candidates"] == [] and again["done"] is True
        await http.delete(f"{LEGS}/{body['leg_id']}")
        await peer.close()


async def test_a_session_sends_the_srflx_candidate_as_an_sse_event_before_the_null() -> None:
    async with (
        stun_server(replies=True) as (_, url),
        framewire(ice_servers=[{"urls": url}]) as server,
        server.client() as http,
    ):
        session = await open_session(server, http, connect=False)
        await session.events.wait_for("ice-candidate", count=2)
        candidates = [e.data for e in session.events.events if e.event == "ice-candidate"]
        assert len(candidates) == 2, candidates
        assert " typ srflx " in candidates[0]["candidate"]
        assert candidates[0]["sdpMid"] == "0"
        assert candidates[1] == {"candidate": None}
        await http.delete(session.url)
        await session.close()


async def test_the_announced_ip_adds_a_srflx_twin_of_each_host_candidate_to_the_answer() -> None:
    async with (
        framewire(ice_announced_ip="203.0.113.7") as server,
        server.client() as http,
    ):
        peer = ClientPeer()
        created = await http.post(OFFER, json={"sdp": await peer.offer()})
        assert created.status_code == 200, created.text
        sdp = created.json()["sdp"]
        ports = HOST.findall(sdp)
        assert ports
        for port in ports:
            assert f"203.0.113.7 {port} typ srflx raddr 127.0.0.1 rport {port}" in sdp
        # The client is never given the answer: it must not send to a non-loopback address.
        await http.delete(f"{LEGS}/{created.json()['leg_id']}")
        await peer.close()
