"""`GET /v1/realtime/ice-servers`: the ICE servers a client needs before its first offer.

A relay-only client (`iceTransportPolicy: "relay"`) cannot make an offer without TURN
credentials, and the create response that carries a session's credentials comes after the
offer. This route hands out the configured servers plus the TURN relay with fresh credentials
scoped to the caller's key, valid for as long as a session may last."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from framewire.api.auth import require_key
from framewire.api.schemas import PROBLEMS
from framewire.media.legs import Legs

router = APIRouter(tags=["realtime"])


class IceServers(BaseModel):
    ice_servers: list[dict[str, Any]]


@router.get("/v1/realtime/ice-servers", response_model=IceServers, responses=PROBLEMS)
async def ice_servers(
    request: Request, key: Annotated[str, Depends(require_key)]
) -> dict[str, Any]:
    """RTCIceServer dicts (`urls`, `username`, `credential`) for an RTCPeerConnection."""
    legs: Legs = request.app.state.legs
    return {"ice_servers": legs.ice.for_client(key)}
