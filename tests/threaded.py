"""A real framewire instance on loopback in a thread of its own, for synchronous tests
(hypothesis drives plain functions) and for tests that must keep talking while their own event
loop is busy. The server's loop is not the test's: share nothing but HTTP and UDP."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from tests.servers import framewire


@contextlib.contextmanager
def threaded_framewire(**overrides: Any) -> Iterator[str]:
    """Run `framewire(**overrides)` in a thread; yield its base URL."""
    ready = threading.Event()
    url: list[str] = []
    failure: list[BaseException] = []
    stop: list[asyncio.Event] = []
    loops: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        stop.append(asyncio.Event())
        loops.append(asyncio.get_running_loop())
        async with framewire(**overrides) as server:
            url.append(server.url)
            ready.set()
            await stop[0].wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # handed to the test thread below
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="framewire-server", daemon=True)
    thread.start()
    ready.wait(60)
    if failure or not url:
        raise RuntimeError(f"the server did not start: {failure}")
    try:
        yield url[0]
    finally:
        loops[0].call_soon_threadsafe(stop[0].set)
        thread.join(30)
        assert not thread.is_alive(), "the server thread did not stop"
