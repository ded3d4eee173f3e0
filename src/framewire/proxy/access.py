"""Access logs without secrets: method, path (as sent, still percent-encoded, so no log
injection), status, duration and client (a bearer token id or an IP). The event_token query
value is redacted; headers (API keys, bearer tokens) are never logged. SSE requests are logged
when their stream ends, with the stream's lifetime."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("framewire.proxy.access")

SECRET_PARAMS = frozenset({"event_token"})
REDACTED = "[redacted]"
CLIENT_STATE = "proxy_client"
"""Key in the request's `scope["state"]` where the gate leaves the client's identity."""


def redact_query(query: str) -> str:
    """The query string with every secret parameter's value replaced."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, REDACTED if k in SECRET_PARAMS else v) for k, v in pairs], safe="[]")


class RedactUrls(logging.Filter):
    """httpx logs every request's URL at INFO: redact the secret parameters in it, so the
    upstream client's own log lines carry no event token either."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


def redact_url(url: httpx.URL) -> httpx.URL:
    return url.copy_with(query=redact_query(url.query.decode("ascii")).encode("ascii") or None)


HTTPX_REDACTION = RedactUrls()


def redact_httpx_logs() -> None:
    """Idempotent: one filter object, and loggers keep a filter only once."""
    logging.getLogger("httpx").addFilter(HTTPX_REDACTION)


class AccessLog:
    """Pure ASGI middleware: sees streamed responses through to their end without buffering."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        state = scope.setdefault("state", {})

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except Exception as exc:  # logged as a 500, answered by the server's error handler
            status = status or 500
            raise exc
        finally:
            query = redact_query(scope.get("query_string", b"").decode("latin-1"))
            client = state.get(CLIENT_STATE) or (scope.get("client") or ("-",))[0]
            log.info(
                "%s %s%s %s %.1fms client=%s",
                scope["method"],
                scope.get("raw_path", b"").decode("latin-1") or scope["path"],
                "?" + query if query else "",
                status or "-",
                (time.perf_counter() - started) * 1000,
                client,
            )
