"""The session record: everything any instance needs to answer for a session, JSON-able."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def iso(ts: float | None) -> str | None:
    """An epoch timestamp as ISO 8601 UTC with milliseconds and a `Z`."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class SessionRecord:
    session_id: str
    key_id: str
    model: str
    owner: str
    leg_id: str
    etag: str
    expires_at: float
    remote_ufrag: str | None = None
    prompt: str | None = None
    enhanced_prompt: str | None = None
    enhance_prompt: bool = True
    has_image: bool = False
    status: str = "active"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    reason: str | None = None
    seconds: float = 0.0
    credits_charged: float = 0.0
    credits_remaining: float | None = None
    charged: float = 0.0
    """Generation seconds the owner has charged to the ledger so far (saved on each charge)."""
    epoch: int = 1
    """The ownership epoch, the fencing token of every billing write: a write applies only while
    the stored record is active with the writer's epoch; the settlement moves it on."""
    viewer_seconds: float = 0.0
    """Seconds WHEP viewers watched, summed over viewers (not billed as generation)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        return cls(**data)

    @property
    def ended(self) -> bool:
        return self.status == "ended"

    def generation_seconds(self, now: float | None = None) -> float:
        """Seconds of generation so far (or in all, once ended)."""
        if self.started_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else (now or time.time())
        return round(max(0.0, end - self.started_at), 3)

    def summary(self) -> dict[str, Any]:
        """The billing summary, as DELETE returns it; the balance left is rounded to ms."""
        remaining = self.credits_remaining
        return {
            "session_id": self.session_id,
            "model": self.model,
            "status": self.status,
            "reason": self.reason,
            "seconds": self.seconds if self.ended else self.generation_seconds(),
            "credits_charged": self.credits_charged,
            "credits_remaining": None if remaining is None else round(max(0.0, remaining), 3),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "viewer_seconds": self.viewer_seconds,
        }
