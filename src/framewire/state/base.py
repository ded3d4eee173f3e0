"""Ports to shared state. The domain talks only to these; `memory` and `redis` implement them
and pass one contract test suite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

Record = dict[str, Any]
"""A JSON-able record (a session's, an account's)."""


@dataclass(frozen=True)
class Event:
    """One server event of a session; ids increase within the session, starting at 1."""

    id: int
    event: str
    data: Any


class SessionStore(Protocol):
    async def get(self, session_id: str) -> Record | None: ...

    async def put(self, session_id: str, record: Record, ttl: float | None = None) -> None:
        """Store the record; with `ttl`, it disappears that many seconds later."""
        ...

    async def ids_owned_by(self, instance_id: str) -> list[str]: ...

    async def claim(self, session_id: str, ttl: float) -> bool:
        """True for the first caller only (for `ttl` seconds): the one that settles a session
        whose owner died, when several instances notice at once."""
        ...


class EventLog(Protocol):
    async def append(self, session_id: str, event: str, data: Any) -> int:
        """Add an event and return its id."""
        ...

    async def read(self, session_id: str, after: int, wait: float) -> list[Event]:
        """Events with id > `after`, waiting up to `wait` seconds for one when none is there."""
        ...

    async def expire(self, session_id: str, ttl: float) -> None:
        """Forget the session's events `ttl` seconds from now."""
        ...


@dataclass(frozen=True)
class Delivery:
    """One webhook message for one receiver, as the outbox keeps it until it is delivered."""

    key: str
    """Unique per message and receiver: the outbox's handle on it."""
    message_id: str
    """The `webhook-id`: the same on every attempt, so receivers de-duplicate."""
    url: str
    body: str
    created_at: float
    attempts: int = 0


class Outbox(Protocol):
    """Webhook deliveries waiting to be sent. With several instances on one store, `take` hands
    each due delivery to one of them at a time."""

    async def add(self, delivery: Delivery) -> None: ...

    async def take(self, limit: int, lease: float) -> list[Delivery]:
        """Up to `limit` deliveries due now; each is hidden from every taker for `lease`
        seconds (then due again, in case its taker died mid-attempt)."""
        ...

    async def retry(self, delivery: Delivery, at: float) -> None:
        """Keep `delivery` (its attempts counted) and make it due at epoch time `at`."""
        ...

    async def done(self, delivery: Delivery) -> None:
        """Forget a delivered (or abandoned) delivery."""
        ...


CommandHandler = Callable[[Record], Awaitable[Record]]


class CommandBus(Protocol):
    async def serve(self, instance_id: str, handler: CommandHandler) -> None:
        """Route commands addressed to `instance_id` to `handler` until `stop`."""
        ...

    async def call(self, instance_id: str, command: Record, timeout: float) -> Record:
        """Send a command to the instance that owns a session and await its reply.
        Raises TimeoutError when no reply comes in time."""
        ...

    async def stop(self) -> None: ...


class Accounts(Protocol):
    """Credit balances (generation-seconds) and concurrent-session slots per API key."""

    async def ensure(self, key_id: str, credit: float | None) -> None:
        """Create the account with its starting credit if it does not exist (None: unlimited)."""
        ...

    async def balance(self, key_id: str) -> float | None: ...

    async def charge(self, key_id: str, seconds: float) -> float | None:
        """Take `seconds` from the balance; return what remains (None: unlimited)."""
        ...

    async def acquire_slot(self, key_id: str, limit: int) -> bool: ...

    async def release_slot(self, key_id: str) -> None: ...


class Heartbeats(Protocol):
    """Instances announce they are alive; an owner whose beat expired has died."""

    async def beat(self, instance_id: str, ttl: float) -> None: ...

    async def alive(self, instance_id: str) -> bool: ...

    async def instances(self) -> list[str]:
        """The live instances."""
        ...

    async def departed(self) -> dict[str, float]:
        """Instances that beat once and fell silent, with the time (epoch) of their last beat."""
        ...

    async def forget(self, instance_id: str) -> None:
        """Drop a departed instance (its sessions are settled); a live one stays."""
        ...
