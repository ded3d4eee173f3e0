"""EventLog contract: ids from 1, replay after an id, bounded waits that wake on append, atomic
appends from several instances, expiry."""

from __future__ import annotations

import asyncio
import time

from framewire.state.base import Event
from tests.state.conftest import Connect, State
from tests.state.helpers import eventually


async def test_ids_increase_from_one_and_read_replays_after_an_id(state: State) -> None:
    log = state.events
    assert await log.append("rs_1", "generation_started", {}) == 1
    assert await log.append("rs_1", "ice-candidate", {"candidate": None}) == 2
    assert await log.append("rs_1", "generation_tick", {"seconds": 5}) == 3
    assert await log.append("rs_2", "generation_started", {}) == 1
    assert await log.read("rs_1", 0, wait=0) == [
        Event(1, "generation_started", {}),
        Event(2, "ice-candidate", {"candidate": None}),
        Event(3, "generation_tick", {"seconds": 5}),
    ]
    assert await log.read("rs_1", 2, wait=0) == [Event(3, "generation_tick", {"seconds": 5})]
    assert await log.read("rs_1", 3, wait=0) == []
    assert await log.read("rs_2", 0, wait=5) == [Event(1, "generation_started", {})]


async def test_read_with_nothing_new_waits_up_to_wait_then_returns_nothing(state: State) -> None:
    await state.events.append("rs_1", "generation_started", {})
    started = time.monotonic()
    assert await state.events.read("rs_1", 1, wait=0.5) == []
    assert time.monotonic() - started >= 0.4
    assert await state.events.read("rs_never", 0, wait=0.2) == []


async def test_a_waiting_read_wakes_on_an_append_from_another_instance(connect: Connect) -> None:
    reader, writer = connect(), connect()
    waiting = asyncio.get_running_loop().create_task(reader.events.read("rs_1", 0, wait=60))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await writer.events.append("rs_1", "generation_tick", {"seconds": 1})
    assert await asyncio.wait_for(waiting, 20) == [Event(1, "generation_tick", {"seconds": 1})]


async def test_concurrent_appenders_get_consecutive_ids_in_order(connect: Connect) -> None:
    a, b = connect(), connect()

    async def append_all(state: State, name: str) -> list[int]:
        return [await state.events.append("rs_1", name, {"n": n}) for n in range(25)]

    ids_a, ids_b = await asyncio.gather(append_all(a, "a"), append_all(b, "b"))
    assert sorted(ids_a + ids_b) == list(range(1, 51))
    events = await a.events.read("rs_1", 0, wait=0)
    assert [e.id for e in events] == list(range(1, 51))
    for name, ids in (("a", ids_a), ("b", ids_b)):
        mine = [e for e in events if e.event == name]
        assert [e.id for e in mine] == ids
        assert [e.data["n"] for e in mine] == list(range(25))


async def test_expired_events_are_forgotten(state: State) -> None:
    await state.events.append("rs_1", "generation_ended", {"seconds": 3, "reason": "disconnect"})
    await state.events.append("rs_2", "generation_started", {})
    await state.events.expire("rs_1", 0.2)
    await state.events.expire("rs_2", 60)

    async def forgotten() -> bool:
        return await state.events.read("rs_1", 0, wait=0) == []

    await eventually(forgotten)
    assert await state.events.read("rs_2", 0, wait=0) == [Event(1, "generation_started", {})]
