"""The SSE stream of seed 000: replay after Last-Event-ID, then live tail, keep-alives, and
after `generation_ended` a final empty `data:` and the close.

Why not sse-starlette: its framing is what `encode` below does in one line, and what it adds
does not fit here. Its pings come from a timer task of their own per stream, while our
keep-alive is the event store's own bounded wait running out (one task per stream, and a
keep-alive only when nothing else was sent); its disconnect watcher is another task per stream,
where Starlette's StreamingResponse already stops the generator on disconnect; and its
process-wide shutdown hook (`AppStatus`) intercepts uvicorn's signal handling, which the
embedded servers of the tests and of the client share. The stream's shape (a `retry:` first,
then `id`/`event`/`data` frames, comments as keep-alives, the final empty `data:`) is written
out here and asserted by tests/test_events.py."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from framewire import errors
from framewire.sessions.service import SessionService
from framewire.state.base import Event

router = APIRouter(tags=["realtime"])
RECONNECT_MS = 1000
MAX_STREAMS_PER_SESSION = 4
"""Open SSE streams one session may hold on one instance: a page, a reconnect racing its old
stream, and a monitor; more is a client bug or abuse, and each costs a task."""


def encode(event: Event) -> str:
    return f"id: {event.id}\nevent: {event.event}\ndata: {json.dumps(event.data)}\n\n"


async def stream(
    service: SessionService,
    session_id: str,
    after: int,
    keepalive: float,
    open_streams: Counter[str],
) -> AsyncIterator[str]:
    open_streams[session_id] += 1  # here, not in the route: only a started stream counts
    try:
        yield f"retry: {RECONNECT_MS}\n\n"
        async for event in service.follow(session_id, after, keepalive):
            if event is None:
                yield ": keep-alive\n\n"
                continue
            yield encode(event)
            if event.event == "generation_ended":
                yield "data:\n\n"
    finally:
        open_streams[session_id] -= 1
        if open_streams[session_id] <= 0:
            del open_streams[session_id]


def last_event_id(request: Request) -> int:
    last = request.headers.get("last-event-id", "0").strip() or "0"
    if not (last.isascii() and last.isdigit()):
        raise errors.BadRequest("Last-Event-ID must be an event id from this stream")
    return int(last)


@router.get("/v1/realtime/sessions/{session_id}/events")
async def session_events(session_id: str, request: Request) -> StreamingResponse:
    service: SessionService = request.app.state.sessions
    token = request.query_params.get("event_token")
    if not token:
        raise errors.Unauthorized("the event_token query parameter is required")
    expiry = service.token_expiry(token, session_id)
    if expiry is None:
        raise errors.Unauthorized("the event_token is not valid for this session")
    record = await service.find(session_id, None)
    if record.ended:
        raise errors.Gone(f"session {session_id} ended ({record.reason})")
    if expiry <= time.time():
        raise errors.Unauthorized("the event_token has expired")
    after = last_event_id(request)
    keepalive: float = request.app.state.settings.keepalive_interval
    open_streams: Counter[str] = request.app.state.sse_streams
    if open_streams[session_id] >= MAX_STREAMS_PER_SESSION:
        raise errors.TooManyStreams(
            f"session {session_id} already has {MAX_STREAMS_PER_SESSION} open event streams"
        )
    return StreamingResponse(
        stream(service, session_id, after, keepalive, open_streams),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
