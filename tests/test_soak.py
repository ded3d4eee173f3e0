"""Soak: 200 short sessions in a row leave no peer connections, tasks, threads or memory behind."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest
from aiortc import RTCPeerConnection

from tests.servers import framewire
from tests.sessions import open_session

SESSIONS = 200
WARMUP = 10


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
        await asyncio.sleep(0.5)
        start = census()
        for _ in range(SESSIONS):
            await one()
        await asyncio.sleep(1.0)
        end = census()
        print(f"\nsoak over {SESSIONS} sessions:")
        print(f"{'':18}{'start':>10}{'end':>10}")
        for name in start:
            print(f"{name:18}{start[name]:>10}{end[name]:>10}")
        assert not server.app.state.legs.all() and not server.app.state.sessions.live
        assert end["peer_connections"] <= start["peer_connections"]
        assert end["asyncio_tasks"] <= start["asyncio_tasks"] + 2
        assert end["threads"] <= start["threads"] + 2
        assert end["rss_mb"] <= start["rss_mb"] + 60
