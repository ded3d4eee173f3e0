"""Outbox contract: a due delivery goes to one taker at a time, comes back after its lease or
when retried (attempts counted), and is gone once done."""

from __future__ import annotations

import asyncio
import time

from framewire.state.base import Delivery
from tests.state.conftest import Connect
from tests.state.helpers import eventually


def delivery(key: str) -> Delivery:
    return Delivery(key, "msg_" + key, "http://127.0.0.1:9/hook", '{"type": "t"}', time.time())


async def test_each_due_delivery_is_taken_by_one_instance(connect: Connect) -> None:
    a, b = connect(), connect()
    for n in range(6):
        await a.outbox.add(delivery(f"d{n}"))
    taken = await asyncio.gather(*(view.outbox.take(4, 60) for view in (a, b, a, b)))
    keys = [d.key for batch in taken for d in batch]
    assert sorted(keys) == [f"d{n}" for n in range(6)]  # all of them, none twice
    assert await b.outbox.take(10, 60) == []  # leased


async def test_a_lease_runs_out_and_the_delivery_is_due_again(connect: Connect) -> None:
    a, b = connect(), connect()
    await a.outbox.add(delivery("d"))
    [taken] = await a.outbox.take(10, 0.2)  # its taker dies mid-attempt

    async def due_again() -> bool:
        return [d.key for d in await b.outbox.take(10, 60)] == ["d"]

    await eventually(due_again)
    assert taken.message_id == "msg_d"


async def test_a_retry_keeps_the_delivery_counted_until_done(connect: Connect) -> None:
    a, b = connect(), connect()
    await a.outbox.add(delivery("d"))
    [first] = await a.outbox.take(10, 60)
    await a.outbox.retry(first, time.time() + 0.2)
    assert await b.outbox.take(10, 60) == []  # not due yet

    found: list[Delivery] = []

    async def retried() -> bool:
        found.extend(await b.outbox.take(10, 0.2))
        return bool(found)

    await eventually(retried)
    [again] = found
    assert (again.message_id, again.body, again.attempts) == (first.message_id, first.body, 1)
    await b.outbox.done(again)
    await asyncio.sleep(0.3)  # past the lease it was taken with
    assert await a.outbox.take(10, 60) == []  # done: gone for good
