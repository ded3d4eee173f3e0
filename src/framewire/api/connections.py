"""HTTP connections with bounds, so slow or stuck clients cost a socket for seconds, not forever:
uvicorn's httptools protocol plus three timers.

- headers: a connection must deliver a request's headers within `header_timeout` of opening
  (or of the request's first byte, on keep-alive): slowloris, idle connects;
- body: the body must be complete within `body_timeout` of the headers;
- write: a peer that stops reading (its TCP window full, our buffer past its high-water mark)
  for `write_timeout` is cut off: a stuck SSE reader no longer holds its stream.

An expired request that has no response yet gets a 408 problem; then the connection closes."""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from framewire import errors
from framewire.api.problems import PROBLEM_JSON, problem_body
from framewire.config import Settings


class BoundedHttp(HttpToolsProtocol):
    header_timeout = 10.0
    body_timeout = 30.0
    write_timeout = 30.0
    _request_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._write_timer is not None:
            self._write_timer.cancel()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout, "headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout, "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_timeout, self.transport.abort)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._request_timer = self.loop.call_later(seconds, self._expire, what, seconds)

    def _disarm(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _expire(self, what: str, seconds: float) -> None:
        self._request_timer = None
        if self.transport.is_closing():
            return
        if what == "headers" or self.cycle is None or not self.cycle.response_started:
            error = errors.RequestTimeout(f"the request {what} took longer than {seconds:g} s")
            self.transport.write(timeout_response(error))
        self.transport.close()


def timeout_response(error: errors.FramewireError) -> bytes:
    body = json.dumps(problem_body(error, "")).encode()
    head = (
        f"HTTP/1.1 {error.status} Request Timeout\r\ncontent-type: {PROBLEM_JSON}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def bounded_http(settings: Settings) -> type[BoundedHttp]:
    """The protocol class to hand uvicorn (`http=`), with these settings' timeouts."""
    return type(
        "BoundedHttp",
        (BoundedHttp,),
        {
            "header_timeout": settings.http_header_timeout,
            "body_timeout": settings.http_body_timeout,
            "write_timeout": settings.http_write_timeout,
        },
    )
