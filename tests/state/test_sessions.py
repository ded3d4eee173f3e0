"""SessionStore contract: records, their expiry and the owner index."""

from __future__ import annotations

import asyncio

from tests.state.conftest import Connect, State
from tests.state.helpers import eventually


def record(session_id: str, owner: str, status: str = "active") -> dict[str, object]:
    return {"session_id": session_id, "owner": owner, "status": status, "seconds": 1.5,
            "prompt": None, "nested": {"list": [1, "two", None]}}  # fmt: skip


async def test_a_record_reads_back_equal_from_any_instance(connect: Connect) -> None:
    a, b = connect(), connect()
    await a.sessions.put("rs_1", record("rs_1", "fw-a"))
    assert await b.sessions.get("rs_1") == record("rs_1", "fw-a")
    assert await b.sessions.get("rs_unknown") is None


async def test_a_record_with_a_ttl_disappears_after_it(state: State) -> None:
    await state.sessions.put("rs_long", record("rs_long", "fw-a"), ttl=60)
    await state.sessions.put("rs_short", record("rs_short", "fw-a"), ttl=0.2)

    async def gone() -> bool:
        return await state.sessions.get("rs_short") is None

    await eventually(gone)
    assert await state.sessions.get("rs_long") == record("rs_long", "fw-a")


async def test_a_put_without_ttl_keeps_the_record_for_good(state: State) -> None:
    await state.sessions.put("rs_1", record("rs_1", "fw-a"), ttl=0.2)
    await state.sessions.put("rs_1", record("rs_1", "fw-a", "ended"))
    await asyncio.sleep(0.5)
    assert await state.sessions.get("rs_1") == record("rs_1", "fw-a", "ended")


async def test_ids_owned_by_lists_the_instances_live_records(connect: Connect) -> None:
    a, b = connect(), connect()
    await a.sessions.put("rs_1", record("rs_1", "fw-a"))
    await a.sessions.put("rs_2", record("rs_2", "fw-a", "ended"), ttl=60)
    await b.sessions.put("rs_3", record("rs_3", "fw-b"))
    await a.sessions.put("rs_4", record("rs_4", "fw-a", "ended"), ttl=0.2)
    assert sorted(await b.sessions.ids_owned_by("fw-a")) in (
        ["rs_1", "rs_2", "rs_4"],
        ["rs_1", "rs_2"],  # rs_4 may already have expired
    )
    assert await a.sessions.ids_owned_by("fw-b") == ["rs_3"]
    assert await a.sessions.ids_owned_by("fw-c") == []

    async def expired_left() -> bool:
        return sorted(await b.sessions.ids_owned_by("fw-a")) == ["rs_1", "rs_2"]

    await eventually(expired_left)
