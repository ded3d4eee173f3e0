"""Drive the leg API from tests: offer, trickle both ways, and its error shape."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.peers import ClientPeer

OFFER = "/v1/webrtc/offer"
LEGS = "/v1/legs"


def leg_error(response: httpx.Response, status: int, instance_id: str) -> str:
    """Assert the leg API's error shape, exactly `{error, instance_id}`; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "instance_id"}, body
    assert body["instance_id"] == instance_id
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.text
    return str(body["error"])


async def drain_until_done(
    http: httpx.AsyncClient, leg_id: str, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Poll the server's late candidates until `done`; every reply must be well-formed."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(f"{LEGS}/{leg_id}/ice-candidates")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ok" and body["instance_id"]
        found += body["candidates"]
        if body["done"]:
            return found
        assert time.monotonic() < deadline, "gathering never ended"
        await asyncio.sleep(0.1)


async def send_candidates(
    http: httpx.AsyncClient, leg_id: str, peer: ClientPeer, end: Any = None
) -> None:
    """POST the peer's candidates one by one, then end-of-candidates as `{candidate: end}`."""
    for candidate in peer.local_candidates:
        body = candidate if candidate is not None else {"candidate": end}
        response = await http.post(f"{LEGS}/{leg_id}/ice-candidates", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "added"


async def connect_leg(
    http: httpx.AsyncClient, peer: ClientPeer, end: Any = None, **extra: Any
) -> dict[str, Any]:
    """Open a leg through the leg API alone: trickled offer, answer, candidates both ways."""
    offer = await peer.offer(trickle=True)
    assert "a=candidate:" not in offer
    response = await http.post(OFFER, json={"sdp": offer, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    await peer.accept(body["sdp"])
    await drain_until_done(http, body["leg_id"])
    await send_candidates(http, body["leg_id"], peer, end)
    return body


async def wait_gone(http: httpx.AsyncClient, leg_id: str, timeout: float = 20.0) -> None:
    """Wait until the leg has left `GET /v1/legs` and its GET answers 404."""
    deadline = time.monotonic() + timeout
    while True:
        listed = (await http.get(LEGS)).json()["legs"]
        if all(leg["leg_id"] != leg_id for leg in listed):
            assert (await http.get(f"{LEGS}/{leg_id}")).status_code == 404
            return
        assert time.monotonic() < deadline, f"leg {leg_id} still open: {listed}"
        await asyncio.sleep(0.2)
