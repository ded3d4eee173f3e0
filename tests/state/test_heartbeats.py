"""Heartbeats contract: alive while beating, departed (with the last beat's time) once the beat
expires, forgotten on request."""

from __future__ import annotations

import time

from tests.state.conftest import Connect
from tests.state.helpers import eventually


async def test_a_beating_instance_is_alive_everywhere(connect: Connect) -> None:
    a, b = connect(), connect()
    await a.heartbeats.beat("fw-a", 60)
    await b.heartbeats.beat("fw-b", 60)
    assert await b.heartbeats.alive("fw-a")
    assert await a.heartbeats.instances() == ["fw-a", "fw-b"]
    assert await a.heartbeats.departed() == {}
    assert not await a.heartbeats.alive("fw-unknown")


async def test_an_instance_whose_beat_expires_has_departed(connect: Connect) -> None:
    a, b = connect(), connect()
    await b.heartbeats.beat("fw-b", 60)
    before = time.time()
    await a.heartbeats.beat("fw-a", 0.2)
    after = time.time()

    async def dead() -> bool:
        return not await b.heartbeats.alive("fw-a")

    await eventually(dead)
    departed = await b.heartbeats.departed()
    assert list(departed) == ["fw-a"]
    assert before <= departed["fw-a"] <= after
    assert await b.heartbeats.instances() == ["fw-b"]


async def test_forget_drops_a_departed_instance_but_never_a_live_one(connect: Connect) -> None:
    a, b = connect(), connect()
    await a.heartbeats.beat("fw-a", 0.2)
    await b.heartbeats.beat("fw-b", 60)

    async def departed() -> bool:
        return "fw-a" in await b.heartbeats.departed()

    await eventually(departed)
    await b.heartbeats.forget("fw-a")
    await a.heartbeats.forget("fw-b")
    assert await b.heartbeats.departed() == {}
    assert await a.heartbeats.instances() == ["fw-b"]
    await a.heartbeats.beat("fw-a", 60)  # back from the dead: known again
    assert await b.heartbeats.instances() == ["fw-a", "fw-b"]
