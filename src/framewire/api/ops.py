"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from framewire.sessions.service import SessionService

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "instance_id": request.app.state.instance_id})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    service: SessionService = request.app.state.sessions
    free = service.free_capacity()
    ready = free > 0
    return JSONResponse(
        {"status": "ready" if ready else "full", "free_sessions": free},
        status_code=200 if ready else 503,
        headers={} if ready else {"Retry-After": "5"},
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    service: SessionService = request.app.state.sessions
    registry = CollectorRegistry()
    labels = ["instance_id"]
    instance = request.app.state.instance_id
    gauges = {
        "framewire_sessions_active": "Sessions this instance owns",
        "framewire_legs_open": "WebRTC legs open on this instance",
        "framewire_frames_in_total": "Inbound video frames over open legs",
        "framewire_frames_out_total": "Model frames sent over open legs",
        "framewire_frames_dropped_total": "Inbound frames dropped (latest-frame-wins)",
    }
    made = {name: Gauge(name, doc, labels, registry=registry) for name, doc in gauges.items()}
    legs = service.open_legs()
    made["framewire_sessions_active"].labels(instance).set(service.live_count())
    made["framewire_legs_open"].labels(instance).set(len(legs))
    made["framewire_frames_in_total"].labels(instance).set(sum(x.stats.frames_in for x in legs))
    made["framewire_frames_out_total"].labels(instance).set(sum(x.stats.frames_out for x in legs))
    made["framewire_frames_dropped_total"].labels(instance).set(
        sum(x.stats.frames_dropped for x in legs)
    )
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
