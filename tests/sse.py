"""Read an SSE stream in the background, keeping every event and the raw text."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Received:
    id: int | None
    event: str
    data: Any
    at: float = field(default_factory=time.monotonic, compare=False)
    """When the reader got it (monotonic clock)."""


@dataclass
class EventReader:
    client: httpx.AsyncClient
    url: str
    last_event_id: int | None = None
    events: list[Received] = field(default_factory=list)
    raw: str = ""
    status: int | None = None
    closed_by_server: bool = False
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> EventReader:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self) -> None:
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        async with self.client.stream("GET", self.url, headers=headers) as response:
            self.status = response.status_code
            if response.status_code != 200:
                self.raw = (await response.aread()).decode()
                self._changed.set()
                return
            block: list[str] = []
            async for line in response.aiter_lines():
                self.raw += line + "\n"
                if line:
                    block.append(line)
                    continue
                self._dispatch(block)
                block = []
            self.closed_by_server = True
            self._changed.set()

    def _dispatch(self, block: list[str]) -> None:
        fields: dict[str, str] = {}
        for line in block:
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "event" in fields or fields.get("data"):
            self.events.append(
                Received(
                    int(fields["id"]) if "id" in fields else None,
                    fields.get("event", "message"),
                    json.loads(fields["data"]) if fields.get("data") else None,
                )
            )
            self._changed.set()

    def names(self) -> list[str]:
        return [e.event for e in self.events]

    async def wait_for(self, name: str, timeout: float = 20.0, count: int = 1) -> Received:
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events if e.event == name]
            if len(found) >= count:
                return found[count - 1]
            if self._task is not None and self._task.done():
                self._task.result()
                raise AssertionError(f"stream ended without {name!r}: {self.names()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {name!r} within {timeout}s; got {self.names()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_closed(self, timeout: float = 10.0) -> None:
        assert self._task is not None
        await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
