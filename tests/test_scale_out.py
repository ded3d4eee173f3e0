"""Scale-out: framewire instances sharing one real Redis act as one service. Any
instance answers any control request for a session another one holds, carries its events, and
settles it when its owner dies."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from framewire.api.app import HEARTBEAT_TTL, SWEEP_EVERY
from framewire.api.auth import key_digest, key_id
from framewire.state.redis import RedisState
from tests.peers import ClientPeer
from tests.redis_server import free_port, redis_server, redis_url
from tests.servers import Running, framewire
from tests.sessions import SESSIONS, open_session
from tests.sse import EventReader
from tests.test_session_flow import saturation

__all__ = ["redis_server", "redis_url"]

CREDIT = 100.0
OWNER_DEATH_NOTICED = HEARTBEAT_TTL + SWEEP_EVERY + 20.0
"""Bound on how long survivors take to end a dead owner's session (plus slack for a busy CPU)."""
PROCESS_START = 60.0
TICK = 6
UNCHARGED = 4.0
"""Seconds A generates after its last charge before it is killed: it beats (every 2 s) in
that time, so the survivor has generation to bill that A never charged."""


def instance(
    url: str, instance_id: str, **overrides: Any
) -> contextlib.AbstractAsyncContextManager[Running]:
    """An in-process instance on the shared Redis (same secret as every other one)."""
    return framewire(redis_url=url, instance_id=instance_id, **overrides)


@contextlib.asynccontextmanager
async def pair(
    url: str,
) -> AsyncIterator[tuple[Running, Running, httpx.AsyncClient, httpx.AsyncClient]]:
    """Instances fw-a and fw-b on the shared Redis, each with a client."""
    async with (
        instance(url, "fw-a") as a,
        instance(url, "fw-b") as b,
        a.client() as http_a,
        b.client() as http_b,
    ):
        yield a, b, http_a, http_b


async def test_two_instances_act_as_one_service(redis_url: str) -> None:
    async with pair(redis_url) as (a, b, http_a, http_b):
        peer = ClientPeer()
        offer = await peer.offer(trickle=True)
        created = await http_a.post(
            SESSIONS,
            json={
                "model": "lucy_2_rt",
                "sdp": {"type": "offer", "sdp": offer},
                "prompt": "black and white noir film",
            },
        )
        assert created.status_code == 201, created.text
        body, etag = created.json(), created.headers["etag"]
        url = f"{SESSIONS}/{body['session_id']}"
        await peer.accept(body["sdp"]["sdp"])

        # B reads the session A holds, and A's leg API confirms the leg.
        state = await http_b.get(url)
        assert state.status_code == 200, state.text
        assert state.json()["instance_id"] == "fw-a" and state.json()["status"] == "active"
        assert state.headers["etag"] == etag
        leg = await http_a.get(f"/v1/legs/{state.json()['leg_id']}")
        assert leg.status_code == 200 and leg.json()["session_id"] == body["session_id"]
        assert leg.json()["instance_id"] == "fw-a"

        # A's event token opens the stream on B.
        stream_url = f"{body['events']['url']}?event_token={body['events']['event_token']}"
        events = EventReader(b.client(None), stream_url).start()

        # Trickle through B with the ETag; a stale one is refused there too.
        stale = await http_b.patch(
            url, json={"candidates": [None]}, headers={"If-Match": '"ice-0000"'}
        )
        assert stale.status_code == 412
        for candidate in peer.local_candidates:
            patched = await http_b.patch(
                url, json={"candidates": [candidate]}, headers={"If-Match": etag}
            )
            assert patched.status_code == 204, patched.text
            assert patched.headers["etag"] == etag

        assert saturation(await peer.wait_frames(10)) < 15
        started = await events.wait_for("generation_started")

        # A prompt sent to B changes the pixels A sends.
        changed = await http_b.post(
            f"{url}/prompt", json={"prompt": "vivid neon cyberpunk", "enhance_prompt": False}
        )
        assert changed.status_code == 200, changed.text
        await peer.wait_frames(10)
        assert saturation(peer.frames[-1]) > 60
        assert (await http_a.get(url)).json()["prompt"] == "vivid neon cyberpunk"

        await events.wait_for("generation_tick", count=2)
        assert started.id is not None
        replay = EventReader(b.client(None), stream_url, last_event_id=started.id).start()
        await replay.wait_for("generation_tick", count=2)

        # DELETE on B ends the session on A: summary, leg closed, streams closed.
        ended = await http_b.delete(url)
        assert ended.status_code == 200, ended.text
        summary = ended.json()
        assert summary["reason"] == "disconnect" and summary["status"] == "ended"
        assert not a.app.state.legs.all()
        assert body["session_id"] not in a.app.state.sessions.live
        await events.wait_closed()
        await replay.wait_closed()
        assert events.closed_by_server and replay.closed_by_server

        names = events.names()
        assert names.index("generation_started") < names.index("generation_tick")
        assert names[-1] == "generation_ended" and "ice-candidate" in names
        assert events.events[-1].data == {"seconds": summary["seconds"], "reason": "disconnect"}
        assert [e.id for e in events.events] == list(range(1, len(events.events) + 1))
        assert replay.events == [e for e in events.events if e.id is not None and e.id > started.id]
        ticks = [e.data["seconds"] for e in events.events if e.event == "generation_tick"]
        assert ticks == sorted(ticks) and ticks[-1] <= summary["seconds"] < ticks[-1] + 1.0 + 1e-6
        assert summary["credits_charged"] == summary["seconds"]
        assert (await http_a.get(url)).json()["summary"] == summary
        assert (await http_a.delete(url)).json() == summary
        await peer.close()


