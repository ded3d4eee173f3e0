"""Soak: 200 short sessions in a row leave no peer connections, tasks, threads or memory behind."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest
from aiortc import RTCPeerConnection

from tests.servers import Running, framewire
from tests.sessions import open_session

SESSIONS = 200
WARMUP = 10
SETTLE = 30.0
"""Seconds closing work (peer connections, tasks, threads) may take to finish after the last
session, on a loaded machine."""


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def census() -> dict[str, float]:
    gc.collect()
    return {
        "peer_connections": sum(isinstance(o, RTCPeerConnection) for o in gc.get_objects()),
        "asyncio_tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        "rss_mb": round(rss_mb(), 1),
    }


async def quiet(server: Running) -> None:
    """Wait (bounded) until the server holds no leg and no session."""
    deadline = time.monotonic() + SETTLE
    while server.app.state.legs.all() or server.app.state.sessions.live:
        assert time.monotonic() < deadline, "legs or sessions outlived their DELETE"
        await asyncio.sleep(0.05)


def within(end: dict[str, float], start: dict[str, float]) -> bool:
    return (
        end["peer_connections"] <= start["peer_connections"]
        and end["asyncio_tasks"] <= start["asyncio_tasks"] + 2
        and end["threads"] <= start["threads"] + 2
    )


async def settled(start: dict[str, float]) -> dict[str, float]:
    """The census once closing work in flight has finished (bounded): a leak never does."""
    deadline = time.monotonic() + SETTLE
    end = census()
    while not within(end, start) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        end = census()
    return end


@pytest.mark.timeout(400)
async def test_200_short_sessions_leak_nothing() -> None:
    async with framewire(tick_interval=5.0) as server, server.client() as http:

        async def one() -> None:
            session = await open_session(server, http)
            await session.peer.wait_frames(1)
            assert (await http.delete(session.url)).status_code == 200
            await session.events.wait_closed()
            await session.close()

        for _ in range(WARMUP):
            await one()
        await quiet(server)
        start = census()
        for _ in range(SESSIONS):
            await one()
        await quiet(server)
        end = await settled(start)
        print(f"\nsoak over {SESSIONS} sessions:")
        print(f"{'':18}{'start':>10}{'end':>10}")
        for name in start:
            print(f"{name:18}{start[name]:>10}{end[name]:>10}")
        assert not server.app.state.legs.all() and not server.app.state.sessions.live
        assert end["peer_connections"] <= start["peer_connections"]
        assert end["asyncio_tasks"] <= start["asyncio_tasks"] + 2
        assert end["threads"] <= start["threads"] + 2
        assert end["rss_mb"] <= start["rss_mb"] + 60
