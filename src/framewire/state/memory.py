"""In-memory state: the embedded default (one process). Several apps in one process may share
one `MemoryState` to act as several instances of one service, as tests do."""

from __future__ import annotations

import asyncio
import copy
import time
from collections import defaultdict
from typing import Any

from framewire.state.base import CommandHandler, Event, Fenced, Record


class _Expiring:
    def __init__(self) -> None:
        self._deadline: dict[str, float] = {}

    def set(self, key: str, ttl: float | None) -> None:
        if ttl is None:
            self._deadline.pop(key, None)
        else:
            self._deadline[key] = time.monotonic() + ttl

    def expired(self, key: str) -> bool:
        deadline = self._deadline.get(key)
        return deadline is not None and time.monotonic() >= deadline


class MemorySessionStore:
    def __init__(self) -> None:
        self._records: dict[str, Record] = {}
        self._ttl = _Expiring()

    async def get(self, session_id: str) -> Record | None:
        if self._ttl.expired(session_id):
            self._records.pop(session_id, None)
            self._ttl.set(session_id, None)
        record = self._records.get(session_id)
        return copy.deepcopy(record) if record is not None else None

    async def put(self, session_id: str, record: Record, ttl: float | None = None) -> None:
        self.write(session_id, record, ttl)

    async def update(self, session_id: str, record: Record) -> None:
        self.fence(session_id, record)
        self.write(session_id, record, None)

    def write(self, session_id: str, record: Record, ttl: float | None) -> None:
        self._records[session_id] = copy.deepcopy(record)
        self._ttl.set(session_id, ttl)
        self._sweep()

    def fence(self, session_id: str, record: Record) -> Record:
        """The stored record, if `record`'s writer still holds the session; else Fenced."""
        self._sweep()
        stored = self._records.get(session_id)
        if stored is None or stored["status"] != "active" or stored["epoch"] != record["epoch"]:
            raise Fenced(session_id)
        return stored

    async def ids_owned_by(self, instance_id: str) -> list[str]:
        self._sweep()
        return [sid for sid, r in self._records.items() if r.get("owner") == instance_id]

    def _sweep(self) -> None:
        for sid in [s for s in self._records if self._ttl.expired(s)]:
            self._records.pop(sid, None)
            self._ttl.set(sid, None)


class MemoryEventLog:
    def __init__(self, sessions: MemorySessionStore | None = None) -> None:
        self._sessions = sessions
        """Where an owner's fenced append checks its epoch (without it, appends are unfenced)."""
        self._events: dict[str, list[Event]] = defaultdict(list)
        self._changed: dict[str, asyncio.Condition] = {}
        self._ttl = _Expiring()

    def _condition(self, session_id: str) -> asyncio.Condition:
        if session_id not in self._changed:
            self._changed[session_id] = asyncio.Condition()
        return self._changed[session_id]

    async def append(self, session_id: str, event: str, data: Any, epoch: int | None = None) -> int:
        if epoch is not None and self._sessions is not None:
            self._sessions.fence(session_id, {"epoch": epoch})
        log = self._events[session_id]
        entry = Event(len(log) + 1, event, copy.deepcopy(data))
        log.append(entry)
        condition = self._condition(session_id)
        async with condition:
            condition.notify_all()
        return entry.id

    async def read(self, session_id: str, after: int, wait: float) -> list[Event]:
        self._sweep()
        found = [e for e in self._events.get(session_id, []) if e.id > after]
        if found or wait <= 0:
            return found
        condition = self._condition(session_id)
        async with condition:
            try:
                await asyncio.wait_for(
                    condition.wait_for(
                        lambda: (
                            bool(self._events.get(session_id))
                            and self._events[session_id][-1].id > after
                        )
                    ),
                    wait,
                )
            except TimeoutError:
                return []
        return [e for e in self._events.get(session_id, []) if e.id > after]

    async def expire(self, session_id: str, ttl: float) -> None:
        self._ttl.set(session_id, ttl)

    def _sweep(self) -> None:
        for sid in [s for s in self._events if self._ttl.expired(s)]:
            self._events.pop(sid, None)
            self._changed.pop(sid, None)
            self._ttl.set(sid, None)


