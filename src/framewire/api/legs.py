"""Seed 002's leg API: the media layer over HTTP, one WebRTC leg per SDP offer. The legs' life
is `sessions.barelegs`'; this module is its HTTP face.

Every response carries this instance's `instance_id`; errors are `{error, instance_id}`
(problems.py renders them for these paths). Decisions the seed leaves open:
- The body of `POST /v1/webrtc/offer` is `{sdp, type?, model?, prompt?, enhance_prompt?}`:
  `sdp` is the SDP string, so `JSON.stringify(pc.localDescription)` is a valid body. The model
  defaults to `passthrough`; an unknown model is 422, a prompt is moderated and enhanced as for
  sessions (422 when rejected). The answer comes back as soon as it exists, with host
  candidates; later ones are drained by `GET .../ice-candidates` until `done`.
- `{candidate: null}` or `{candidate: ""}` (what browsers send) means end-of-candidates.
- A key sees only its own legs: a bare leg belongs to the key that opened it, a session's leg to
  the session's key; anyone else gets 404. Legs live on the instance that opened them.
- A session's leg cannot be deleted here (409): DELETE the session, which settles its billing.
- Bare legs are not billed, count against the instance's capacity (503 + Retry-After), and are
  closed as soon as their media ends by itself (ICE failure or timeout, peer gone, model fault).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from framewire.api import schemas
from framewire.api.auth import require_key
from framewire.api.bodies import parse
from framewire.sessions.barelegs import BareLegs, Found
from framewire.sessions.record import iso
from framewire.sessions.service import SessionService

router = APIRouter(tags=["legs"])
KeyId = Annotated[str, Depends(require_key)]


def legs_of(request: Request) -> BareLegs:
    service: SessionService = request.app.state.sessions
    return service.bare


def reply(request: Request, body: dict[str, Any], status: str = "ok") -> JSONResponse:
    return JSONResponse({**body, "status": status, "instance_id": request.app.state.instance_id})


def describe(found: Found) -> dict[str, Any]:
    body = found.leg.describe()
    body["created_at"] = iso(found.leg.created_at)
    body["session_id"] = found.session_id
    return body


@router.post("/v1/webrtc/offer")
async def create_leg(request: Request, key: KeyId) -> JSONResponse:
    """Open a leg from an SDP offer; answer at once, without waiting for ICE gathering."""
    body = await parse(request, schemas.LegOffer)
    leg, answer = await legs_of(request).open(
        key, body.sdp, body.model, body.prompt, body.enhance_prompt
    )
    return reply(request, {"leg_id": leg.id, "type": "answer", "sdp": answer})


@router.get("/v1/legs")
async def list_legs(request: Request, key: KeyId) -> JSONResponse:
    """The caller's legs on this instance, bare and session legs alike."""
    return reply(request, {"legs": [describe(found) for found in legs_of(request).mine(key)]})


@router.get("/v1/legs/{leg_id}")
async def get_leg(leg_id: str, request: Request, key: KeyId) -> JSONResponse:
    return reply(request, describe(legs_of(request).find(leg_id, key)))


@router.delete("/v1/legs/{leg_id}")
async def delete_leg(leg_id: str, request: Request, key: KeyId) -> JSONResponse:
    """Close a bare leg and return its final state and stats."""
    leg = await legs_of(request).close(leg_id, key)
    return reply(request, describe(Found(leg, None)), status="closed")


@router.post("/v1/legs/{leg_id}/ice-candidates")
async def add_candidate(leg_id: str, request: Request, key: KeyId) -> JSONResponse:
    """Trickle one client candidate (RTCIceCandidateInit); null or "" ends the candidates."""
    legs = legs_of(request)
    legs.find(leg_id, key)
    body = await parse(request, schemas.LegCandidate)
    ended = body.candidate is None or body.candidate == ""
    await legs.add_candidate(leg_id, key, None if ended else body.model_dump())
    return reply(request, {}, status="added")


@router.get("/v1/legs/{leg_id}/ice-candidates")
async def drain_candidates(leg_id: str, request: Request, key: KeyId) -> JSONResponse:
    """Server candidates gathered since the last call; `done` once gathering has ended."""
    candidates, done = legs_of(request).drain_candidates(leg_id, key)
    return reply(request, {"candidates": candidates, "done": done})
