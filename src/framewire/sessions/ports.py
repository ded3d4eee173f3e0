"""The state ports and limits the session services run on."""

from __future__ import annotations

from dataclasses import dataclass

from framewire.state.base import Accounts, CommandBus, EventLog, Heartbeats, Ledger, SessionStore


@dataclass
class Ports:
    sessions: SessionStore
    events: EventLog
    commands: CommandBus
    accounts: Accounts
    heartbeats: Heartbeats
    ledger: Ledger


@dataclass
class Limits:
    max_duration: float
    key_concurrency: int
    tick_interval: float
    inactivity_timeout: float
    retention: float
