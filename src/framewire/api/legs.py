"""Seed 002's leg API: the media layer over HTTP, one WebRTC leg per SDP offer.

Every response carries this instance's `instance_id`; errors are `{error, instance_id}`
(problems.py renders them for these paths). Decisions the seed leaves open:
- The body of `POST /v1/webrtc/offer` is `{sdp, type?, model?, prompt?, enhance_prompt?}`:
  `sdp` is the SDP string, so `JSON.stringify(pc.localDescription)` is a valid body. The model
  defaults to `passthrough`; an unknown model is 422 (SPEC.md §3), a prompt is moderated and
  enhanced as for sessions (422 when rejected). The answer comes back as soon as it exists, with
  host candidates; later ones are drained by `GET .../ice-candidates` until `done`.
- `{candidate: null}` or `{candidate: ""}` (what browsers send) means end-of-candidates.
- A key sees only its own legs: a bare leg belongs to the key that opened it, a session's leg to
  the session's key; anyone else gets 404. Legs live on the instance that opened them.
- A session's leg cannot be deleted here (409): DELETE the session, which settles its billing.
- Bare legs are not billed, count against FRAMEWIRE_MAX_SESSIONS (503 + Retry-After), and are
  closed as soon as their media ends by itself (ICE failure or timeout, peer gone, model fault).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from framewire import errors
from framewire.api.auth import require_key
from framewire.api.bodies import optional_bool, optional_str, read_json
from framewire.api.realtime import prompt_of
from framewire.media.leg import Leg, LegFailed
from framewire.media.legs import LegNotFound, Legs
from framewire.media.signaling import InvalidCandidate, InvalidOffer
from framewire.models.registry import UnknownModel
from framewire.sessions.record import SessionRecord, iso
from framewire.sessions.service import SessionService

log = logging.getLogger("framewire.api")

DEFAULT_MODEL = "passthrough"

router = APIRouter(tags=["legs"])
KeyId = Annotated[str, Depends(require_key)]


class BareLeg:
    """Listener of a leg opened through this API. No session stands above it, so when its media
    ends by itself the leg is closed and forgotten at once: nothing leaks."""

    def __init__(self, legs: Legs, leg_id: str) -> None:
        self._legs = legs
        self._leg_id = leg_id
        self._closing: asyncio.Task[None] | None = None

    def on_candidate(self, init: dict[str, Any] | None) -> None:
        """Late candidates wait in the leg for `GET .../ice-candidates`."""

    def on_first_frame(self) -> None:
        """Bare legs are not billed: nothing starts with the first frame."""

    def on_ended(self, reason: str) -> None:
        log.info("leg %s ended by itself (%s): closing it", self._leg_id, reason)
        self._closing = asyncio.get_running_loop().create_task(self._legs.close(self._leg_id))


def legs_of(request: Request) -> Legs:
    legs: Legs = request.app.state.legs
    return legs


def sessions_of(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


def reply(request: Request, body: dict[str, Any], status: str = "ok") -> JSONResponse:
    return JSONResponse({**body, "status": status, "instance_id": request.app.state.instance_id})


def session_records(request: Request) -> dict[str, SessionRecord]:
    """Leg id -> record of the live session (on this instance) that the leg carries."""
    return {live.leg.id: live.record for live in sessions_of(request).live.values()}


def owner_of(leg: Leg, record: SessionRecord | None) -> str | None:
    return record.key_id if record is not None else leg.owner


def find(request: Request, leg_id: str, key: str) -> tuple[Leg, SessionRecord | None]:
    """The caller's leg and the session it carries, if any; 404 for unknown or others' legs."""
    try:
        leg = legs_of(request).get(leg_id)
    except LegNotFound:
        raise errors.NotFound(f"leg {leg_id!r} not found") from None
    record = session_records(request).get(leg_id)
    if owner_of(leg, record) != key:
        raise errors.NotFound(f"leg {leg_id!r} not found")
    return leg, record


def describe(leg: Leg, record: SessionRecord | None) -> dict[str, Any]:
    body = leg.describe()
    body["created_at"] = iso(leg.created_at)
    body["session_id"] = record.session_id if record is not None else None
    return body


def offer_sdp(body: dict[str, Any]) -> str:
    kind = body.get("type")
    if kind is not None and kind != "offer":
        raise errors.InvalidSdp("'type' must be \"offer\"")
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise errors.BadRequest("'sdp' must be the SDP offer, as a non-empty string")
    return sdp


def check_model(legs: Legs, model_id: str) -> None:
    try:
        legs.registry.get(model_id)
    except UnknownModel as exc:
        known = ", ".join(spec.id for spec in legs.registry.specs())
        raise errors.UnsupportedModel(f"{exc}; available: {known}") from None


@router.post("/v1/webrtc/offer")
async def create_leg(request: Request, key: KeyId) -> JSONResponse:
    """Open a leg from an SDP offer; answer at once, without waiting for ICE gathering."""
    body = await read_json(request)
    sdp = offer_sdp(body)
    model = optional_str(body, "model") or DEFAULT_MODEL
    prompt = prompt_of(body)
    enhance = optional_bool(body, "enhance_prompt", True)
    legs, service = legs_of(request), sessions_of(request)
    check_model(legs, model)
    enhanced = service.check_prompt(prompt, enhance, model) if prompt else None
    try:
        with service.admission.reserve():
            leg, answer = await legs.open(sdp, model, enhanced, owner=key)
    except InvalidOffer as exc:
        raise errors.InvalidSdp(str(exc)) from exc
    except LegFailed as exc:
        raise errors.FramewireError(str(exc)) from exc
    leg.attach(BareLeg(legs, leg.id))
    return reply(request, {"leg_id": leg.id, "type": "answer", "sdp": answer})


@router.get("/v1/legs")
async def list_legs(request: Request, key: KeyId) -> JSONResponse:
    """The caller's legs on this instance, bare and session legs alike."""
    records = session_records(request)
    mine = [
        describe(leg, records.get(leg.id))
        for leg in legs_of(request).all()
        if owner_of(leg, records.get(leg.id)) == key
    ]
    return reply(request, {"legs": mine})


