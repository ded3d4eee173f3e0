"""The one settlement every session's end goes through, on its owner or, when the owner died, on
whichever survivor gets there first."""

from __future__ import annotations

from typing import Any

from framewire import errors
from framewire.sessions.record import SessionRecord
from framewire.state.base import Ledger

END_PROBLEMS = {
    reason: {"type": errors.PROBLEM_BASE + slug, "title": title, "detail": detail, "status": 500}
    for reason, slug, title, detail in (
        ("error", "generation-failed", "Generation failed", "the session ended on a server fault"),
        (
            "moderation_violation",
            "moderation-violation",
            "Stream rejected by moderation",
            "the video stream violated the content policy",
        ),
    )
}
"""Ends that are the server's verdict also send an `error` event (a problem) before the end."""


async def settle(
    ledger: Ledger, record: SessionRecord, reason: str, ended_at: float, retention: float
) -> SessionRecord | None:
    """End `record` at `ended_at` for `reason`, in one atomic, fenced step: the ledger gets the
    generation seconds it has not been charged yet, the key's slot is freed, the final record
    (kept `retention` seconds) and the end events (`error` for a server verdict, then
    `generation_ended`) are written. Returns the final record, or None when the writer was
    fenced: the session was settled elsewhere (or its epoch moved on), and nothing was written.
    `record` itself is not changed."""
    final = SessionRecord.from_dict(record.to_dict())
    final.status, final.reason, final.ended_at = "ended", reason, ended_at
    final.seconds = final.generation_seconds()
    final.charged = final.credits_charged = final.seconds
    events: list[tuple[str, Any]] = []
    if reason in END_PROBLEMS:
        events.append(("error", END_PROBLEMS[reason]))
    events.append(("generation_ended", {"seconds": final.seconds, "reason": reason}))
    settled = await ledger.settle(final.to_dict(), retention, events)
    return None if settled is None else SessionRecord.from_dict(settled)