def redness(frame: Any) -> float:
    """How much redder than blue a BGR frame is, on average."""
    return float(frame[..., 2].astype(float).mean() - frame[..., 0].astype(float).mean())


def red_png(size: int = 256) -> str:
    image = np.zeros((size, size, 3), np.uint8)
    image[..., 2] = 230
    image[::8, :, 1] = 60  # some texture: a palette needs a spread
    ok, data = cv2.imencode(".png", image)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


async def test_a_reference_image_sent_to_another_instance_reaches_the_owner_as_bytes(
    redis_url: str,
) -> None:
    """The image crosses the command bus as its bytes: posted to B, A's model recolours the
    frames toward it; a bad image is refused by B before it travels."""
    async with pair(redis_url) as (_, _, http_a, http_b):
        peer = ClientPeer()
        offer = await peer.offer()
        created = await http_a.post(
            SESSIONS, json={"model": "lucy_2_rt", "sdp": {"type": "offer", "sdp": offer}}
        )
        assert created.status_code == 201, created.text
        body = created.json()
        url = f"{SESSIONS}/{body['session_id']}"
        await peer.accept(body["sdp"]["sdp"])
        before = redness(await peer.wait_frames(10))

        bad = await http_b.post(f"{url}/image", json={"image_data": "R0lGODlhAQABAAAAACw="})
        assert bad.status_code == 422 and bad.json()["type"].endswith("/invalid-image")
        posted = await http_b.post(f"{url}/image", json={"image_data": red_png()})
        assert posted.status_code == 200, posted.text
        assert (await http_a.get(url)).json()["has_image"] is True
        deadline = time.monotonic() + 20
        while redness(await peer.wait_frames(1)) < before + 40:
            assert time.monotonic() < deadline, "A's frames never took the image's palette"
        assert (await http_b.delete(url)).status_code == 200
        await peer.close()


async def test_per_key_concurrency_is_shared_across_instances(redis_url: str) -> None:
    async with (
        instance(redis_url, "fw-a", key_concurrency=1) as a,
        instance(redis_url, "fw-b", key_concurrency=1) as b,
        a.client() as http_a,
        b.client() as http_b,
    ):
        first = await open_session(a, http_a, connect=False)
        peer = ClientPeer()
        refused = await post_session(http_b, peer)
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"]
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (await http_b.delete(first.url)).status_code == 200  # B ends A's: slot freed
        second = await open_session(b, http_b, connect=False)
        assert (await http_a.delete(second.url)).status_code == 200
        for opened in (first, second):
            await opened.close()
        await peer.close()


async def test_credits_spent_on_one_instance_are_gone_on_the_other(redis_url: str) -> None:
    keys = {"payer": 2.0}
    async with (
        instance(redis_url, "fw-a", api_keys=keys) as a,
        instance(redis_url, "fw-b", api_keys=keys) as b,
        a.client("payer") as http_a,
        b.client("payer") as http_b,
    ):
        session = await open_session(a, http_a)
        end = await session.events.wait_for("generation_ended", timeout=30)
        assert end.data["reason"] == "insufficient_credits"
        peer = ClientPeer()
        refused = await post_session(http_b, peer)
        assert refused.status_code == 402, refused.text
        summary = (await http_b.delete(session.url)).json()
        assert summary["reason"] == "insufficient_credits"
        assert summary["credits_remaining"] == 0
        await session.close()
        await peer.close()