class MemoryCommandBus:
    def __init__(self) -> None:
        self._handlers: dict[str, CommandHandler] = {}

    async def serve(self, instance_id: str, handler: CommandHandler) -> None:
        self._handlers[instance_id] = handler

    async def call(
        self, instance_id: str, command: Record, timeout: float, blob: bytes = b""
    ) -> Record:
        handler = self._handlers.get(instance_id)
        if handler is None:
            raise TimeoutError(f"instance {instance_id} does not answer")
        return await asyncio.wait_for(handler(copy.deepcopy(command), blob), timeout)

    async def stop(self) -> None:
        self._handlers.clear()


class MemoryAccounts:
    def __init__(self) -> None:
        self._balance: dict[str, float | None] = {}
        self._slots: dict[str, int] = defaultdict(int)

    async def ensure(self, key_id: str, credit: float | None) -> None:
        self._balance.setdefault(key_id, credit)

    async def balance(self, key_id: str) -> float | None:
        return self._balance.get(key_id)

    def take(self, key_id: str, seconds: float) -> float | None:
        current = self._balance.get(key_id)
        if current is None:
            return None
        self._balance[key_id] = current - seconds
        return self._balance[key_id]

    async def acquire_slot(self, key_id: str, limit: int) -> bool:
        if self._slots[key_id] >= limit:
            return False
        self._slots[key_id] += 1
        return True

    async def release_slot(self, key_id: str) -> None:
        self._slots[key_id] = max(0, self._slots[key_id] - 1)


class MemoryLedger:
    """Fenced billing over the other memory ports. Each check-and-write runs without an await,
    so on one event loop it is atomic; the end events are appended after the record is final."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def charge(self, record: Record, seconds: float) -> float | None:
        self._state.sessions.fence(record["session_id"], record)
        self._state.sessions.write(record["session_id"], record, None)
        return self._state.accounts.take(record["key_id"], seconds)

    async def settle(
        self, record: Record, ttl: float, events: list[tuple[str, Any]]
    ) -> Record | None:
        session_id = record["session_id"]
        try:
            stored = self._state.sessions.fence(session_id, record)
        except Fenced:
            return None
        remaining = self._state.accounts.take(
            record["key_id"], record["seconds"] - stored["charged"]
        )
        final = {**record, "epoch": record["epoch"] + 1, "credits_remaining": remaining}
        self._state.sessions.write(session_id, final, ttl)
        await self._state.accounts.release_slot(record["key_id"])
        for event, data in events:
            await self._state.events.append(session_id, event, data)
        await self._state.events.expire(session_id, ttl)
        return copy.deepcopy(final)


class MemoryHeartbeats:
    def __init__(self) -> None:
        self._beats = _Expiring()
        self._known: dict[str, float] = {}
        """Instance -> epoch time of its last beat."""

    async def beat(self, instance_id: str, ttl: float) -> None:
        self._known[instance_id] = time.time()
        self._beats.set(instance_id, ttl)

    async def alive(self, instance_id: str) -> bool:
        return instance_id in self._known and not self._beats.expired(instance_id)

    async def instances(self) -> list[str]:
        return sorted(i for i in self._known if not self._beats.expired(i))

    async def departed(self) -> dict[str, float]:
        return {i: at for i, at in self._known.items() if self._beats.expired(i)}

    async def forget(self, instance_id: str) -> None:
        if self._beats.expired(instance_id):
            self._known.pop(instance_id, None)


class MemoryState:
    """All ports, in memory, shareable by several apps in one process."""

    def __init__(self) -> None:
        self.sessions = MemorySessionStore()
        self.events = MemoryEventLog(self.sessions)
        self.commands = MemoryCommandBus()
        self.accounts = MemoryAccounts()
        self.heartbeats = MemoryHeartbeats()
        self.ledger = MemoryLedger(self)

    async def close(self) -> None:
        """Nothing to release: the state lives as long as the objects do."""
