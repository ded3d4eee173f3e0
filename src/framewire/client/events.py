"""The server events of a session's SSE stream, as typed values.

Each carries the SSE `id` it came with (ids increase within a session; the client resumes after
the last one it saw). Event names are the API's own: `ice-candidate`, `ice-restart`,
`generation_started`, `generation_tick`, `generation_ended`, `error`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("framewire.client")


@dataclass(frozen=True)
class IceCandidate:
    """A server ICE candidate (RTCIceCandidateInit); `candidate` None is end-of-candidates."""

    id: int | None
    candidate: dict[str, Any] | None


@dataclass(frozen=True)
class IceRestart:
    """The server asks for an ICE restart with these ICE servers."""

    id: int | None
    ice_servers: list[dict[str, Any]]


@dataclass(frozen=True)
class GenerationStarted:
    """The model produces frames: media is flowing."""

    id: int | None


@dataclass(frozen=True)
class GenerationTick:
    """Cumulative generation seconds so far (never decreases)."""

    id: int | None
    seconds: float


@dataclass(frozen=True)
class GenerationEnded:
    """The session is over; the stream closes after this event."""

    id: int | None
    seconds: float
    reason: str


@dataclass(frozen=True)
class ErrorEvent:
    """A server error, as a problem object."""

    id: int | None
    type: str
    title: str
    detail: str
    status: int


ServerEvent = (
    IceCandidate | IceRestart | GenerationStarted | GenerationTick | GenerationEnded | ErrorEvent
)


def parse_event(name: str, data: str, event_id: str | None) -> ServerEvent | None:
    """One SSE event -> a typed event; None for events this client does not know (logged) and
    for the empty `data:` that closes the stream."""
    if not data:
        return None
    ident = int(event_id) if event_id and event_id.isdigit() else None
    body: Any = json.loads(data)
    if not isinstance(body, dict):
        log.warning("ignoring SSE %r event with a non-object body", name)
        return None
    if name == "ice-candidate":
        return IceCandidate(ident, body if body.get("candidate") is not None else None)
    if name == "ice-restart":
        return IceRestart(ident, list(body.get("ice_servers") or []))
    if name == "generation_started":
        return GenerationStarted(ident)
    if name == "generation_tick":
        return GenerationTick(ident, float(body.get("seconds", 0)))
    if name == "generation_ended":
        return GenerationEnded(ident, float(body.get("seconds", 0)), str(body.get("reason", "")))
    if name == "error":
        return ErrorEvent(
            ident,
            str(body.get("type", "about:blank")),
            str(body.get("title", "")),
            str(body.get("detail", "")),
            int(body.get("status", 500)),
        )
    log.debug("ignoring unknown SSE event %r", name)
    return None
