"""Every error leaves as RFC 7807 problem+json (the leg API: `{error, instance_id}`).
The one table from the errors of the layers below (domain, media, policy, state, body
validation) to problems, with their Retry-After, is here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from framewire import errors
from framewire.api import schemas
from framewire.media.leg import LegFailed
from framewire.media.legs import CapacityFull
from framewire.models.registry import UnknownModel
from framewire.policy.base import ContentRejected, InvalidImage
from framewire.rtc.restart import RestartConflict
from framewire.rtc.signaling import InvalidCandidate, InvalidOffer
from framewire.rtc.sockets import PortsExhausted
from framewire.state.base import StateUnavailable

log = logging.getLogger("framewire.api")

PROBLEM_JSON = "application/problem+json"
LEG_PATHS = ("/v1/legs", "/v1/webrtc")

Translate = Callable[[Any, Request], errors.FramewireError]
TABLE: dict[type[Exception], Translate] = {
    InvalidOffer: lambda exc, _: errors.InvalidSdp(str(exc)),
    InvalidCandidate: lambda exc, _: errors.InvalidCandidates(str(exc)),
    RestartConflict: lambda exc, _: errors.Conflict(str(exc)),
    LegFailed: lambda exc, _: errors.FramewireError(str(exc)),
    CapacityFull: lambda exc, _: errors.ServiceUnavailable(str(exc)),
    PortsExhausted: lambda exc, _: errors.ServiceUnavailable(f"no media port is free: {exc}"),
    UnknownModel: lambda exc, request: errors.UnsupportedModel(
        f"{exc}; available: {', '.join(request.app.state.sessions.model_ids())}"
    ),
    ContentRejected: lambda exc, _: errors.ModerationRejected(exc.detail),
    InvalidImage: lambda exc, _: errors.InvalidImage(exc.detail),
    StateUnavailable: lambda exc, _: errors.ServiceUnavailable(
        "shared state (Redis) is unavailable; try again"
    ),
    ValidationError: lambda exc, _: invalid_body(exc),
}
"""What each error of a layer below becomes; the domain's own errors pass as they are."""

RETRY_AFTER: dict[type[Exception], str] = {
    CapacityFull: "5",
    PortsExhausted: "5",
    errors.TooManySessions: "10",
    errors.TooManyStreams: "5",
    errors.TooManyViewers: "10",
    errors.OwnerUnreachable: "1",
    StateUnavailable: "2",
}
"""Seconds a client should wait before trying again, by the error it met."""

BODY_PROBLEMS: dict[str, type[errors.FramewireError]] = {
    schemas.INVALID_SDP: errors.InvalidSdp,
    schemas.UNPROCESSABLE: errors.Unprocessable,
    schemas.TOO_LARGE: errors.ContentTooLarge,
}


def invalid_body(exc: ValidationError) -> errors.FramewireError:
    """A body's first validation error, as the problem the API answers for it."""
    first = exc.errors()[0]
    kind = BODY_PROBLEMS.get(first["type"])
    if kind is not None:
        return kind(first["msg"])
    where = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "missing":
        return errors.BadRequest(f"'{where}' is required")
    return errors.BadRequest(f"'{where}': {first['msg']}")


def as_problem(exc: Exception, request: Request) -> errors.FramewireError:
    """The domain error for `exc`, with its Retry-After."""
    error = exc if isinstance(exc, errors.FramewireError) else None
    for kind in type(exc).__mro__:
        if error is None and kind in TABLE:
            error = TABLE[kind](exc, request)
    if error is None:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return errors.FramewireError("an internal error occurred")
    for kind in type(exc).__mro__:
        if kind in RETRY_AFTER:
            error.headers.setdefault("Retry-After", RETRY_AFTER[kind])
    return error


def problem(error: errors.FramewireError, request: Request) -> JSONResponse:
    if request.url.path.startswith(LEG_PATHS):
        return JSONResponse(
            {"error": error.detail, "instance_id": request.app.state.instance_id},
            status_code=error.status,
            headers=error.headers,
        )
    return JSONResponse(
        problem_body(error, request.url.path),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_JSON,
    )


def problem_body(error: errors.FramewireError, instance: str) -> dict[str, Any]:
    return {
        "type": error.type,
        "title": error.title,
        "detail": error.detail,
        "status": error.status,
        "instance": instance,
    }


def http_error(exc: StarletteHTTPException, request: Request) -> errors.FramewireError:
    if exc.status_code == 404:
        error: errors.FramewireError = errors.NotFound(
            f"no route {request.method} {request.url.path}"
        )
        error.title = "Not found"
    elif exc.status_code == 405:
        error = errors.MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    else:
        error = errors.FramewireError(str(exc.detail))
        error.status = exc.status_code
        error.title = "HTTP error"
    return error


def install(app: FastAPI) -> None:
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, StateUnavailable):
            log.error("shared state unavailable on %s %s: %r", request.method, request.url, exc)
        error = as_problem(exc, request)
        if error.status >= 500 and "Retry-After" not in error.headers:
            log.error("request failed: %s", error.detail)
        return problem(error, request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(http_error(exc, request), request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem(errors.BadRequest(f"{where}: {first.get('msg', 'invalid')}"), request)

    async def on_gone_client(request: Request, exc: Exception) -> JSONResponse:
        # The client hung up mid-body: nobody reads this answer, and nothing failed here.
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return problem(
            errors.BadRequest("the client disconnected before sending the body"), request
        )

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ClientDisconnect, on_gone_client)
    handled: list[type[Exception]] = [errors.FramewireError, *TABLE]
    for kind in handled:
        app.add_exception_handler(kind, on_error)
    app.add_exception_handler(Exception, on_error)  # a bug: 500, logged with its traceback
