"""`GET /v1/models`: the registry, so clients (the web page's picker) can list what runs here."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from framewire.sessions.service import SessionService

router = APIRouter(tags=["models"])


@router.get("/v1/models")
async def list_models(request: Request) -> JSONResponse:
    service: SessionService = request.app.state.sessions
    return JSONResponse({"models": [spec.public() for spec in service.models()]})
