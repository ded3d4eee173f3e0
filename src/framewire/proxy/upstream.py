"""The pass-through: one upstream request per client request, over a shared connection pool.

What crosses, and why:
- request headers: only `Content-Type`, `Content-Length`, `If-Match`, `Last-Event-ID`, `Accept`,
  plus the injected `x-api-key` (the client's own credentials stay at the proxy); the body is
  streamed through, never held whole, and capped at the upstream's largest body;
- response headers: `Content-Type`, `ETag`, `Location` (re-expressed in the proxy's URL space
  when it points into the upstream), `Retry-After`, `Cache-Control`, and WHIP/WHEP's `Link`
  (ICE servers, the event stream: relative paths) and `Accept-Post`;
- response bodies: SSE (`text/event-stream`) is relayed chunk by chunk as it arrives; every other
  body is small control JSON, read whole so a broken upstream becomes a clean 502, and passed on
  byte for byte (problem+json, 204s) — except that absolute URLs into the upstream inside
  `application/json` are rewritten to the proxy's, so end users only ever see the platform.
Upstream credentials (the API key, a URL's user:password) never reach a response or a log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from urllib.parse import unquote

import anyio
import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from framewire import errors
from framewire.proxy.errors import UpstreamTimeout, UpstreamUnreachable

log = logging.getLogger("framewire.proxy")

REQUEST_HEADERS = ("content-type", "content-length", "if-match", "last-event-id", "accept")
RESPONSE_HEADERS = (
    "content-type", "etag", "location", "retry-after", "cache-control", "link", "accept-post"
)  # fmt: skip
EVENT_STREAM = "text/event-stream"
JSON = "application/json"
CLIENT_CLOSED = 499
"""nginx's "client closed request": the client left before its body was complete."""
SSE_IDLE_TIMEOUT = 60.0
"""Seconds an event stream may stay silent: upstreams send keep-alives at least every 15 s
(framewire's default keep-alive interval), so four missed ones mean the stream is dead and the
client should reconnect."""


