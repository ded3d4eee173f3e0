"""Sessions whose owner died: whichever instance notices first settles them (the settlement is
atomic and fenced, so racing survivors and a waking owner settle them once)."""

from __future__ import annotations

import time

from framewire.sessions.ports import Ports
from framewire.sessions.record import SessionRecord
from framewire.sessions.settle import settle


class OrphanReaper:
    def __init__(self, instance_id: str, ports: Ports, retention: float) -> None:
        self.instance_id = instance_id
        self.ports = ports
        self.retention = retention

    async def sweep(self) -> None:
        """End the sessions of every instance whose heartbeat expired, then forget it."""
        for instance in await self.ports.heartbeats.departed():
            if instance == self.instance_id:
                continue
            await self.end_orphans_of(instance)
            await self.ports.heartbeats.forget(instance)

    async def end_orphans_of(self, instance: str) -> None:
        """End the sessions recorded as `instance`'s that are still active; it holds none."""
        for session_id in await self.ports.sessions.ids_owned_by(instance):
            data = await self.ports.sessions.get(session_id)
            if data is not None and data["status"] != "ended":
                await self.settle(SessionRecord.from_dict(data))

    async def check(self, record: SessionRecord) -> SessionRecord:
        """`record`, settled here first if its owner (another instance) is dead."""
        if record.ended or record.owner == self.instance_id:
            return record
        if await self.ports.heartbeats.alive(record.owner):
            return record
        return await self.settle(record)

    async def settle(self, record: SessionRecord) -> SessionRecord:
        """Settle a dead owner's session with reason `error`. It ends at the owner's last
        heartbeat, or later if the owner had charged or shown (in a tick) more; the ledger gets
        what the owner had not charged. With no heartbeat to go by, it ends at that last proof
        of generation."""
        died_at = (await self.ports.heartbeats.departed()).get(record.owner, 0.0)
        if record.started_at is None:
            floor = record.created_at
        else:
            shown = await self._last_tick(record.session_id)
            floor = record.started_at + max(record.charged, shown)
        ended_at = min(time.time(), max(died_at, floor))
        settled = await settle(self.ports.ledger, record, "error", ended_at, self.retention)
        if settled is not None:
            return settled
        stored = await self.ports.sessions.get(record.session_id)  # settled elsewhere
        return SessionRecord.from_dict(stored) if stored is not None else record

    async def _last_tick(self, session_id: str) -> float:
        """The largest `generation_tick` the session's clients were shown."""
        events = await self.ports.events.read(session_id, 0, wait=0)
        ticks = [float(e.data["seconds"]) for e in events if e.event == "generation_tick"]
        return max(ticks, default=0.0)