# Real `framewire serve` processes ----------------------------------------------------------


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def serve(redis: str, instance_id: str, **env: str) -> Iterator[Served]:
    """`framewire serve` in a process of its own on a free loopback port, killed at the end if
    the test has not ended it."""
    port = free_port()
    environment = {
        **os.environ,
        "FRAMEWIRE_REDIS_URL": redis,
        "FRAMEWIRE_SECRET": "scale-out-secret",
        "FRAMEWIRE_INSTANCE_ID": instance_id,
        "FRAMEWIRE_API_KEYS": f"payer={CREDIT}",
        "FRAMEWIRE_ICE_INTERFACES": "127.0.0.1",
        "FRAMEWIRE_TICK_INTERVAL": str(TICK),
        **env,
    }
    command = Path(sys.executable).with_name("framewire")
    process = subprocess.Popen(
        [str(command), "serve", "--port", str(port), "--log-level", "warning"],
        env=environment,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield Served(f"http://127.0.0.1:{port}", process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def ready(base: str) -> None:
    deadline = time.monotonic() + PROCESS_START
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"{base} did not start"
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def client(base: str, key: str | None = "payer") -> AsyncIterator[httpx.AsyncClient]:
    headers = {"x-api-key": key} if key else {}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as http:
        yield http


async def ledger_balance(redis: str) -> float | None:
    """The payer's balance, read straight from Redis."""
    ledger = RedisState(redis)
    try:
        return await ledger.accounts.balance(key_id(key_digest("payer")))
    finally:
        await ledger.close()


async def charged(redis: str, seconds: float) -> None:
    """Wait until the ledger shows `seconds` charged: the owner has booked its last tick."""
    deadline = time.monotonic() + 20
    while (await ledger_balance(redis) or 0.0) > CREDIT - seconds:
        assert time.monotonic() < deadline, f"{seconds} s never charged"
        await asyncio.sleep(0.02)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def post_session(http: httpx.AsyncClient, peer: ClientPeer) -> httpx.Response:
    offer = await peer.offer()
    return await http.post(
        SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
    )


async def assert_billed_once(redis: str, summary: dict[str, Any], shown: float) -> None:
    """An orphan's bill: at least the last tick shown, and the ledger holds exactly it."""
    assert summary["reason"] == "error" and summary["status"] == "ended"
    assert summary["seconds"] == summary["credits_charged"] >= shown
    assert summary["credits_remaining"] == round(CREDIT - summary["seconds"], 3)
    balance = await ledger_balance(redis)
    assert balance is not None and abs(balance - (CREDIT - summary["seconds"])) < 1e-6


async def test_serve_processes_share_redis_and_survive_an_owner_death(redis_url: str) -> None:
    """Two `framewire serve` processes: create on A, read and stream on B; SIGKILL A; B ends
    the session with `error`, bills it once up to A's death, and frees the key's slot."""
    env = {"FRAMEWIRE_KEY_CONCURRENCY": "1"}
    with serve(redis_url, "fw-a", **env) as a, serve(redis_url, "fw-b", **env) as b:
        await asyncio.gather(ready(a.url), ready(b.url))
        async with client(a.url) as http_a, client(b.url) as http_b:
            peer = ClientPeer()
            created = await post_session(http_a, peer)
            assert created.status_code == 201, created.text
            body = created.json()
            url = f"{SESSIONS}/{body['session_id']}"
            await peer.accept(body["sdp"]["sdp"])
            state = (await http_b.get(url)).json()
            assert state["instance_id"] == "fw-a" and state["status"] == "active"

            async with client(b.url, None) as sse_http:
                events = EventReader(
                    sse_http,
                    f"{body['events']['url']}?event_token={body['events']['event_token']}",
                ).start()
                await peer.wait_frames(5)
                tick = await events.wait_for("generation_tick")
                await charged(redis_url, tick.data["seconds"])
                await asyncio.sleep(UNCHARGED)
                killed_at = time.time()
                a.process.send_signal(signal.SIGKILL)
                end = await events.wait_for("generation_ended", timeout=OWNER_DEATH_NOTICED)
                await events.wait_closed()

            assert end.data["reason"] == "error"
            assert events.names()[-2:] == ["error", "generation_ended"]
            summary = (await http_b.delete(url)).json()
            assert summary["seconds"] == end.data["seconds"]
            shown = [e.data["seconds"] for e in events.events if e.event == "generation_tick"]
            await assert_billed_once(redis_url, summary, shown[-1])
            # Billed generation A had not charged, up to its death, not the time to notice it.
            assert summary["seconds"] > tick.data["seconds"]
            assert epoch(summary["ended_at"]) <= killed_at + 1e-3

            # The dead owner's slot is free again: the key (limit 1) can create on B.
            fresh = ClientPeer()
            again = await post_session(http_b, fresh)
            assert again.status_code == 201, again.text
            assert (await http_b.delete(f"{SESSIONS}/{again.json()['session_id']}")).is_success
            await fresh.close()
            await peer.close()


async def test_a_restart_under_the_same_instance_id_settles_the_last_runs_sessions(
    redis_url: str,
) -> None:
    """A comes back (same FRAMEWIRE_INSTANCE_ID) before its old heartbeat expired, so nobody
    saw it die: it ends what its last run left, billed up to the last proof of generation."""
    env = {"FRAMEWIRE_KEY_CONCURRENCY": "1"}
    with serve(redis_url, "fw-a", **env) as a:
        await ready(a.url)
        async with client(a.url) as http, client(a.url, None) as sse_http:
            peer = ClientPeer()
            created = await post_session(http, peer)
            assert created.status_code == 201, created.text
            body = created.json()
            await peer.accept(body["sdp"]["sdp"])
            events = EventReader(
                sse_http, f"{body['events']['url']}?event_token={body['events']['event_token']}"
            ).start()
            tick = await events.wait_for("generation_tick")
            await charged(redis_url, tick.data["seconds"])
            a.process.send_signal(signal.SIGKILL)
            await events.stop()
            await peer.close()
    with serve(redis_url, "fw-a", **env) as restarted:
        await ready(restarted.url)
        async with client(restarted.url) as http:
            state = (await http.get(f"{SESSIONS}/{body['session_id']}")).json()
            assert state["status"] == "ended"
            await assert_billed_once(redis_url, state["summary"], tick.data["seconds"])
            fresh = ClientPeer()
            again = await post_session(http, fresh)
            assert again.status_code == 201, again.text
            assert (await http.delete(f"{SESSIONS}/{again.json()['session_id']}")).is_success
            await fresh.close()


async def events_in_redis(redis: str, session_id: str) -> list[str]:
    """The names of every event the session's log holds, read straight from Redis."""
    store = RedisState(redis)
    try:
        return [e.event for e in await store.events.read(session_id, 0, wait=0)]
    finally:
        await store.close()


async def legs_of_payer(http: httpx.AsyncClient) -> list[Any]:
    legs: list[Any] = (await http.get("/v1/legs")).json()["legs"]
    return legs


async def test_a_stalled_owner_waking_after_a_survivor_settled_only_stops_its_media(
    redis_url: str,
) -> None:
    """SIGSTOP the owner A past its heartbeat TTL: B settles the session. SIGCONT A: its
    charges and writes are fenced by the session's epoch, so it only closes its leg. One
    charge, one `generation_ended`, and B's summary stands."""
    env = {"FRAMEWIRE_TICK_INTERVAL": "1"}  # A has a tick to charge the moment it wakes
    with serve(redis_url, "fw-a", **env) as a, serve(redis_url, "fw-b", **env) as b:
        await asyncio.gather(ready(a.url), ready(b.url))
        async with client(a.url) as http_a, client(b.url) as http_b:
            peer = ClientPeer()
            created = await post_session(http_a, peer)
            assert created.status_code == 201, created.text
            body = created.json()
            session_id, url = body["session_id"], f"{SESSIONS}/{body['session_id']}"
            await peer.accept(body["sdp"]["sdp"])
            async with client(b.url, None) as sse_http:
                events = EventReader(
                    sse_http,
                    f"{body['events']['url']}?event_token={body['events']['event_token']}",
                ).start()
                await peer.wait_frames(5)
                tick = await events.wait_for("generation_tick", count=2)
                await charged(redis_url, tick.data["seconds"])
                assert len(await legs_of_payer(http_a)) == 1

                a.process.send_signal(signal.SIGSTOP)
                try:
                    end = await events.wait_for("generation_ended", timeout=OWNER_DEATH_NOTICED)
                    await events.wait_closed()
                    survivor = (await http_b.get(url)).json()["summary"]
                    settled_balance = await ledger_balance(redis_url)
                finally:
                    a.process.send_signal(signal.SIGCONT)

            # A wakes: its next tick's charge and its writes are refused; its leg closes.
            deadline = time.monotonic() + 30
            while await legs_of_payer(http_a):
                assert time.monotonic() < deadline, "the woken owner kept its leg"
                await asyncio.sleep(0.2)

            assert end.data == {"seconds": survivor["seconds"], "reason": "error"}
            await assert_billed_once(redis_url, survivor, tick.data["seconds"])
            assert await ledger_balance(redis_url) == settled_balance
            assert (await http_a.get(url)).json()["summary"] == survivor
            assert (await http_b.delete(url)).json() == survivor
            names = await events_in_redis(redis_url, session_id)
            assert names.count("generation_ended") == 1 and names[-1] == "generation_ended"
            assert names[-2:] == ["error", "generation_ended"]
            await peer.close()
