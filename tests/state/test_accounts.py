"""Accounts contract: shared balances in generation-seconds and per-key session slots."""

from __future__ import annotations

import asyncio

from tests.state.conftest import Connect, State

SESSION = {"session_id": "rs_1", "owner": "fw-a", "status": "active", "epoch": 1, "charged": 0.0}


async def charge(state: State, key_id: str, seconds: float) -> float | None:
    """A tick's charge, as an owner makes it (through the ledger, for its session)."""
    return await state.ledger.charge({**SESSION, "key_id": key_id}, seconds)


async def test_charges_from_any_instance_come_off_one_balance(connect: Connect) -> None:
    a, b = connect(), connect()
    await a.accounts.ensure("key_1", 100.0)
    await b.accounts.ensure("key_1", 500.0)  # already there: not reset
    await a.sessions.put("rs_1", {**SESSION, "key_id": "key_1"})
    assert await charge(a, "key_1", 2.5) == 97.5
    assert await charge(b, "key_1", 10.25) == 87.25
    assert await charge(b, "key_1", 0.0) == 87.25
    assert await a.accounts.balance("key_1") == 87.25
    charges = await asyncio.gather(*(charge(s, "key_1", 1.0) for s in (a, b) * 10))
    assert sorted(charges) == [67.25 + n for n in range(20)]  # type: ignore[type-var]
    assert await b.accounts.balance("key_1") == 67.25
    assert await charge(a, "key_1", 100.0) == -32.75


async def test_an_unlimited_key_has_no_balance(connect: Connect) -> None:
    a, b = connect(), connect()
    await a.accounts.ensure("key_free", None)
    await b.accounts.ensure("key_free", 10.0)
    assert await b.accounts.balance("key_free") is None
    await a.sessions.put("rs_1", {**SESSION, "key_id": "key_free"})
    assert await charge(a, "key_free", 30.0) is None
    assert await b.accounts.balance("key_free") is None


async def test_slots_are_limited_per_key_across_instances(connect: Connect) -> None:
    a, b = connect(), connect()
    tries = await asyncio.gather(*(s.accounts.acquire_slot("key_1", 3) for s in (a, b) * 5))
    assert tries.count(True) == 3
    assert not await a.accounts.acquire_slot("key_1", 3)
    assert await b.accounts.acquire_slot("key_2", 3)  # another key has its own slots
    await b.accounts.release_slot("key_1")
    assert await a.accounts.acquire_slot("key_1", 3)
    assert not await b.accounts.acquire_slot("key_1", 3)
    assert await b.accounts.acquire_slot("key_1", 4)  # the limit is the caller's


async def test_releasing_more_slots_than_held_never_goes_below_zero(connect: Connect) -> None:
    a, b = connect(), connect()
    assert await a.accounts.acquire_slot("key_1", 1)
    await a.accounts.release_slot("key_1")
    await b.accounts.release_slot("key_1")
    await b.accounts.release_slot("key_never")
    assert await b.accounts.acquire_slot("key_1", 1)
    assert not await a.accounts.acquire_slot("key_1", 1)
