"""The contract suite runs every test against both adapters. `connect()` gives one instance's
view of the shared state: the same MemoryState in memory, a new RedisState (its own connections)
on the same server in Redis, so tests can act as several instances."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from framewire.state.memory import MemoryState
from framewire.state.redis import RedisState
from tests.redis_server import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]

State = MemoryState | RedisState
Connect = Callable[[], State]


@pytest.fixture(params=["memory", "redis"])
async def connect(request: pytest.FixtureRequest) -> AsyncIterator[Connect]:
    if request.param == "memory":
        memory = MemoryState()
        yield lambda: memory
        return
    url: str = request.getfixturevalue("redis_url")
    opened: list[RedisState] = []

    def open_view() -> RedisState:
        opened.append(RedisState(url))
        return opened[-1]

    yield open_view
    for state in opened:
        await state.close()


@pytest.fixture
def state(connect: Connect) -> State:
    """One instance's view."""
    return connect()