class UpstreamURL:
    """The upstream's base URL split into what may be shown (`base`, used in logs and for
    rewriting) and what may not (`auth`, from a `user:password@` part)."""

    def __init__(self, url: str) -> None:
        parsed = httpx.URL(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("the upstream must be an http:// or https:// URL with a host")
        if parsed.query or parsed.fragment:
            raise ValueError("the upstream URL must not carry a query or a fragment")
        self.auth = (
            httpx.BasicAuth(unquote(parsed.username), unquote(parsed.password))
            if parsed.username or parsed.password
            else None
        )
        clean = parsed.copy_with(username=None, password=None)
        self.base = str(clean).rstrip("/")
        self.origin = (clean.scheme, clean.host, clean.port)
        self.prefix = clean.path.rstrip("/")
        self._in_json = re.compile(re.escape(self.base).encode() + rb'(?=[/"?#])')

    def relative(self, url: httpx.URL) -> str | None:
        """For an absolute URL into the upstream: its path and query below the base."""
        if (url.scheme, url.host, url.port) != self.origin:
            return None
        path = url.path
        if self.prefix and not (path == self.prefix or path.startswith(self.prefix + "/")):
            return None
        rest = path[len(self.prefix) :] or "/"
        return rest + ("?" + url.query.decode("ascii") if url.query else "")

    def rewrite_location(self, location: str, requested: httpx.URL, proxy_base: str) -> str:
        """Location as the client must see it: a URL into the upstream becomes one into the
        proxy (absolute stays absolute); anything else is left as it is."""
        resolved = requested.join(location)
        rest = self.relative(resolved)
        if rest is None:
            return location
        return proxy_base + rest if httpx.URL(location).is_absolute_url else rest

    def rewrite_json(self, body: bytes, proxy_base: str) -> bytes:
        return self._in_json.sub(proxy_base.encode(), body)


def has_dot_segment(raw_path: str) -> bool:
    """`.`/`..` segments (also percent-encoded) would let a path escape the proxied prefixes
    once the upstream client normalises it."""
    return any(seg in (".", "..") for seg in unquote(raw_path).split("/"))


class Upstream:
    def __init__(self, url: str, api_key: str, timeout: float, body_limit: int) -> None:
        if not api_key:
            raise ValueError("the upstream API key is empty")
        self.url = UpstreamURL(url)
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout)
        self._events_timeout = httpx.Timeout(timeout, read=SSE_IDLE_TIMEOUT)
        self._body_limit = body_limit
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        """One pool for every request this process forwards. Unbounded connections: each open
        SSE stream holds one, and they must never starve control requests."""
        self._client = httpx.AsyncClient(
            auth=self.url.auth,
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
            follow_redirects=False,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def forward(self, request: Request, events: bool) -> Response:
        """Send `request` upstream and answer with what comes back; `events` marks the SSE
        route (long read timeout, streamed answer)."""
        assert self._client is not None, "the proxy app's lifespan opens the upstream pool"
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        if has_dot_segment(raw_path):
            raise errors.BadRequest("the path must not contain '.' or '..' segments")
        query = request.scope.get("query_string", b"").decode("latin-1")
        target = self.url.base + raw_path + ("?" + query if query else "")
        outgoing = self._client.build_request(
            request.method,
            target,
            headers=self._request_headers(request),
            content=self._body(request) if has_body(request) else None,
            timeout=self._events_timeout if events else self._timeout,
        )
        try:
            answer = await self._client.send(outgoing, stream=True)
        except ClientDisconnect:  # mid-upload: nobody to answer; the access log shows 499
            return Response(status_code=CLIENT_CLOSED)
        except httpx.TimeoutException as exc:
            raise self._timed_out(request, exc) from None
        except httpx.TransportError as exc:
            raise self._unreachable(request, exc) from None
        headers = self._response_headers(answer, request)
        if answer.headers.get("content-type", "").startswith(EVENT_STREAM):
            headers["X-Accel-Buffering"] = "no"  # a buffering reverse proxy in front: don't
            return StreamingResponse(self._relay(answer), answer.status_code, headers)
        try:
            body = await answer.aread()
        except httpx.TimeoutException as exc:
            raise self._timed_out(request, exc) from None
        except httpx.TransportError as exc:
            raise self._unreachable(request, exc) from None
        finally:
            await answer.aclose()
        if media_type(answer.headers.get("content-type")) == JSON:
            body = self.url.rewrite_json(body, proxy_base(request))
        return Response(body, answer.status_code, headers)

    def _request_headers(self, request: Request) -> dict[str, str]:
        headers = {k: v for k in REQUEST_HEADERS if (v := request.headers.get(k)) is not None}
        headers["x-api-key"] = self._api_key
        headers["accept-encoding"] = "identity"  # bodies pass through as the upstream wrote them
        return headers

    def _response_headers(self, answer: httpx.Response, request: Request) -> dict[str, str]:
        headers = {k: v for k in RESPONSE_HEADERS if (v := answer.headers.get(k)) is not None}
        if "location" in headers:
            headers["location"] = self.url.rewrite_location(
                headers["location"], answer.request.url, proxy_base(request)
            )
        return headers

    async def _body(self, request: Request) -> AsyncIterator[bytes]:
        """The client's body, chunk by chunk as it arrives, capped at `body_limit`."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._body_limit:
            raise errors.ContentTooLarge(f"request body exceeds {self._body_limit} bytes")
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._body_limit:
                raise errors.ContentTooLarge(f"request body exceeds {self._body_limit} bytes")
            if chunk:
                yield chunk

    async def _relay(self, answer: httpx.Response) -> AsyncIterator[bytes]:
        """An event stream, each chunk passed on the moment it arrives. When the upstream
        closes, or breaks off, the client's stream ends cleanly: EventSource then reconnects
        with Last-Event-ID and gets a fresh answer (replay, or a 502 problem)."""
        try:
            async for chunk in answer.aiter_raw():
                yield chunk
        except httpx.TransportError as exc:
            log.warning(
                "upstream event stream %s broke off (%s); ending the client's stream",
                self.url.base,
                type(exc).__name__,
            )
        finally:
            with anyio.CancelScope(shield=True):  # also when the client went away
                await answer.aclose()

    def _unreachable(self, request: Request, exc: httpx.TransportError) -> errors.FramewireError:
        log.warning(
            "upstream %s failed on %s %s: %s",
            self.url.base,
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return UpstreamUnreachable("the upstream service could not be reached; try again")

    def _timed_out(self, request: Request, exc: httpx.TimeoutException) -> errors.FramewireError:
        log.warning(
            "upstream %s timed out on %s %s: %s",
            self.url.base,
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return UpstreamTimeout("the upstream service did not answer in time; try again")


def has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length != "0") or "transfer-encoding" in request.headers


def media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def proxy_base(request: Request) -> str:
    """This proxy's own base URL as the client reached it (scheme/host, honouring trusted
    forwarded headers and any root path)."""
    return str(request.base_url).rstrip("/")
