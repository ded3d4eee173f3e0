"""Ledger contract: billing writes are fenced by the session's ownership epoch, and a settlement
(charge, final record, slot, end events) happens once, whichever instances race for it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from framewire.state.base import Fenced
from tests.state.conftest import Connect, State

KEY = "key_payer"
END = [("error", {"status": 500}), ("generation_ended", {"seconds": 7.5, "reason": "error"})]


def session(epoch: int = 1, charged: float = 0.0, **fields: Any) -> dict[str, Any]:
    return {"session_id": "rs_1", "key_id": KEY, "owner": "fw-a", "status": "active",
            "epoch": epoch, "seconds": 0.0, "charged": charged, "credits_remaining": None,
            **fields}  # fmt: skip


async def opened(state: State, credit: float | None = 100.0) -> None:
    await state.accounts.ensure(KEY, credit)
    assert await state.accounts.acquire_slot(KEY, 1)
    await state.sessions.put("rs_1", session())


async def test_ticks_charge_the_ledger_and_store_what_was_charged(state: State) -> None:
    await opened(state)
    assert await state.ledger.charge(session(charged=2.0), 2.0) == pytest.approx(98.0)
    assert await state.ledger.charge(session(charged=3.5), 1.5) == pytest.approx(96.5)
    stored = await state.sessions.get("rs_1")
    assert stored is not None and stored["charged"] == 3.5


async def test_settle_charges_the_rest_once_and_writes_the_summary(connect: Connect) -> None:
    a, b = connect(), connect()
    await opened(a)
    await a.ledger.charge(session(charged=2.0), 2.0)
    final = session(charged=7.5, seconds=7.5, status="ended", reason="error")
    results = await asyncio.gather(*(s.ledger.settle(final, 60, END) for s in (a, b, a, b)))
    settled = [r for r in results if r is not None]
    assert len(settled) == 1
    assert settled[0]["epoch"] == 2 and settled[0]["status"] == "ended"
    assert settled[0]["credits_remaining"] == pytest.approx(92.5)
    assert await b.accounts.balance(KEY) == pytest.approx(92.5)
    assert await b.sessions.get("rs_1") == settled[0]
    assert [e.event for e in await b.events.read("rs_1", 0, wait=0)] == [n for n, _ in END]
    assert await b.accounts.acquire_slot(KEY, 1), "the settlement released the key's slot"


async def test_an_unlimited_key_settles_with_no_balance(state: State) -> None:
    await opened(state, credit=None)
    final = await state.ledger.settle(session(seconds=3.0, status="ended"), 60, END)
    assert final is not None and final["credits_remaining"] is None


async def test_a_fenced_owner_can_neither_charge_nor_write_nor_settle(connect: Connect) -> None:
    owner, survivor = connect(), connect()
    await opened(owner)
    survived = await survivor.ledger.settle(session(seconds=5.0, status="ended"), 60, END)
    assert survived is not None
    with pytest.raises(Fenced):
        await owner.ledger.charge(session(charged=4.0), 4.0)
    with pytest.raises(Fenced):
        await owner.sessions.update("rs_1", session(prompt="late"))
    assert await owner.ledger.settle(session(seconds=9.0, status="ended"), 60, END) is None
    assert await survivor.sessions.get("rs_1") == survived
    assert await survivor.accounts.balance(KEY) == pytest.approx(95.0)
    assert len(await survivor.events.read("rs_1", 0, wait=0)) == len(END)


async def test_a_writer_with_another_epoch_is_fenced(state: State) -> None:
    await opened(state)
    with pytest.raises(Fenced):
        await state.ledger.charge(session(epoch=2, charged=1.0), 1.0)
    assert await state.ledger.settle(session(epoch=0, status="ended"), 60, END) is None
    await state.sessions.update("rs_1", session(prompt="mine"))
    stored = await state.sessions.get("rs_1")
    assert stored is not None and stored["prompt"] == "mine"
    assert await state.accounts.balance(KEY) == 100.0


async def test_the_ledger_ends_holding_exactly_the_summarys_seconds(state: State) -> None:
    """Ticks charge unrounded time; the total is rounded to ms: settling squares the two."""
    await opened(state)
    await state.ledger.charge(session(charged=6.0004), 6.0004)
    final = await state.ledger.settle(session(charged=6.0004, seconds=6.0), 60, END)
    assert final is not None and final["credits_remaining"] == pytest.approx(94.0)
    assert await state.accounts.balance(KEY) == pytest.approx(94.0, abs=1e-9)
