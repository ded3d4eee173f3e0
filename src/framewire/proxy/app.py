"""The proxy's app factory: proxied routes behind the proxy's own gate, the web page, CORS and
access logs. Nothing is kept per session, so any number of proxy processes can serve behind a
load balancer (rate-limit buckets are per process)."""

from __future__ import annotations

import contextlib
import math
import re
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware

from framewire import __version__
from framewire.api import problems
from framewire.api.bodies import IMAGE_BODY_LIMIT
from framewire.api.web import web_routes
from framewire.proxy.access import CLIENT_STATE, AccessLog, redact_httpx_logs
from framewire.proxy.auth import BearerTokens
from framewire.proxy.errors import BearerRequired, RateLimited
from framewire.proxy.ratelimit import RateLimiter
from framewire.proxy.upstream import Upstream

PROXIED = (
    "/v1/realtime/{rest:path}",
    "/v1/whip/{rest:path}",
    "/v1/models",
    "/v1/webrtc/{rest:path}",
    "/v1/legs",
    "/v1/legs/{rest:path}",
)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
EVENTS_PATH = re.compile(r"^/v1/realtime/sessions/[^/]+/events$")
"""The SSE route: authorised upstream by its event_token, and opened by browsers' EventSource,
which cannot send an Authorization header, so the proxy's bearer auth does not apply."""
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "If-Match", "Last-Event-ID", "Accept"]
CORS_EXPOSED = ["ETag", "Location", "Retry-After", "Link", "Accept-Post"]


class Gate:
    """The proxy's own layer before anything goes upstream: who the client is, whether it is
    within its rate, and whether it may use the route."""

    def __init__(self, tokens: BearerTokens, limiter: RateLimiter | None) -> None:
        self.tokens, self.limiter = tokens, limiter

    def admit(self, request: Request, events: bool) -> None:
        token = self.tokens.identify(request.headers.get("authorization"))
        client = token or (request.client.host if request.client else "unknown")
        request.scope.setdefault("state", {})[CLIENT_STATE] = client  # for the access log
        if self.limiter is not None:
            wait = self.limiter.take(client)
            if wait > 0:
                raise RateLimited(
                    f"more than {self.limiter.rate:g} requests per second; retry later",
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                )
        if self.tokens.enabled and token is None and not events:
            raise BearerRequired("send 'Authorization: Bearer <token>' with a valid token")


def create_proxy_app(
    upstream: str,
    api_key: str,
    *,
    tokens: Iterable[str] = (),
    rate_limit: float | None = None,
    burst: int | None = None,
    cors_origins: Sequence[str] = (),
    timeout: float = 30.0,
    body_limit: int = IMAGE_BODY_LIMIT,
) -> FastAPI:
    """A proxy in front of `upstream` (any server with the realtime API; `user:password@` in the
    URL becomes HTTP basic auth), sending `api_key` as its x-api-key. `tokens`: end users' bearer
    tokens (none: auth off). `rate_limit`: requests per second per client, with `burst`
    (default: twice the rate, at least 1). Raises ValueError on a bad URL or limit."""
    forwarder = Upstream(upstream, api_key, timeout, body_limit)
    redact_httpx_logs()
    gate = Gate(BearerTokens(tokens), limiter_of(rate_limit, burst))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await forwarder.open()
        try:
            yield
        finally:
            await forwarder.close()

    app = FastAPI(
        title="framewire proxy",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.instance_id = "proxy-" + secrets.token_hex(4)
    app.state.upstream = forwarder
    problems.install(app)

    async def proxied(request: Request) -> Response:
        events = request.method == "GET" and EVENTS_PATH.match(request.url.path) is not None
        gate.admit(request, events)
        return await forwarder.forward(request, events)

    for path in PROXIED:
        app.add_api_route(path, proxied, methods=METHODS, include_in_schema=False)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """For the load balancer: this process is up (the upstream has its own /healthz)."""
        return JSONResponse({"status": "ok", "instance_id": app.state.instance_id})

    app.router.routes.extend(web_routes(proxied=True))
    if cors_origins:
        allow_cors(app, cors_origins)
    app.add_middleware(AccessLog)
    return app


def limiter_of(rate_limit: float | None, burst: int | None) -> RateLimiter | None:
    """Per-client rate limit; `burst` defaults to twice the rate, at least 1."""
    if rate_limit is None:
        return None
    return RateLimiter(
        rate_limit, burst if burst is not None else max(1, math.ceil(2 * rate_limit))
    )


def allow_cors(app: FastAPI, origins: Sequence[str]) -> None:
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=METHODS,
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED,
        max_age=3600,
    )
