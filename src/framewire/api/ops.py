"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from framewire.metrics import Metrics
from framewire.sessions.admission import RETRY_AFTER
from framewire.sessions.service import SessionService

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "instance_id": request.app.state.instance_id})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready while this instance would admit one more session; the body reports its load
    (framewire.sessions.admission)."""
    service: SessionService = request.app.state.sessions
    refusal = "draining" if service.draining else service.admission.refusal()
    ready = refusal is None
    status = "ready" if ready else "draining" if service.draining else "full"
    return JSONResponse(
        {"status": status, "reason": refusal, **service.admission.report()},
        status_code=200 if ready else 503,
        headers={} if ready else {"Retry-After": RETRY_AFTER},
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """The instance's collectors, registered once when the app was built (counters never go
    down when a session ends)."""
    collected: Metrics = request.app.state.metrics
    return Response(generate_latest(collected.registry), media_type=CONTENT_TYPE_LATEST)
