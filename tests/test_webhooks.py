"""Usage webhooks: signed per Standard Webhooks (verified with the `standardwebhooks` library),
delivered at least once with the same `webhook-id` on every retry, `session.ended` carrying the
DELETE summary, and never in the way of media or control."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.peers import ClientPeer
from tests.servers import Running, framewire
from tests.sessions import SESSIONS, open_session
from tests.stamped import stamp_of, stamped_peer
from tests.webhook_receiver import receiver


async def test_usage_events_arrive_signed_once_each_even_when_the_first_two_attempts_fail() -> None:
    async with (
        receiver(fail_first=2) as hooks,
        framewire(**hooks.settings()) as server,
        server.client() as http,
    ):
        session = await open_session(server, http, prompt="noir film")
        await session.peer.wait_frames(5)
        summary = (await http.delete(session.url)).json()
        created = await hooks.wait_for("session.created", session.id)
        started = await hooks.wait_for("session.generation_started", session.id)
        ended = await hooks.wait_for("session.ended", session.id)
        await deliveries_counted(http, failed=2, delivered=3)
        await session.close()

        assert hooks.rejected == []  # every attempt verified with the receiver's secret
        assert len(created) == len(started) == len(ended) == 1 and len(hooks.events) == 3
        attempts = Counter(hooks.attempts)
        assert sum(attempts.values()) == 3 + 2  # two refusals, retried
        assert set(attempts) == set(hooks.events)  # each refused id came again and landed
        key_id = created[0]["data"]["key_id"]
        assert key_id.startswith("key_") and key_id == ended[0]["data"]["key_id"]
        assert created[0]["data"]["model"] == "passthrough"
        assert started[0]["data"]["started_at"] == summary["started_at"]
        data = dict(ended[0]["data"])
        del data["key_id"]
        assert data == summary  # exactly what DELETE answered
        assert summary["seconds"] > 0 and summary["reason"] == "disconnect"


async def deliveries_counted(http: httpx.AsyncClient, **expected: int) -> None:
    """Wait until /metrics counts these webhook attempts by outcome (the sender counts an
    attempt when the receiver's answer is in, a moment after the receiver has the event)."""
    deadline = time.monotonic() + 10
    while True:
        counted = {
            s.labels["outcome"]: s.value
            for family in text_string_to_metric_families((await http.get("/metrics")).text)
            for s in family.samples
            if s.name == "framewire_webhook_deliveries_total"
        }
        if counted == expected:
            return
        assert time.monotonic() < deadline, counted
        await asyncio.sleep(0.05)


async def round_trips(peer: ClientPeer, seconds: float) -> list[float]:
    """Round trips (ms) of the stamped frames that come back within `seconds`."""
    found: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = await peer.wait_frames(1)
        number = stamp_of(frame)
        sent = peer.source.sent_at.get(number) if number is not None else None
        if sent is not None:
            found.append((time.monotonic() - sent) * 1000)
    return found


async def open_stamped(server: Running, http: object) -> tuple[ClientPeer, str]:
    peer = stamped_peer()
    offer = await peer.offer()
    created = await http.post(  # type: ignore[attr-defined]
        SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
    )
    assert created.status_code == 201, created.text
    await peer.accept(created.json()["sdp"]["sdp"])
    return peer, f"{SESSIONS}/{created.json()['session_id']}"


async def test_a_hanging_receiver_slows_neither_media_nor_control() -> None:
    async with (
        receiver(hang=10.0) as hooks,
        framewire(**hooks.settings()) as server,
        server.client() as http,
    ):
        peer, url = await open_stamped(server, http)
        await peer.wait_frames(5)
        deadline = time.monotonic() + 10
        while hooks.hanging < 2:  # session.created and generation_started both held
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        during = await round_trips(peer, 4.0)
        assert (await http.get(url)).status_code == 200
        assert hooks.events == {}  # all of that happened while the receiver still hung
        await hooks.wait_for("session.generation_started", timeout=30)
        after = await round_trips(peer, 4.0)
        await http.delete(url)
        await peer.close()

    assert len(during) >= 0.5 * len(after) > 0  # frames kept coming back at the model's rate
    assert statistics.median(during) <= 2 * statistics.median(after) + 50
