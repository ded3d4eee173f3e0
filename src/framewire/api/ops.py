"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

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
    refusal = service.admission.refusal()
    ready = refusal is None
    return JSONResponse(
        {"status": "ready" if ready else "full", "reason": refusal, **service.admission.report()},
        status_code=200 if ready else 503,
        headers={} if ready else {"Retry-After": RETRY_AFTER},
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
        "framewire_frames_late_total": "Inbound frames gone stale before the model took them",
        "framewire_capacity_sessions": "Sessions this instance admits (measured cost; -1: none)",
        "framewire_core_per_session": "CPU cores one streaming session costs (measured)",
        "framewire_loop_lag_seconds": "Median event-loop lag over the admission window",
        "framewire_overloaded": "1 while live signals shed new sessions",
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
    made["framewire_frames_late_total"].labels(instance).set(sum(x.stats.frames_late for x in legs))
    admission = service.admission
    made["framewire_capacity_sessions"].labels(instance).set(admission.capacity() or -1)
    made["framewire_core_per_session"].labels(instance).set(admission.session_cost().cores or 0.0)
    made["framewire_loop_lag_seconds"].labels(instance).set(admission.loop_lag())
    made["framewire_overloaded"].labels(instance).set(int(admission.overload() is not None))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
