"""The client's side of the session's ICE: queue-and-flush, the 412 advice, and
its ICE restart PATCH.

Candidates found after the offer are queued and PATCHed in batches, one request at a time, each
with `If-Match` carrying the ETag; a `null` element is end-of-candidates. A 412 (another ICE
operation changed the ETag first) is answered as the API documents: GET the session for the current
ETag and retry. A restart offer goes out with `If-Match: "*"` between two batches, never in the
middle of one, and the candidates of the replaced generation still queued are dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from framewire.client.control import Control, ProblemError

log = logging.getLogger("framewire.client")

STALE_RETRIES = 3


class CandidateTrickle:
    """Holds candidates until the session exists, then flushes them in order."""

    def __init__(self, control: Control) -> None:
        self._control = control
        self._queue: list[dict[str, Any] | None] = []
        self._path: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._signal = asyncio.Lock()
        """Held by each PATCH: the ETag's ICE operations happen one at a time."""
        self.etag: str | None = None
        """The ICE session's ETag as last seen (create, PATCH or GET answers)."""
        self.error: ProblemError | None = None
        """Why trickling stopped, if it did."""

    def add(self, candidate: dict[str, Any] | None) -> None:
        """Queue an RTCIceCandidateInit, or None for end-of-candidates."""
        self._queue.append(candidate)
        self._kick()

    def bind(self, session_path: str, etag: str) -> None:
        """The session exists: flush what was queued and everything after."""
        self._path, self.etag = session_path, etag
        self._kick()

    def _kick(self) -> None:
        if self._path is None or not self._queue or self.error is not None:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._queue and self.error is None:
            async with self._signal:
                batch, self._queue = self._queue, []
                if not batch:
                    return
                try:
                    await self._patch(batch)
                except ProblemError as exc:
                    log.warning("trickling ICE candidates failed: %s", exc)
                    self.error = exc

    async def restart(self, make_offer: Callable[[], Awaitable[str]]) -> str:
        """PATCH the restart offer `make_offer` returns, with `If-Match: "*"`; return the
        answer SDP. Candidates queued before the offer belong to the old generation: dropped."""
        assert self._path is not None
        async with self._signal:
            self._queue.clear()
            offer = await make_offer()
            response = await self._control.request(
                "PATCH",
                self._path,
                json={"sdp": {"type": "offer", "sdp": offer}},
                headers={"If-Match": '"*"'},
            )
            self.etag = response.headers.get("etag", self.etag)
            return str(response.json()["sdp"]["sdp"])

    async def _patch(self, batch: list[dict[str, Any] | None]) -> None:
        assert self._path is not None and self.etag is not None
        for attempt in range(STALE_RETRIES + 1):
            try:
                response = await self._control.request(
                    "PATCH", self._path, json={"candidates": batch}, headers={"If-Match": self.etag}
                )
            except ProblemError as exc:
                if exc.status != 412 or attempt == STALE_RETRIES:
                    raise
                current = await self._control.request("GET", self._path)
                self.etag = current.headers.get("etag", self.etag)
                continue
            self.etag = response.headers.get("etag", self.etag)
            return

    async def flushed(self) -> None:
        """Wait until every queued candidate has been sent (or trickling failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
