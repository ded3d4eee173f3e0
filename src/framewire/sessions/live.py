"""A session on its owner instance: the leg, the timers, billing, and its way to the one
settlement. Every write it makes is fenced by the session's epoch: once another instance has
settled the session (this owner stalled past its heartbeat), a refused write only stops the
media here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from framewire import logs
from framewire.media.leg import Leg
from framewire.sessions.icewatch import IceWatch
from framewire.sessions.lifecycle import Lifecycle, log_fields
from framewire.sessions.record import SessionRecord
from framewire.sessions.settle import settle
from framewire.state.base import EventLog, Fenced, Ledger, SessionStore, StateUnavailable

log = logging.getLogger("framewire.sessions")
OUTBOX_LIMIT = 10_000
APPEND_ATTEMPTS = 3
APPEND_BACKOFF = 0.2


@dataclass
class Timings:
    tick_interval: float
    inactivity_timeout: float
    retention: float
    ice_disconnect_grace: float = 5.0
    ice_restart_timeout: float = 15.0


class LiveSession:
    """Owns one session's runtime. `end(reason)` is the only way out, and it is idempotent."""

    def __init__(
        self,
        record: SessionRecord,
        leg: Leg,
        store: SessionStore,
        events: EventLog,
        ledger: Ledger,
        timings: Timings,
        on_closed: Callable[[LiveSession], Awaitable[None]],
        ice_servers: Callable[[], list[dict[str, Any]]] = list,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        logs.bind(**log_fields(record))  # for the lines of this session's tasks
        self.record = record
        self._lifecycle = lifecycle or Lifecycle()
        self.leg = leg
        self._store = store
        self._events = events
        self._ledger = ledger
        self._fenced = False
        """Another instance settled this session: write nothing more, only stop the media."""
        self._timings = timings
        self._on_closed = on_closed
        self._outbox: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue(OUTBOX_LIMIT)
        self._writer = asyncio.get_running_loop().create_task(self._write())
        self._supervisor: asyncio.Task[None] | None = None
        self._charged = 0.0
        self._next_tick: float | None = None
        self._credit_deadline: float | None = None
        self._ending: asyncio.Task[SessionRecord] | None = None
        self._started: asyncio.Task[None] | None = None
        """The first frame's bookkeeping (persist, notify), held so it is not collected."""
        self._charging: asyncio.Future[float | None] | None = None
        self.balance_at_start: float | None = None
        """The key's balance when the session was created; bounds the first charge."""
        self.ice = IceWatch(
            leg,
            timings.ice_disconnect_grace,
            timings.ice_restart_timeout,
            lambda: self.publish("ice-restart", {"ice_servers": ice_servers()}),
        )
        self.ice_lock = asyncio.Lock()
        """Serializes the session's ICE operations (trickle, restart) on the owner."""
        leg.attach(self)

    def start(self) -> None:
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    # events -----------------------------------------------------------------------------

    def publish(self, event: str, data: Any) -> None:
        """Queue an event for the log; order of calls is the order of ids."""
        try:
            self._outbox.put_nowait((event, data))
        except asyncio.QueueFull:
            self.end_soon("error")

    async def _write(self) -> None:
        while True:
            item = await self._outbox.get()
            try:
                if item is None:
                    return
                if not self._fenced:
                    await self._append(*item)
            finally:
                self._outbox.task_done()

    async def _append(self, event: str, data: Any) -> None:
        """Append one event, retrying a failing state store a few times: a writer that died on
        one error would silence the session and never let it end cleanly."""
        for attempt in range(1, APPEND_ATTEMPTS + 1):
            try:
                await self._events.append(self.record.session_id, event, data, self.record.epoch)
                return
            except Fenced:
                self.lost()
                return
            except Exception as exc:  # the store's own errors (Redis away, ...)
                log.warning(
                    "append %s to %s failed (%d): %r", event, self.record.session_id, attempt, exc
                )
                await asyncio.sleep(APPEND_BACKOFF * attempt)
        log.error("event %s of session %s was lost", event, self.record.session_id)

    def on_candidate(self, init: dict[str, Any] | None) -> None:
        self.publish("ice-candidate", init if init is not None else {"candidate": None})

    def on_first_frame(self) -> None:
        if self.record.started_at is not None or self._ending is not None:
            return
        now = time.time()
        self.record.started_at = now
        self._next_tick = now + self._timings.tick_interval
        if self.balance_at_start is not None:
            self._credit_deadline = now + self.balance_at_start
        self.publish("generation_started", {})
        self._started = asyncio.get_running_loop().create_task(self._on_started())
        self._wake()

    def on_ended(self, reason: str) -> None:
        self.end_soon(reason)

    async def _on_started(self) -> None:
        await self.persist()
        if not self._fenced:
            await self._lifecycle.started(self.record)

    async def persist(self) -> None:
        """Store the record as this owner holds it (fenced)."""
        try:
            await self._store.update(self.record.session_id, self.record.to_dict())
        except Fenced:
            self.lost()

    def lost(self) -> None:
        """A write was fenced: the session was settled elsewhere. Stop the media, write nothing."""
        if not self._fenced:
            log.warning("session %s settled elsewhere: stopping its media", self.record.session_id)
        self._fenced = True
        self.end_soon("error")

    def use_prompt(self, prompt: str, enhanced: str, enhance: bool) -> None:
        """Hand the model its (enhanced) prompt and remember both forms in the record."""
        self.leg.set_prompt(enhanced)
        self.record.prompt, self.record.enhanced_prompt = prompt, enhanced
        self.record.enhance_prompt = enhance

    # timers -----------------------------------------------------------------------------

    def _wake(self) -> None:
        """Re-plan the supervisor's sleep after a deadline moved."""
        if self._supervisor is not None and not self._supervisor.done() and self._ending is None:
            self._supervisor.cancel()
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        while self._ending is None:
            now = time.time()
            if now >= self.record.expires_at:
                self.end_soon("timeout")
                return
            if self.leg.seconds_since_inbound() >= self._timings.inactivity_timeout:
                self.end_soon("inactivity")
                return
            if self.ice.expired(now):
                self.end_soon("ice_failure")
                return
            if self._next_tick is not None and now >= self._next_tick:
                await self._tick()
                continue
            if self._credit_deadline is not None and now >= self._credit_deadline:
                if await self._charge(now) is not None:
                    continue
                return
            deadlines = [
                self.record.expires_at,
                now + self._timings.inactivity_timeout - self.leg.seconds_since_inbound(),
                self.ice.check(now),
            ]
            if self._next_tick is not None:
                deadlines.append(self._next_tick)
            if self._credit_deadline is not None:
                deadlines.append(self._credit_deadline)
            await asyncio.sleep(max(0.0, min(min(deadlines) - now, 1.0)))

    async def _tick(self) -> None:
        assert self._next_tick is not None and self.record.started_at is not None
        at = self._next_tick
        self._next_tick = at + self._timings.tick_interval
        seconds = math.floor(at - self.record.started_at + 1e-6)
        self.publish("generation_tick", {"seconds": seconds})
        await self._charge(time.time())

    async def _charge(self, now: float) -> float | None:
        """Charge generation time up to `now`; end the session when the balance runs out.
        Returns the remaining balance, or None once the session is ending."""
        if self.record.started_at is None:
            return 0.0
        used = max(0.0, now - self.record.started_at)
        delta, self._charged = used - self._charged, used
        self.record.charged = used
        # Shielded: an end that cancels the supervisor mid-charge must not lose the slice.
        self._charging = asyncio.ensure_future(self._book(delta))
        remaining = await asyncio.shield(self._charging)
        if self._fenced:
            return None
        if remaining is None:
            return math.inf
        if remaining <= 1e-3:
            self.end_soon("insufficient_credits")
            return None
        self._credit_deadline = now + remaining
        return remaining

    async def _book(self, delta: float) -> float | None:
        """Charge the slice and store the record saying so, in one fenced step (a survivor
        bills the rest if this instance dies)."""
        try:
            return await self._ledger.charge(self.record.to_dict(), delta)
        except Fenced:
            self.lost()
            return None

    # the end ----------------------------------------------------------------------------

    def end_soon(self, reason: str) -> None:
        if self._ending is None:
            self._ending = asyncio.get_running_loop().create_task(self._end(reason))

    async def end(self, reason: str) -> SessionRecord:
        """End the session (once, whoever asks first) and return the final record."""
        self.end_soon(reason)
        assert self._ending is not None
        return await asyncio.shield(self._ending)

    async def _end(self, reason: str) -> SessionRecord:
        now = time.time()
        await self._quiesce()
        record = self.record
        await self.leg.close()
        record.viewer_seconds = self.leg.viewer_seconds()
        if record.started_at is not None and self._next_tick is not None and now >= self._next_tick:
            seconds = math.floor(self._next_tick - record.started_at + 1e-6)
            self.publish("generation_tick", {"seconds": seconds})
        try:
            await self._outbox.put(None)  # what was published lands before the end events
            await self._writer
            if not self._fenced:
                settled = await settle(
                    self._ledger, record, reason, now, self._timings.retention, self._lifecycle
                )
                self._fenced = settled is None
                self.record = settled or record
        except StateUnavailable as exc:  # the store is away: local resources still go
            log.error("session %s could not be settled: %s", record.session_id, exc)
        finally:
            await self._on_closed(self)
        if self._fenced:
            return await self._settled_elsewhere()
        return self.record

    async def _quiesce(self) -> None:
        """Stop the timers; a tick's charge in flight lands before the settlement."""
        if self._supervisor is not None and self._supervisor is not asyncio.current_task():
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._charging is not None:
            await self._charging

    async def _settled_elsewhere(self) -> SessionRecord:
        """The record another instance settled (this owner's own, if it is gone meanwhile)."""
        stored = await self._store.get(self.record.session_id)
        return SessionRecord.from_dict(stored) if stored is not None else self.record