@router.get("/v1/legs/{leg_id}")
async def get_leg(leg_id: str, request: Request, key: KeyId) -> JSONResponse:
    return reply(request, describe(*find(request, leg_id, key)))


@router.delete("/v1/legs/{leg_id}")
async def delete_leg(leg_id: str, request: Request, key: KeyId) -> JSONResponse:
    """Close a bare leg and return its final state and stats."""
    leg, record = find(request, leg_id, key)
    if record is not None:
        raise errors.Conflict(
            f"leg {leg_id} carries session {record.session_id}; end it with "
            f"DELETE /v1/realtime/sessions/{record.session_id}"
        )
    await legs_of(request).close(leg_id)
    return reply(request, describe(leg, None), status="closed")


@router.post("/v1/legs/{leg_id}/ice-candidates")
async def add_candidate(leg_id: str, request: Request, key: KeyId) -> JSONResponse:
    """Trickle one client candidate (RTCIceCandidateInit); null or "" ends the candidates."""
    leg, _ = find(request, leg_id, key)
    body = await read_json(request)
    if "candidate" not in body:
        raise errors.BadRequest(
            "'candidate' is required: an ICE candidate string, or null for end-of-candidates"
        )
    ended = body["candidate"] is None or body["candidate"] == ""
    try:
        await leg.add_candidate(None if ended else body)
    except InvalidCandidate as exc:
        raise errors.InvalidCandidates(str(exc)) from exc
    return reply(request, {}, status="added")


@router.get("/v1/legs/{leg_id}/ice-candidates")
async def drain_candidates(leg_id: str, request: Request, key: KeyId) -> JSONResponse:
    """Server candidates gathered since the last call; `done` once gathering has ended."""
    leg, _ = find(request, leg_id, key)
    candidates, done = leg.drain_candidates()
    return reply(request, {"candidates": candidates, "done": done})
