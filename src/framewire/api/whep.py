"""WHEP playback: `POST /v1/realtime/sessions/{id}/whep` with a recvonly SDP offer adds a viewer
of the session's transformed video; the viewer's URL takes RFC 9725's PATCH and DELETE."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from framewire import errors
from framewire.api import schemas
from framewire.api.auth import require_key
from framewire.api.bodies import JSON_LIMIT, media_type, read_body
from framewire.api.realtime import BASE, SDPFRAG, if_match
from framewire.api.whip import OFFER_HEADERS, SDP, read_offer, sdp_created
from framewire.rtc.restart import answer_fragment
from framewire.rtc.signaling import parse_candidate, parse_sdpfrag
from framewire.sessions.viewers import Viewers

router = APIRouter(prefix=BASE, tags=["whep"])
KeyId = Annotated[str, Depends(require_key)]
VIEWER = "/{session_id}/viewers/{viewer_id}"


def viewers_of(request: Request) -> Viewers:
    viewers: Viewers = request.app.state.viewers
    return viewers


@router.options("/{session_id}/whep", status_code=204)
async def whep_options(session_id: str) -> Response:
    return Response(status_code=204, headers=OFFER_HEADERS)


@router.post(
    "/{session_id}/whep",
    status_code=201,
    openapi_extra={
        "requestBody": {"required": True, "content": {SDP: {"schema": {"type": "string"}}}}
    },
    responses={
        201: {"description": "The viewer: answer SDP, Location, ETag, Link headers"},
        410: {},
        415: {},
        **schemas.PROBLEMS,
    },
)
async def whep_watch(session_id: str, request: Request, key: KeyId) -> Response:
    """Watch a session's transformed video over WHEP."""
    offer = await read_offer(request)
    added = await viewers_of(request).add(session_id, key, offer)
    location = f"{BASE}/{session_id}/viewers/{added.viewer_id}"
    return sdp_created(request, added.answer_sdp, location, added.etag, added.record)


@router.patch(
    VIEWER,
    status_code=204,
    openapi_extra={
        "requestBody": {"required": True, "content": {SDPFRAG: {"schema": {"type": "string"}}}}
    },
    responses={200: {"description": "ICE restarted: the answer fragment and the new ETag"}},
)
async def patch_viewer(session_id: str, viewer_id: str, request: Request, key: KeyId) -> Response:
    """Trickle candidates to a viewer (204), or restart its ICE (200 + SDP fragment)."""
    kind = media_type(request)
    if kind != SDPFRAG:
        raise errors.UnsupportedMediaType(f"expected {SDPFRAG}, got {kind or 'no Content-Type'}")
    text = (await read_body(request, JSON_LIMIT)).decode("utf-8", "replace")
    fragment = parse_sdpfrag(text)
    for candidate in fragment[2]:
        if candidate is not None:
            parse_candidate(candidate)
    tags = if_match(request)
    patched = await viewers_of(request).patch(session_id, viewer_id, key, tags, fragment)
    if patched.answer_sdp is None:
        return Response(status_code=204, headers={"ETag": patched.etag})
    return Response(
        answer_fragment(patched.answer_sdp), media_type=SDPFRAG, headers={"ETag": patched.etag}
    )


@router.delete(VIEWER, responses=schemas.PROBLEMS)
async def delete_viewer(session_id: str, viewer_id: str, request: Request, key: KeyId) -> Response:
    """Stop watching."""
    await viewers_of(request).remove(session_id, viewer_id, key)
    return JSONResponse({"viewer_id": viewer_id, "status": "ended"})
