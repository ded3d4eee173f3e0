"""CommandBus contract: a command reaches the instance it names and its reply comes back;
nobody serving means a TimeoutError in bounded time."""

from __future__ import annotations

import asyncio

import pytest

from framewire.state.base import Record
from tests.state.conftest import Connect


async def test_a_command_round_trips_to_the_serving_instance(connect: Connect) -> None:
    owner, caller = connect(), connect()
    seen: list[Record] = []

    async def handler(command: Record, blob: bytes) -> Record:
        seen.append(command)
        return {"echo": command["op"], "candidates": [None, {"candidate": "c"}]}

    await owner.commands.serve("fw-a", handler)
    try:
        command = {"op": "trickle", "session_id": "rs_1", "candidates": [None]}
        reply = await caller.commands.call("fw-a", command, timeout=10)
        assert reply == {"echo": "trickle", "candidates": [None, {"candidate": "c"}]}
        assert seen == [command]
    finally:
        await owner.commands.stop()


async def test_a_binary_payload_crosses_as_bytes(connect: Connect) -> None:
    owner, caller = connect(), connect()
    payload = bytes(range(256)) * 4096 + b"\n\x00end"  # every byte value, newlines included

    async def handler(command: Record, blob: bytes) -> Record:
        return {"size": len(blob), "same": blob == payload, "op": command["op"]}

    await owner.commands.serve("fw-a", handler)
    try:
        reply = await caller.commands.call("fw-a", {"op": "image"}, timeout=10, blob=payload)
        assert reply == {"size": len(payload), "same": True, "op": "image"}
    finally:
        await owner.commands.stop()


async def test_a_call_nobody_serves_times_out(connect: Connect) -> None:
    caller = connect()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(caller.commands.call("fw-gone", {"op": "end"}, timeout=0.5), 20)


async def test_after_stop_calls_time_out(connect: Connect) -> None:
    owner, caller = connect(), connect()

    async def handler(command: Record, blob: bytes) -> Record:
        return {}

    await owner.commands.serve("fw-a", handler)
    assert await caller.commands.call("fw-a", {"op": "prompt"}, timeout=10) == {}
    await owner.commands.stop()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(caller.commands.call("fw-a", {"op": "prompt"}, timeout=0.5), 20)


async def test_a_handler_failure_reaches_the_caller(connect: Connect) -> None:
    owner, caller = connect(), connect()

    async def handler(command: Record, blob: bytes) -> Record:
        raise RuntimeError("leg exploded")

    await owner.commands.serve("fw-a", handler)
    try:
        with pytest.raises(RuntimeError, match="leg exploded"):
            await caller.commands.call("fw-a", {"op": "trickle"}, timeout=10)
    finally:
        await owner.commands.stop()


async def test_a_slow_command_does_not_hold_up_the_next(connect: Connect) -> None:
    owner, caller = connect(), connect()
    release = asyncio.Event()

    async def handler(command: Record, blob: bytes) -> Record:
        if command["op"] == "slow":
            await release.wait()
        return {"op": command["op"]}

    await owner.commands.serve("fw-a", handler)
    try:
        slow = asyncio.get_running_loop().create_task(
            caller.commands.call("fw-a", {"op": "slow"}, timeout=30)
        )
        assert await caller.commands.call("fw-a", {"op": "fast"}, timeout=10) == {"op": "fast"}
        assert not slow.done()
        release.set()
        assert await asyncio.wait_for(slow, 20) == {"op": "slow"}
    finally:
        await owner.commands.stop()
