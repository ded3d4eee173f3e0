"""WHIP ingest (RFC 9725): `POST /v1/whip/{model}` with an SDP offer creates an ordinary realtime
session, and the session's own URL is the WHIP resource (trickle/restart PATCH, DELETE).

The helpers here (SDP bodies, `Link` headers) serve WHEP's routes too."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import TypeAdapter

from framewire import errors
from framewire.api import schemas
from framewire.api.auth import require_key
from framewire.api.bodies import media_type, read_body
from framewire.api.realtime import BASE, service_of
from framewire.rtc.signaling import MAX_SDP_BYTES, has_usable_video
from framewire.sessions.record import SessionRecord

SDP = "application/sdp"
EVENTS_REL = "urn:ietf:params:whep:ext:core:server-sent-events"
"""The rel of the session's event stream link (the WHEP server-sent events extension's)."""
OFFER_HEADERS = {"Accept-Post": SDP, "Allow": "OPTIONS, POST"}
PROMPT = TypeAdapter(schemas.Prompt)
"""The query's prompt is checked as the JSON API checks a body's (422 when empty or too long)."""

router = APIRouter(tags=["whip"])
KeyId = Annotated[str, Depends(require_key)]


async def read_offer(request: Request) -> str:
    """An `application/sdp` offer body: 415 for another type, 400 unparsable, 422 when it
    offers no video codec the server can use."""
    kind = media_type(request)
    if kind != SDP:
        raise errors.UnsupportedMediaType(f"expected {SDP}, got {kind or 'no Content-Type'}")
    try:
        offer = (await read_body(request, MAX_SDP_BYTES)).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.InvalidSdp("the SDP offer is not UTF-8 text") from exc
    lines = [line.strip() for line in offer.splitlines() if line.strip()]
    if not lines or lines[0] != "v=0" or not any(line.startswith("m=") for line in lines):
        raise errors.InvalidSdp("the body is not an SDP offer (v=0 and m= lines)")
    if not any(line.startswith("m=video ") for line in lines):
        raise errors.NoUsableCodec("the SDP offer has no video m-line")
    if not has_usable_video(offer):
        raise errors.NoUsableCodec("the SDP offer has no usable video codec (VP8 or H.264)")
    return offer


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ice_links(servers: list[dict[str, Any]]) -> list[str]:
    """One `Link: <url>; rel="ice-server"` per ICE server URL, with TURN credentials as
    RFC 9725 §4.6 writes them."""
    links = []
    for server in servers:
        urls = server.get("urls", [])
        for url in [urls] if isinstance(urls, str) else urls:
            link = f'<{url}>; rel="ice-server"'
            if server.get("username") and server.get("credential"):
                link += f"; username={quoted(server['username'])}"
                link += f"; credential={quoted(server['credential'])}"
                link += '; credential-type="password"'
            links.append(link)
    return links


def sdp_created(
    request: Request, answer: str, location: str, etag: str, record: SessionRecord
) -> Response:
    """A WHIP/WHEP `201 Created`: the answer, its resource, ETag, ICE servers and events."""
    service = service_of(request)
    response = Response(
        answer, status_code=201, media_type=SDP, headers={"Location": location, "ETag": etag}
    )
    for link in ice_links(service.ice_servers(record)):
        response.headers.append("Link", link)
    events = f"{BASE}/{record.session_id}/events?event_token={service.event_token(record)}"
    response.headers.append("Link", f'<{events}>; rel="{EVENTS_REL}"')
    return response


@router.options("/v1/whip/{model}", status_code=204)
async def whip_options(model: str) -> Response:
    return Response(status_code=204, headers=OFFER_HEADERS)


@router.post(
    "/v1/whip/{model}",
    status_code=201,
    openapi_extra={
        "requestBody": {"required": True, "content": {SDP: {"schema": {"type": "string"}}}}
    },
    responses={
        201: {"description": "The session: answer SDP, Location, ETag, Link headers"},
        402: {},
        415: {},
        429: {},
        **schemas.PROBLEMS,
    },
)
async def whip_publish(
    model: str,
    request: Request,
    key: KeyId,
    prompt: str | None = None,
    enhance_prompt: bool = True,
) -> Response:
    """Publish over WHIP into a new realtime session running `model`."""
    offer = await read_offer(request)
    text = PROMPT.validate_python(prompt) if prompt is not None else None
    created = await service_of(request).create(key, model, offer, text, enhance_prompt, None)
    record = created.record
    return sdp_created(
        request, created.answer_sdp, f"{BASE}/{record.session_id}", record.etag, record
    )
