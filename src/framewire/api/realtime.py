"""The realtime session's control routes: create, read, trickle/restart, prompt, image, end."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from framewire import errors
from framewire.api import schemas
from framewire.api.auth import require_key
from framewire.api.bodies import IMAGE_BODY_LIMIT, JSON_LIMIT, media_type, parse, read_body
from framewire.rtc.restart import answer_fragment
from framewire.rtc.signaling import MAX_TRICKLE_CANDIDATES, parse_candidate, parse_sdpfrag
from framewire.sessions.record import SessionRecord, iso
from framewire.sessions.service import SessionService, View

SDPFRAG = "application/trickle-ice-sdpfrag"
BASE = "/v1/realtime/sessions"

router = APIRouter(prefix=BASE, tags=["realtime"])
KeyId = Annotated[str, Depends(require_key)]


def service_of(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


def if_match(request: Request) -> list[str] | None:
    """The If-Match header's entity tags (weak ones compared as strong; `"*"`, as the reference
    curl examples send it (examples/seed_curl.sh), is `*`), or None when there is none."""
    value = request.headers.get("if-match")
    if value is None or not value.strip():
        return None
    tags = [t.strip().removeprefix("W/") for t in value.split(",")]
    return ["*" if tag == '"*"' else tag for tag in tags]


def events_of(record: SessionRecord, token: str) -> dict[str, str]:
    return {"url": f"{BASE}/{record.session_id}/events", "event_token": token}


def check_count(candidates: list[Any]) -> None:
    if len(candidates) > MAX_TRICKLE_CANDIDATES:
        raise errors.ContentTooLarge(
            f"at most {MAX_TRICKLE_CANDIDATES} candidates per request, got {len(candidates)}"
        )


def describe(view: View) -> dict[str, Any]:
    """GET's body: state, the leg, a fresh event token, and the summary once ended."""
    record = view.record
    body: dict[str, Any] = {
        "session_id": record.session_id,
        "status": record.status,
        "model": record.model,
        "prompt": record.prompt,
        "enhance_prompt": record.enhance_prompt,
        "enhanced_prompt": record.enhanced_prompt,
        "has_image": record.has_image,
        "leg_id": record.leg_id,
        "instance_id": record.owner,
        "etag": record.etag,
        "seconds": record.generation_seconds(),
        "expires_at": iso(record.expires_at),
    }
    if view.stats is not None:
        body["stats"] = view.stats
        body["connection_state"] = view.connection_state
    if view.viewers is not None:
        body["viewers"] = view.viewers
    if record.ended:
        body["summary"] = record.summary()
    body["events"] = events_of(record, view.event_token)
    body["ice_servers"] = view.ice_servers
    return body


@router.post(
    "",
    status_code=201,
    openapi_extra=schemas.body(schemas.CreateSession),
    responses={201: {"model": schemas.SessionCreated}, 402: {}, 429: {}, **schemas.PROBLEMS},
)
async def create_session(request: Request, key: KeyId) -> JSONResponse:
    body = await parse(request, schemas.CreateSession, IMAGE_BODY_LIMIT)
    created = await service_of(request).create(
        key, body.model, body.sdp.sdp, body.prompt, body.enhance_prompt, body.image_data
    )
    record = created.record
    return JSONResponse(
        {
            "session_id": record.session_id,
            "sdp": {"type": "answer", "sdp": created.answer_sdp},
            "ice_servers": created.ice_servers,
            "events": events_of(record, created.event_token),
            "expires_at": iso(record.expires_at),
        },
        status_code=201,
        headers={"Location": f"{BASE}/{record.session_id}", "ETag": record.etag},
    )


@router.get("/{session_id}", responses=schemas.PROBLEMS)
async def get_session(session_id: str, request: Request, key: KeyId) -> JSONResponse:
    view = await service_of(request).view(session_id, key)
    return JSONResponse(describe(view), headers={"ETag": view.record.etag})


@router.patch(
    "/{session_id}",
    status_code=204,
    openapi_extra=schemas.body(schemas.PatchSession, "application/json", SDPFRAG),
    responses={
        200: {
            "description": "ICE restarted: the answer ({sdp}, or an SDP fragment for an SDP "
            "fragment PATCH) and the new ETag"
        },
        409: {},
        412: {},
        428: {},
        **schemas.PROBLEMS,
    },
)
async def patch_session(session_id: str, request: Request, key: KeyId) -> Response:
    service = service_of(request)
    tags = if_match(request)
    if media_type(request) == SDPFRAG:
        text = (await read_body(request, JSON_LIMIT)).decode("utf-8", "replace")
        ufrag, pwd, candidates = parse_sdpfrag(text)
        check_count(candidates)
        patched = await service.trickle(session_id, key, tags, candidates, ufrag, pwd)
        if patched.answer_sdp is None:
            return Response(status_code=204, headers={"ETag": patched.etag})
        return Response(  # an ICE restart, answered as WHIP does (RFC 9725 §4.3.2)
            answer_fragment(patched.answer_sdp),
            media_type=SDPFRAG,
            headers={"ETag": patched.etag},
        )
    body = await parse(request, schemas.PatchSession)
    if body.sdp is not None:
        patched = await service.restart(session_id, key, tags, body.sdp.sdp)
        return JSONResponse(
            {"sdp": {"type": "answer", "sdp": patched.answer_sdp}},
            headers={"ETag": patched.etag},
        )
    if body.candidates is None:
        raise errors.BadRequest("PATCH needs 'candidates' (trickle) or 'sdp' (ICE restart)")
    check_count(body.candidates)
    for item in body.candidates:
        if item is not None:
            parse_candidate(item)
    patched = await service.trickle(session_id, key, tags, body.candidates)
    return Response(status_code=204, headers={"ETag": patched.etag})


@router.delete("/{session_id}", responses={200: {"model": schemas.Summary}, **schemas.PROBLEMS})
async def delete_session(session_id: str, request: Request, key: KeyId) -> JSONResponse:
    record = await service_of(request).delete(session_id, key)
    return JSONResponse(record.summary())


@router.post(
    "/{session_id}/prompt",
    openapi_extra=schemas.body(schemas.SetPrompt),
    responses=schemas.PROBLEMS,
)
async def set_prompt(session_id: str, request: Request, key: KeyId) -> JSONResponse:
    body = await parse(request, schemas.SetPrompt)
    record = await service_of(request).set_prompt(session_id, key, body.prompt, body.enhance_prompt)
    return JSONResponse(
        {
            "prompt": body.prompt,
            "enhance_prompt": body.enhance_prompt,
            "enhanced_prompt": record.enhanced_prompt,
        }
    )


@router.post(
    "/{session_id}/image",
    openapi_extra=schemas.body(schemas.SetImage),
    responses=schemas.PROBLEMS,
)
async def set_image(session_id: str, request: Request, key: KeyId) -> JSONResponse:
    body = await parse(request, schemas.SetImage, IMAGE_BODY_LIMIT)
    record = await service_of(request).set_image(
        session_id, key, body.image_data, body.prompt, body.enhance_prompt
    )
    return JSONResponse(
        {
            "image": "accepted",
            "prompt": record.prompt,
            "enhanced_prompt": record.enhanced_prompt,
        }
    )
