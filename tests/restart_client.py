"""The reference browser client, in aiortc, for ICE-restart tests: it trickles its candidates over
PATCH (one at a time, with the ETag), forwards the server's `ice-candidate` events, answers
`ice-restart` by re-offering with the event's ICE servers and `If-Match: "*"` (aiortc can't
restart ICE: framewire.rtc.restart does it in place, here in the offerer role), and can lose
its network path on demand."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import cv2
import httpx
import numpy as np
from aioice import Connection, TransportPolicy
from aioice.ice import CandidatePair
from aiortc import RTCConfiguration, RTCDtlsTransport, RTCPeerConnection

from framewire.rtc.restart import IceRestarter
from tests.peers import ClientPeer, test_pattern
from tests.servers import Running
from tests.sessions import SESSIONS
from tests.sse import EventReader

EVENT_POLL = 0.05


def looks_like_pattern(frame: np.ndarray) -> bool:
    """Whether a received frame shows the camera's colour bars (the passthrough model's
    output): the rows above the moving square, compared at the camera's size."""
    source = test_pattern()
    height, width = source.shape[:2]
    scaled = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    top = slice(0, height // 3)
    diff = np.abs(scaled[top].astype(np.int16) - source[top].astype(np.int16))
    return float(diff.mean()) < 25.0


class RestartClient:
    """One session seen from its client. Open with `await RestartClient.open(...)`."""

    def __init__(
        self,
        server: Running,
        http: httpx.AsyncClient,
        configuration: RTCConfiguration | None,
        answer_restarts: bool,
        restart_policy: TransportPolicy | None,
    ) -> None:
        self.server = server
        self.http = http
        self.peer = ClientPeer(
            configuration=configuration,
            on_candidate=self._on_local_candidate,
            on_restart_failed=self._on_restart_failed,
        )
        self.answer_restarts = answer_restarts
        self.restart_policy = restart_policy
        self.body: dict[str, Any] = {}
        self.etag = ""
        self.patches: list[int] = []
        """Status of every trickle PATCH sent."""
        self.restart_answers: list[str] = []
        self._outgoing: list[dict[str, Any] | None] = []
        self._signal = asyncio.Lock()
        self._flushes: set[asyncio.Task[None]] = set()
        self._pump: asyncio.Task[None] | None = None
        self.events: EventReader | None = None
        self.restart_failed = False

    @classmethod
    async def open(
        cls,
        server: Running,
        http: httpx.AsyncClient,
        model: str = "passthrough",
        configuration: RTCConfiguration | None = None,
        answer_restarts: bool = True,
        restart_policy: TransportPolicy | None = None,
    ) -> RestartClient:
        """Create a session from a fresh peer and connect it."""
        client = cls(server, http, configuration, answer_restarts, restart_policy)
        response = await http.post(
            SESSIONS,
            json={"model": model, "sdp": {"type": "offer", "sdp": await client.peer.offer()}},
        )
        assert response.status_code == 201, response.text
        client.body, client.etag = response.json(), response.headers["etag"]
        await client.peer.gathered_one()
        await client.peer.accept(client.body["sdp"]["sdp"])
        events = client.body["events"]
        client.events = EventReader(
            server.client(None), f"{events['url']}?event_token={events['event_token']}"
        ).start()
        client._pump = asyncio.get_running_loop().create_task(client._follow_events())
        client._kick()
        return client

    @property
    def restarter(self) -> IceRestarter | None:
        return self.peer.restarter

    @property
    def id(self) -> str:
        return str(self.body["session_id"])

    @property
    def url(self) -> str:
        return f"{SESSIONS}/{self.id}"

    # signalling ------------------------------------------------------------------------

    def _on_local_candidate(self, candidate: dict[str, Any] | None) -> None:
        self._outgoing.append(candidate)
        self._kick()

    def _kick(self) -> None:
        if self.body and self._outgoing:
            task = asyncio.get_running_loop().create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        """PATCH queued candidates with the ETag, one request at a time (as the reference client
        queues them)."""
        async with self._signal:
            while self._outgoing:
                batch, self._outgoing = self._outgoing, []
                response = await self.http.patch(
                    self.url, json={"candidates": batch}, headers={"If-Match": self.etag}
                )
                self.patches.append(response.status_code)

    async def restart(
        self, ice_servers: list[dict[str, Any]], policy: TransportPolicy | None = None
    ) -> httpx.Response:
        """Re-offer with new ICE credentials, as the reference client's `ice-restart` handler
        does."""
        async with self._signal:
            self._outgoing.clear()
            offer = await self.peer.restart_offer(ice_servers, policy)
            response = await self.http.patch(
                self.url,
                json={"sdp": {"type": "offer", "sdp": offer}},
                headers={"If-Match": '"*"'},
            )
            assert response.status_code == 200, response.text
            self.etag = response.headers["etag"]
            await self.accept_restart(response.json()["sdp"]["sdp"])
        self._kick()
        return response

    async def accept_restart(self, answer: str) -> None:
        """Apply the server's answer to a restart offer (`restarter.offer`)."""
        self.restart_answers.append(answer)
        await self.peer.accept_restart(answer)

    async def _follow_events(self) -> None:
        assert self.events is not None
        seen = 0
        while True:
            while seen < len(self.events.events):
                event = self.events.events[seen]
                seen += 1
                if event.event == "ice-candidate" and event.data["candidate"] is not None:
                    await self.peer.add_candidate(event.data)
                elif event.event == "ice-restart" and self.answer_restarts:
                    await self.restart(event.data["ice_servers"], self.restart_policy)
            await asyncio.sleep(EVENT_POLL)

    def _on_restart_failed(self) -> None:
        self.restart_failed = True

    # the network -----------------------------------------------------------------------

    def connection(self) -> Connection:
        """The aioice connection ICE currently signals on (the newest generation)."""
        transport = self.peer.pc.getTransceivers()[0].receiver.transport.transport
        connection: Connection = transport._connection
        return connection

    def selected_pair(self) -> CandidatePair:
        return self.connection()._nominated[1]

    def dtls(self) -> RTCDtlsTransport:
        dtls: RTCDtlsTransport = self.peer.pc.getTransceivers()[0].sender.transport
        return dtls

    def drop_path(self) -> None:
        drop_path(self.peer.pc)

    async def wait_restarted(self, timeout: float = 20.0) -> None:
        """Until the newest generation carries the media (its checks succeeded)."""
        deadline = time.monotonic() + timeout
        while self.peer.restarting or not self.restart_answers:
            assert time.monotonic() < deadline, "the restart did not connect"
            assert not self.restart_failed, "the restart failed"
            await asyncio.sleep(EVENT_POLL)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            if self._pump.done() and not self._pump.cancelled():
                self._pump.result()
        if self.events is not None:
            await self.events.stop()
        await self.peer.close()


@contextlib.asynccontextmanager
async def restart_client(
    server: Running, http: httpx.AsyncClient, **options: Any
) -> AsyncIterator[RestartClient]:
    """`RestartClient.open(server, http, **options)`, closed when the block ends."""
    client = await RestartClient.open(server, http, **options)
    try:
        yield client
    finally:
        await client.close()


def drop_path(pc: RTCPeerConnection) -> None:
    """Lose `pc`'s current network path both ways, as when a network goes away: sockets stay
    open (nothing reaches aiortc as an error), packets just stop."""
    transport = pc.getTransceivers()[0].receiver.transport.transport
    for protocol in transport._connection._protocols:
        protocol.datagram_received = lambda data, addr: None
        protocol.transport.sendto = lambda data, addr=None: None
