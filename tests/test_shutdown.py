"""Graceful shutdown of a real `framewire serve` process: SIGTERM stops admission at once, lets
running sessions go on for FRAMEWIRE_DRAIN_TIMEOUT, then ends the rest with reason `shutdown`
(after a problem `error` event), settles every ledger, flushes webhooks and exits 0; a second
signal cuts the drain short, still settling."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from typing import Any

import httpx
from redis.asyncio import Redis

from framewire.api.auth import key_digest, key_id
from framewire.sessions.settle import END_PROBLEMS
from tests.processes import framewire_process, ready
from tests.redis_server import redis_server, redis_url
from tests.servers import Running
from tests.sessions import SESSIONS, Open, open_session
from tests.webhook_receiver import receiver

__all__ = ["redis_server", "redis_url"]

CREDIT = 100.0
DRAIN = 6.0


def environment(redis: str, **extra: str) -> dict[str, str]:
    return {
        "FRAMEWIRE_REDIS_URL": redis,
        "FRAMEWIRE_API_KEYS": f"payer={CREDIT}",
        "FRAMEWIRE_SECRET": "shutdown-secret",
        "FRAMEWIRE_TICK_INTERVAL": "1",
        "FRAMEWIRE_DRAIN_TIMEOUT": str(DRAIN),
        **extra,
    }


async def exited(process: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, "the server did not exit"
        await asyncio.sleep(0.1)
    return process.returncode


async def stored(redis: str, session_id: str) -> dict[str, Any]:
    async with Redis.from_url(redis) as client:
        return dict(json.loads(await client.get(f"framewire:session:{session_id}")))


async def balance(redis: str) -> float:
    async with Redis.from_url(redis) as client:
        value = await client.hget("framewire:credit", key_id(key_digest("payer")))
    return float(value)


async def open_three(base: str, http: httpx.AsyncClient) -> list[Open]:
    server = Running(None, base)  # type: ignore[arg-type]  # a process: only its URL is used
    sessions = [await open_session(server, http) for _ in range(3)]
    for session in sessions:
        await session.peer.wait_frames(3)
    return sessions


async def test_sigterm_drains_then_ends_the_rest_settled_and_exits_0(redis_url: str) -> None:
    async with receiver() as hooks:
        env = environment(
            redis_url,
            FRAMEWIRE_WEBHOOK_URL=hooks.url,
            FRAMEWIRE_WEBHOOK_SECRET=hooks.secret,
        )
        with framewire_process(env, "--log-format", "json") as served:
            await ready(served.url)
            headers = {"x-api-key": "payer"}
            async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=20) as http:
                sessions = await open_three(served.url, http)
                served.process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                deadline = signalled + 5
                while (ready_now := await http.get("/readyz")).json()["status"] != "draining":
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                assert ready_now.status_code == 503 and ready_now.json()["status"] == "draining"
                refused = await http.post(
                    SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": "v=0"}}
                )
                assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
                assert refused.headers["content-type"].startswith("application/problem+json")
                leg = await http.post("/v1/webrtc/offer", json={"type": "offer", "sdp": "v=0"})
                assert leg.status_code == 503 and int(leg.headers["retry-after"]) > 0
                assert "shutting down" in leg.json()["error"]  # the leg API's error shape
                await sessions[1].peer.wait_frames(10)  # running sessions go on while draining
                left = (await http.delete(sessions[0].url)).json()  # one ends on its own
                assert left["reason"] == "disconnect"
                for session in sessions[1:]:
                    end = await session.events.wait_for("generation_ended", timeout=DRAIN + 20)
                    assert time.monotonic() - signalled >= DRAIN - 0.5  # not before the drain
                    assert end.data["reason"] == "shutdown"
                    await session.events.wait_closed()
                    assert session.events.closed_by_server
                    error = session.events.events[-2]
                    assert error.event == "error" and error.data == END_PROBLEMS["shutdown"]
            assert await exited(served.process, 30) == 0

        charged = 0.0
        for session in sessions:
            record = await stored(redis_url, session.id)
            assert record["status"] == "ended"
            assert record["credits_charged"] == record["seconds"] > 0
            charged += record["seconds"]
            [ended] = hooks.of("session.ended", session.id)  # flushed before the exit
            assert ended["data"]["reason"] == record["reason"]
        assert abs(await balance(redis_url) - (CREDIT - charged)) < 1e-6
        for session in sessions:
            await session.close()


async def test_a_second_signal_ends_the_drain_at_once_still_settling(redis_url: str) -> None:
    env = environment(redis_url, FRAMEWIRE_DRAIN_TIMEOUT="600")
    with framewire_process(env) as served:
        await ready(served.url)
        headers = {"x-api-key": "payer"}
        async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=20) as http:
            sessions = await open_three(served.url, http)
            served.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 5
            while (await http.get("/readyz")).json()["status"] != "draining":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            served.process.send_signal(signal.SIGINT)
            for session in sessions:
                end = await session.events.wait_for("generation_ended", timeout=30)
                assert end.data["reason"] == "shutdown"
        assert await exited(served.process, 30) == 0  # long before the 600 s drain
    for session in sessions:
        record = await stored(redis_url, session.id)
        assert record["reason"] == "shutdown" and record["credits_charged"] == record["seconds"]
        await session.close()
