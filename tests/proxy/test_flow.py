"""A whole realtime session driven through `framewire proxy` by a real aiortc client, with a
real framewire instance upstream: the client only ever talks to the proxy."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.peers import ClientPeer
from tests.proxy.support import SESSIONS, access_lines, assert_logs_clean, assert_not_leaked
from tests.proxy.support import proxy_for as proxy
from tests.servers import API_KEY, framewire
from tests.sse import EventReader
from tests.test_errors import assert_problem
from tests.test_session_flow import saturation

PROMPT_DELAY = 0.25
"""Seconds an event may take longer through the proxy than directly: an event held back until
more data (or the end) came would be late by a keep-alive interval (1 s here) at least."""


async def test_session_flow_through_the_proxy(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    seen: list[httpx.Response] = []
    async with (
        framewire() as upstream,
        proxy(upstream.url) as front,
        front.client(None) as http,
        upstream.client() as direct,
    ):
        peer = ClientPeer()
        offer = await peer.offer(trickle=True)
        created = await http.post(
            SESSIONS,
            json={
                "model": "lucy_2_rt",
                "sdp": {"type": "offer", "sdp": offer},
                "prompt": "black and white noir film",
            },
        )
        seen.append(created)
        assert created.status_code == 201, created.text
        body = created.json()
        session = f"{SESSIONS}/{body['session_id']}"
        etag = created.headers["etag"]
        assert etag.startswith('"ice-')
        # Location is in the proxy's URL space: following it reaches the session via the proxy.
        location = httpx.URL(front.url).join(created.headers["location"])
        assert str(location) == front.url + session
        await peer.accept(body["sdp"]["sdp"])

        events_url = f"{body['events']['url']}?event_token={body['events']['event_token']}"
        proxied = EventReader(front.client(None), events_url).start()
        reference = EventReader(upstream.client(None), events_url).start()

        # Precondition problems pass through byte for byte.
        one = {"candidates": [peer.local_candidates[0]]}
        for headers, status in (({}, 428), ({"If-Match": '"ice-stale"'}, 412)):
            through = await http.patch(session, json=one, headers=headers)
            straight = await direct.patch(session, json=one, headers=headers)
            seen.append(through)
            assert_problem(through, status)
            assert through.content == straight.content
            assert through.headers["content-type"] == straight.headers["content-type"]

        for candidate in peer.local_candidates:
            patched = await http.patch(
                session, json={"candidates": [candidate]}, headers={"If-Match": etag}
            )
            seen.append(patched)
            assert patched.status_code == 204, patched.text
            assert patched.headers["etag"] == etag and patched.content == b""

        frame = await peer.wait_frames(10)
        assert frame.shape == (720, 1280, 3)
        assert saturation(frame) < 15

        started = await proxied.wait_for("generation_started")
        assert (await proxied.wait_for("ice-candidate")).data == {"candidate": None}

        changed = await http.post(
            f"{session}/prompt", json={"prompt": "vivid neon cyberpunk", "enhance_prompt": False}
        )
        seen.append(changed)
        assert changed.status_code == 200 and changed.json()["prompt"] == "vivid neon cyberpunk"
        await peer.wait_frames(10)
        assert saturation(peer.frames[-1]) > 60

        await proxied.wait_for("generation_tick", count=2)
        await reference.wait_for("generation_tick", count=2)
        live = await http.get(session)
        seen.append(live)
        assert live.json()["status"] == "active" and live.headers["etag"] == etag

        # Every event reached the proxy's client while the session was live, as promptly as it
        # reached a direct client.
        direct_at = {e.id: e.at for e in reference.events}
        for event in proxied.events[:4]:
            assert event.at - direct_at[event.id] < PROMPT_DELAY, event

        # Reconnect with Last-Event-ID through the proxy: the rest, nothing lost, nothing twice.
        mark = started.id
        assert mark is not None
        replay = EventReader(front.client(None), events_url, last_event_id=mark).start()
        await replay.wait_for("generation_tick", count=2)
        assert replay.events[:3] == [e for e in proxied.events if (e.id or 0) > mark][:3]

        ended = await http.delete(session)
        seen.append(ended)
        assert ended.status_code == 200
        summary = ended.json()
        assert summary["reason"] == "disconnect" and summary["session_id"] == body["session_id"]
        await proxied.wait_closed()
        await replay.wait_closed()
        assert proxied.closed_by_server and replay.closed_by_server
        assert proxied.names()[-1] == "generation_ended"
        assert proxied.events[-1].data == {"seconds": summary["seconds"], "reason": "disconnect"}
        assert proxied.raw.rstrip("\n").endswith("data:")
        assert replay.events == [e for e in proxied.events if (e.id or 0) > mark]
        ids = [e.id for e in proxied.events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)

        gone = EventReader(front.client(None), events_url).start()
        await gone.wait_closed()
        assert gone.status == 410 and '"status":410' in gone.raw.replace(" ", "")

        await reference.stop()
        await peer.close()

    assert_not_leaked(seen, API_KEY)
    assert_logs_clean(caplog, API_KEY, body["events"]["event_token"])
    logged = access_lines(caplog)
    assert f"POST {SESSIONS} 201" in "\n".join(logged)
    sse = [line for line in logged if line.startswith(f"GET {session}/events?")]
    assert sse and all("event_token=[redacted]" in line for line in sse)
