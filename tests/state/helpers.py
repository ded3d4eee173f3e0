"""Waiting for state to change, bounded: expiry happens on the server's clock, not ours."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

EXPIRY_WAIT = 10.0


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = EXPIRY_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not true within {timeout} s"
        await asyncio.sleep(0.05)
