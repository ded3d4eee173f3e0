"""Ports to shared state. The domain talks only to these; `memory` and `redis` implement them
and pass one contract test suite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

Record = dict[str, Any]
"""A JSON-able record (a session's, an account's)."""


class StateUnavailable(Exception):
    """The shared state cannot be reached (Redis down or timing out). Raised by every port
    method of a networked adapter, so no layer above `state/` knows which store it is."""


class Fenced(Exception):
    """A write by a session's owner was refused: the stored record was settled, or its ownership
    epoch moved on. The writer has lost the session and may only stop its media."""


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

    async def update(self, session_id: str, record: Record) -> None:
        """The owner's write of an active record: stored only while the stored record is active
        and has the same `epoch` as `record` (its fencing token); raises Fenced otherwise."""
        ...

    async def ids_owned_by(self, instance_id: str) -> list[str]: ...


class Ledger(Protocol):
    """Billing, exactly once across instances. Every write is fenced by the session's ownership
    epoch: it applies only while the stored record is active with the writer's `epoch`, and
    the ledger charge and the record are written in one atomic step."""

    async def charge(self, record: Record, seconds: float) -> float | None:
        """Take `seconds` from the key's balance and store `record` (which carries what is now
        charged), in one step. Returns the balance left (None: unlimited); raises Fenced."""
        ...

    async def settle(
        self, record: Record, ttl: float, events: list[tuple[str, Any]]
    ) -> Record | None:
        """End the session in one step: charge the key what the ledger has not yet had for it
        (`record["seconds"]` less the stored record's `charged`; negative when the ticks charged
        more than the rounded total: the ledger then holds exactly `seconds`), release its
        slot, store the final record (epoch + 1, `credits_remaining` filled in) for `ttl`
        seconds, append `events`, and let the session's events expire after `ttl`. Returns the
        final record, or None when fenced: another instance settled it, or its epoch moved on."""
        ...


class EventLog(Protocol):
    async def append(self, session_id: str, event: str, data: Any, epoch: int | None = None) -> int:
        """Add an event and return its id. With `epoch` (an owner's write), only while the
        session's stored record is active with that epoch; raises Fenced otherwise."""
        ...

    async def read(self, session_id: str, after: int, wait: float) -> list[Event]:
        """Events with id > `after`, waiting up to `wait` seconds for one when none is there."""
        ...

    async def expire(self, session_id: str, ttl: float) -> None:
        """Forget the session's events `ttl` seconds from now."""
        ...


CommandHandler = Callable[[Record, bytes], Awaitable[Record]]
"""Answers one command: its JSON-able part and its binary payload (empty if none)."""


class CommandBus(Protocol):
    async def serve(self, instance_id: str, handler: CommandHandler) -> None:
        """Route commands addressed to `instance_id` to `handler` until `stop`."""
        ...

    async def call(
        self, instance_id: str, command: Record, timeout: float, blob: bytes = b""
    ) -> Record:
        """Send a command (and a binary payload, carried as bytes) to the instance that owns a
        session and await its reply. Raises TimeoutError when no reply comes in time."""
        ...

    async def stop(self) -> None: ...


class Accounts(Protocol):
    """Credit balances (generation-seconds) and concurrent-session slots per API key. Balances
    are charged only through the Ledger, fenced by the session being billed."""

    async def ensure(self, key_id: str, credit: float | None) -> None:
        """Create the account with its starting credit if it does not exist (None: unlimited)."""
        ...

    async def balance(self, key_id: str) -> float | None: ...

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


class State(Protocol):
    """All the ports of one shared state (one instance's view of it)."""

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def events(self) -> EventLog: ...

    @property
    def commands(self) -> CommandBus: ...

    @property
    def accounts(self) -> Accounts: ...

    @property
    def heartbeats(self) -> Heartbeats: ...

    @property
    def ledger(self) -> Ledger: ...

    async def close(self) -> None: ...
