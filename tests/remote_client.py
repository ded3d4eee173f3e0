"""A streaming client in a process of its own, so that a test can make it vanish (SIGKILL: no
DELETE, no DTLS close, no RTCP BYE, its packets just stop). `python -m tests.remote_client URL`
opens a passthrough session, waits for frames back, prints the create response's body as one
JSON line, then streams until killed."""

from __future__ import annotations

import asyncio
import json
import sys

import httpx

from tests.peers import ClientPeer
from tests.servers import API_KEY
from tests.sessions import SESSIONS


async def stream(base_url: str) -> None:
    peer = ClientPeer()
    async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": API_KEY}) as http:
        offer = await peer.offer()
        response = await http.post(
            SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
        )
        assert response.status_code == 201, response.text
        await peer.accept(response.json()["sdp"]["sdp"])
        await peer.wait_frames(10)
        print(json.dumps(response.json()), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(stream(sys.argv[1]))
