"""A flood of wrong API keys (500 creates/s for 5 s, from another process and source address)
while a good key streams and creates: the flood is turned away with 429 + Retry-After after a
small burst of 401s, the good key's creates keep their latency (p95 under twice the idle p95)
and its stream keeps its frame rate. The limit is per source address."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx

from tests.flood import TURNED_AWAY
from tests.peers import ClientPeer
from tests.servers import API_KEY, Running, framewire
from tests.sessions import SESSIONS, open_session

RATE, SECONDS = 500, 5.0
BURST, REFILL = 20, 0.2
CREATES = 30
FLOOD_SOURCE = "127.0.0.2"


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


async def offers(count: int) -> list[tuple[ClientPeer, str]]:
    made = []
    for _ in range(count):
        peer = ClientPeer()
        made.append((peer, await peer.offer()))
    return made


async def create_latencies(http: httpx.AsyncClient, count: int) -> list[float]:
    """Seconds each of `count` good creates took to answer (offers made beforehand)."""
    prepared = await offers(count)
    took = []
    try:
        for _, sdp in prepared:
            start = time.monotonic()
            response = await http.post(
                SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": sdp}}
            )
            took.append(time.monotonic() - start)
            assert response.status_code == 201, response.text
            assert (await http.delete(response.headers["location"])).status_code == 200
    finally:
        for peer, _ in prepared:
            await peer.close()
    return took


async def fps(peer: ClientPeer, seconds: float) -> float:
    before, start = peer.received, time.monotonic()
    await asyncio.sleep(seconds)
    return (peer.received - before) / (time.monotonic() - start)


async def start_flood(server: Running) -> asyncio.subprocess.Process:
    """The flood, in its own process, once the server has begun turning it away (429)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.flood",
        server.url,
        "--rate",
        str(RATE),
        "--seconds",
        str(SECONDS),
        "--source",
        FLOOD_SOURCE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    line = await asyncio.wait_for(process.stderr.readline(), SECONDS)
    assert line.decode().strip() == TURNED_AWAY, line
    return process


async def flood_result(process: asyncio.subprocess.Process) -> dict[str, object]:
    out, _ = await asyncio.wait_for(process.communicate(), SECONDS * 6)
    assert process.returncode == 0
    result: dict[str, object] = json.loads(out)
    return result


async def test_a_wrong_key_flood_is_turned_away_and_good_keys_keep_their_pace() -> None:
    async with (
        framewire(auth_failure_burst=BURST, auth_failure_rate=REFILL, max_sessions=8) as server,
        server.client() as http,
    ):
        streaming = await open_session(server, http)
        await streaming.peer.wait_frames(20)
        idle_fps = await fps(streaming.peer, 2.0)
        idle = await create_latencies(http, CREATES)

        flood = asyncio.create_task(flood_result(await start_flood(server)))
        flood_fps = asyncio.create_task(fps(streaming.peer, 3.0))
        during = await create_latencies(http, CREATES)
        assert not flood.done(), "the flood ended before the good creates did"
        result = await flood
        # per source: the flooded address is still served with a good key, and a wrong key from
        # another address is a plain 401
        transport = httpx.AsyncHTTPTransport(local_address=FLOOD_SOURCE)
        async with httpx.AsyncClient(base_url=server.url, transport=transport) as flooded:
            good = await flooded.get("/v1/legs", headers={"x-api-key": API_KEY})
            assert good.status_code == 200
            wrong = await flooded.get("/v1/legs", headers={"x-api-key": "wrong"})
            assert wrong.status_code == 429 and int(wrong.headers["retry-after"]) >= 1
        async with server.client("wrong") as elsewhere:
            assert (await elsewhere.get("/v1/legs")).status_code == 401
        idle += await create_latencies(http, CREATES)  # idle again: before and after, alike
        print(
            f"\ncreate p95 idle {p95(idle) * 1000:.1f} ms, flooded {p95(during) * 1000:.1f} ms;"
            f" fps idle {idle_fps:.1f}, during {flood_fps.result():.1f}; flood {result}"
        )

        statuses = result["statuses"]
        assert isinstance(statuses, dict) and isinstance(result["sent"], int)
        assert result["sent"] >= 0.8 * RATE * SECONDS
        assert set(statuses) <= {"401", "429"}
        assert statuses["401"] <= BURST + REFILL * (SECONDS + 2)
        assert statuses["429"] == result["retry_after"] >= 0.9 * result["sent"] - BURST
        assert p95(during) < 2 * p95(idle)
        assert flood_fps.result() >= 0.8 * idle_fps
        await streaming.close()
