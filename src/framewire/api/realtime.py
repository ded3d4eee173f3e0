"""Seed 000's control routes: create, read, trickle/restart, prompt, image, end."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from framewire import errors
from framewire.api import schemas
from framewire.api.auth import require_key
from framewire.api.bodies import (
    IMAGE_BODY_LIMIT,
    IMAGE_LIMIT,
    JSON_LIMIT,
    media_type,
    optional_bool,
    optional_str,
    read_body,
    read_json,
    required_str,
)
from framewire.media.restart import answer_fragment
from framewire.media.signaling import InvalidCandidate, parse_sdpfrag
from framewire.sessions.record import SessionRecord, iso
from framewire.sessions.service import SessionService

MAX_PROMPT = 1000
SDPFRAG = "application/trickle-ice-sdpfrag"
BASE = "/v1/realtime/sessions"
DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)

router = APIRouter(prefix=BASE, tags=["realtime"])
KeyId = Annotated[str, Depends(require_key)]


def service_of(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


def decode_image(value: Any) -> bytes:
    """`image_data`: raw base64 or a data: URL; 413 above 10 MB, checked before decoding."""
    if not isinstance(value, str):
        raise errors.BadRequest("'image_data' must be a base64 string")
    if len(value) > IMAGE_LIMIT:
        raise errors.ContentTooLarge("reference images must be under 10 MB (base64-encoded)")
    value = DATA_URL.sub("", value.strip(), count=1)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.BadRequest("'image_data' is not valid base64") from exc


def prompt_of(body: dict[str, Any], required: bool = False) -> str | None:
    prompt = optional_str(body, "prompt", MAX_PROMPT)
    if required and prompt is None:
        raise errors.BadRequest("'prompt' is required")
    if prompt is not None and not prompt.strip():
        raise errors.Unprocessable("'prompt' must not be empty")
    return prompt


def offer_of(body: dict[str, Any]) -> str:
    sdp = body.get("sdp")
    if not isinstance(sdp, dict):
        raise errors.BadRequest('\'sdp\' must be an object {"type": "offer", "sdp": "..."}')
    if sdp.get("type") != "offer":
        raise errors.InvalidSdp("'sdp.type' must be \"offer\"")
    text = sdp.get("sdp")
    if not isinstance(text, str) or not text.strip():
        raise errors.InvalidSdp("'sdp.sdp' must be a non-empty SDP string")
    return text


def events_of(request: Request, record: SessionRecord, token: str) -> dict[str, str]:
    return {"url": f"{BASE}/{record.session_id}/events", "event_token": token}


@router.post(
    "",
    status_code=201,
    openapi_extra=schemas.body(schemas.CreateSession),
    responses={201: {"model": schemas.SessionCreated}, 402: {}, 429: {}, **schemas.PROBLEMS},
)
async def create_session(request: Request, key: KeyId) -> JSONResponse:
    body = await read_json(request, IMAGE_BODY_LIMIT)
    model = required_str(body, "model")
    offer = offer_of(body)
    prompt = prompt_of(body)
    enhance = optional_bool(body, "enhance_prompt", True)
    image = decode_image(body["image_data"]) if body.get("image_data") is not None else None
    service = service_of(request)
    created = await service.create(key, model, offer, prompt, enhance, image)
    record = created.record
    return JSONResponse(
        {
            "session_id": record.session_id,
            "sdp": {"type": "answer", "sdp": created.answer_sdp},
            "ice_servers": service.ice_servers(record),
            "events": events_of(request, record, created.event_token),
            "expires_at": iso(record.expires_at),
        },
        status_code=201,
        headers={"Location": f"{BASE}/{record.session_id}", "ETag": record.etag},
    )


@router.get("/{session_id}", responses=schemas.PROBLEMS)
async def get_session(session_id: str, request: Request, key: KeyId) -> JSONResponse:
    service = service_of(request)
    record = await service.find(session_id, key)
    body = service.describe(record)
    stats = await service.media_stats(record)
    if stats is not None:
        body["stats"] = stats
    body["expires_at"] = iso(record.expires_at)
    body["events"] = events_of(request, record, service.event_token(record))
    body["ice_servers"] = service.ice_servers(record)
    return JSONResponse(body, headers={"ETag": record.etag})


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
    if_match = request.headers.get("if-match")
    if media_type(request) == SDPFRAG:
        text = (await read_body(request, JSON_LIMIT)).decode("utf-8", "replace")
        try:
            ufrag, pwd, candidates = parse_sdpfrag(text)
        except InvalidCandidate as exc:
            raise errors.InvalidCandidates(str(exc)) from exc
        patched = await service.trickle(session_id, key, if_match, candidates, ufrag, pwd)
        if patched.answer_sdp is None:
            return Response(status_code=204, headers={"ETag": patched.etag})
        return Response(  # an ICE restart, answered as WHIP does (RFC 9725 §4.3.2)
            answer_fragment(patched.answer_sdp),
            media_type=SDPFRAG,
            headers={"ETag": patched.etag},
        )
    body = await read_json(request)
    if "sdp" in body:
        patched = await service.restart(session_id, key, if_match, offer_of(body))
        return JSONResponse(
            {"sdp": {"type": "answer", "sdp": patched.answer_sdp}},
            headers={"ETag": patched.etag},
        )
    if "candidates" not in body:
        raise errors.BadRequest("PATCH needs 'candidates' (trickle) or 'sdp' (ICE restart)")
    candidates = body["candidates"]
    if not isinstance(candidates, list):
        raise errors.BadRequest("'candidates' must be an array")
    patched = await service.trickle(session_id, key, if_match, candidates)
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
    body = await read_json(request)
    prompt = prompt_of(body, required=True)
    assert prompt is not None
    enhance = optional_bool(body, "enhance_prompt", True)
    record = await service_of(request).set_prompt(session_id, key, prompt, enhance)
    return JSONResponse(
        {"prompt": prompt, "enhance_prompt": enhance, "enhanced_prompt": record.enhanced_prompt}
    )


@router.post(
    "/{session_id}/image",
    openapi_extra=schemas.body(schemas.SetImage),
    responses=schemas.PROBLEMS,
)
async def set_image(session_id: str, request: Request, key: KeyId) -> JSONResponse:
    body = await read_json(request, IMAGE_BODY_LIMIT)
    if body.get("image_data") is None:
        raise errors.BadRequest("'image_data' is required")
    image = decode_image(body["image_data"])
    prompt = prompt_of(body)
    enhance = optional_bool(body, "enhance_prompt", True)
    record = await service_of(request).set_image(session_id, key, image, prompt, enhance)
    return JSONResponse(
        {
            "image": "accepted",
            "prompt": record.prompt,
            "enhanced_prompt": record.enhanced_prompt,
        }
    )
