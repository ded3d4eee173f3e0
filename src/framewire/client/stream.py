"""Following a session's SSE stream like EventSource does, and a little more.

A dropped connection (network error, read timeout, or a close before `generation_ended`) is
reopened after the server's `retry:` delay with `Last-Event-ID`, so the server replays what was
missed; ids at or below the last one seen are never delivered twice. A 401 (the event_token
expired) fetches a fresh token with GET and reconnects. A 410 means the session ended while
the stream was down: the ended session's summary is reported as `generation_ended` (its id is
None, since the server no longer replays the stream).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx
from httpx_sse import SSEError, aconnect_sse

from framewire.client.control import Control, ProblemError
from framewire.client.events import GenerationEnded, ServerEvent, parse_event

log = logging.getLogger("framewire.client")

MAX_FAILED_CONNECTS = 10
"""Consecutive connections that deliver nothing new before the follower gives up."""
READ_TIMEOUT = 45.0
"""The server sends a keep-alive at least every 15 s; three missed ones mean a dead stream."""


class EventFollower:
    """Reads one session's events into `on_event`, in id order, until `generation_ended`."""

    def __init__(
        self,
        control: Control,
        events_path: str,
        token: str,
        on_event: Callable[[ServerEvent], Awaitable[None]],
        refresh: Callable[[], Awaitable[tuple[str, GenerationEnded | None]]],
    ) -> None:
        self._control = control
        self._path = events_path
        self._token = token
        self._on_event = on_event
        self._refresh = refresh
        self._retry = 1.0
        self._task: asyncio.Task[None] | None = None
        self.last_id = 0
        self.connects = 0
        self.error: Exception | None = None
        """Why following stopped before the end, if it did."""

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def wait(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the stream to end."""
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=timeout)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            await self._follow_all()
        except ProblemError as exc:
            log.warning("event stream stopped: %s", exc)
            self.error = exc

    async def _follow_all(self) -> None:
        failures = 0
        while True:
            before = self.last_id
            try:
                if await self._follow():
                    return
            except (httpx.TransportError, SSEError) as exc:
                log.info("event stream dropped (%s); resuming after id %d", exc, self.last_id)
            except ProblemError as exc:
                if exc.status != 401:
                    raise
                self._token, ended = await self._refresh()
                if ended is not None:
                    await self._on_event(ended)
                    return
            failures = 0 if self.last_id > before else failures + 1
            if failures >= MAX_FAILED_CONNECTS:
                self.error = ConnectionError(
                    f"event stream: {failures} reconnects in a row brought nothing new"
                )
                log.warning("%s", self.error)
                return
            await asyncio.sleep(self._retry)

    async def _follow(self) -> bool:
        """One connection. True when the stream is over for good."""
        headers = {}
        if self.last_id:
            headers["Last-Event-ID"] = str(self.last_id)
        self.connects += 1
        async with aconnect_sse(
            self._control.http,
            "GET",
            self._control.url(self._path),
            params={"event_token": self._token},
            headers=headers,
            timeout=httpx.Timeout(10.0, read=READ_TIMEOUT),
        ) as source:
            response = source.response
            if response.status_code == 410:
                _, ended = await self._refresh()
                if ended is not None:
                    await self._on_event(ended)
                return True
            if response.status_code != 200:
                await response.aread()
                raise ProblemError.of(response)
            async for sse in source.aiter_sse():
                if sse.retry is not None:
                    self._retry = sse.retry / 1000.0
                if not sse.data:
                    continue  # keep-alive, or the empty `data:` after generation_ended
                if sse.id.isdigit():
                    if int(sse.id) <= self.last_id:
                        continue
                    self.last_id = int(sse.id)
                event = parse_event(sse.event, sse.data, sse.id)
                if event is None:
                    continue
                await self._on_event(event)
                if isinstance(event, GenerationEnded):
                    return True
        return False
