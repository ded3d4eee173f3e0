"""Every error leaves as RFC 7807 problem+json (the leg API: seed 002's `{error, instance_id}`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from framewire import errors

log = logging.getLogger("framewire.api")

PROBLEM_JSON = "application/problem+json"
LEG_PATHS = ("/v1/legs", "/v1/webrtc")


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


def install(app: FastAPI) -> None:
    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.FramewireError)
        if exc.status >= 500 and not exc.headers:
            log.error("request failed: %s", exc.detail)
        return problem(exc, request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error: errors.FramewireError
        if exc.status_code == 404:
            error = errors.NotFound(f"no route {request.method} {request.url.path}")
            error.title = "Not found"
        elif exc.status_code == 405:
            error = errors.MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}"
            )
        else:
            error = errors.FramewireError(str(exc.detail))
            error.status = exc.status_code
            error.title = "HTTP error"
        return problem(error, request)

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

    async def on_state_down(request: Request, exc: Exception) -> JSONResponse:
        log.error("shared state unavailable on %s %s: %r", request.method, request.url.path, exc)
        return problem(
            errors.ServiceUnavailable(
                "shared state (Redis) is unavailable; try again", headers={"Retry-After": "2"}
            ),
            request,
        )

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(errors.FramewireError("an internal error occurred"), request)

    app.add_exception_handler(errors.FramewireError, on_domain)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ClientDisconnect, on_gone_client)
    app.add_exception_handler(RedisError, on_state_down)
    app.add_exception_handler(Exception, on_crash)
