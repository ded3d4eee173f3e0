"""The one place that picks a state adapter, so nothing above `state/` names one."""

from __future__ import annotations

from framewire.state.base import State
from framewire.state.memory import MemoryState
from framewire.state.redis import RedisState


def open_state(redis_url: str | None) -> State:
    """Redis when a URL is given (scale-out), else in-process memory."""
    return RedisState(redis_url) if redis_url else MemoryState()
