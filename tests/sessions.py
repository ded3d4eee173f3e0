"""A connected realtime session for tests: aiortc peer + create + SSE reader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.peers import ClientPeer
from tests.servers import Running
from tests.sse import EventReader

SESSIONS = "/v1/realtime/sessions"


@dataclass
class Open:
    peer: ClientPeer
    body: dict[str, Any]
    etag: str
    events: EventReader

    @property
    def id(self) -> str:
        return str(self.body["session_id"])

    @property
    def url(self) -> str:
        return f"{SESSIONS}/{self.id}"

    async def close(self) -> None:
        await self.events.stop()
        await self.peer.close()


async def open_session(
    server: Running,
    http: httpx.AsyncClient,
    model: str = "passthrough",
    connect: bool = True,
    **extra: Any,
) -> Open:
    """Create a session from a fresh peer; with `connect`, apply the answer so media flows."""
    peer = ClientPeer()
    offer = await peer.offer()
    response = await http.post(
        SESSIONS, json={"model": model, "sdp": {"type": "offer", "sdp": offer}, **extra}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    if connect:
        await peer.accept(body["sdp"]["sdp"])
    events = EventReader(
        server.client(None),
        f"{body['events']['url']}?event_token={body['events']['event_token']}",
    ).start()
    return Open(peer, body, response.headers["etag"], events)
