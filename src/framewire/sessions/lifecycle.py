"""What a session's life tells the outside world: a log line, the Prometheus counters and the
usage webhooks, at creation, at its first generated frame and at its end."""

from __future__ import annotations

import logging
from typing import Any

from framewire.metrics import Metrics
from framewire.sessions.record import SessionRecord, iso
from framewire.sessions.webhooks import Usage

log = logging.getLogger("framewire.sessions")


def log_fields(record: SessionRecord) -> dict[str, str]:
    """The structured-log fields of a session (`key_id` is a digest, never the key)."""
    return {"session_id": record.session_id, "leg_id": record.leg_id, "key_id": record.key_id}


class Lifecycle:
    def __init__(self, usage: Usage | None = None, metrics: Metrics | None = None) -> None:
        self._usage = usage
        self.metrics = metrics

    async def _emit(self, event: str, data: dict[str, Any]) -> None:
        if self._usage is not None:
            await self._usage.emit(event, data)

    async def created(self, record: SessionRecord) -> None:
        log.info("session created (model %s)", record.model, extra=log_fields(record))
        if self.metrics is not None:
            self.metrics.session_created(record.model)
        await self._emit(
            "session.created",
            {
                "session_id": record.session_id,
                "key_id": record.key_id,
                "model": record.model,
                "created_at": iso(record.created_at),
                "expires_at": iso(record.expires_at),
            },
        )

    async def started(self, record: SessionRecord) -> None:
        log.info("generation started", extra=log_fields(record))
        await self._emit(
            "session.generation_started",
            {
                "session_id": record.session_id,
                "key_id": record.key_id,
                "model": record.model,
                "started_at": iso(record.started_at),
            },
        )

    async def ended(self, record: SessionRecord) -> None:
        """`session.ended`'s data is the billing summary exactly as DELETE returns it, plus the
        key id the seconds were charged to."""
        log.info(
            "session ended (%s, %.3f s)", record.reason, record.seconds, extra=log_fields(record)
        )
        if self.metrics is not None:
            self.metrics.session_ended(record.model, record.reason or "unknown")
        await self._emit("session.ended", {**record.summary(), "key_id": record.key_id})
