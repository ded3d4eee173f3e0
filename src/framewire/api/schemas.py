"""Request and response bodies. Every JSON request body is parsed and validated once, by these
models, after `bodies.read_json` checked its size; each limit is written here once. A failed
validation raises pydantic's ValidationError, which `problems` maps (once) to the problem the
API has always answered: `invalid-sdp` for a wrong offer, `invalid-request` (422) for a prompt
too long or empty, `content-too-large` (413) for an image over 10 MB, else `bad-request`."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from framewire.api.bodies import IMAGE_LIMIT

MAX_PROMPT = 1000
MAX_SDP = 64 * 1024
DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)
INVALID_SDP = "invalid-sdp"
UNPROCESSABLE = "invalid-request"
TOO_LARGE = "content-too-large"
"""Error types of the custom checks below; `problems` maps them to the problems of that slug."""


def _prompt(value: str) -> str:
    if len(value) > MAX_PROMPT:
        raise PydanticCustomError(UNPROCESSABLE, f"'prompt' exceeds {MAX_PROMPT} characters")
    if not value.strip():
        raise PydanticCustomError(UNPROCESSABLE, "'prompt' must not be empty")
    return value


def _image(value: Any) -> bytes:
    """Raw base64 or a data: URL; too large is checked before decoding."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "'image_data' must be a base64 string")
    if len(value) > IMAGE_LIMIT:
        raise PydanticCustomError(TOO_LARGE, "reference images must be under 10 MB, base64-encoded")
    try:
        return base64.b64decode(DATA_URL.sub("", value.strip(), count=1), validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError("base64", "'image_data' is not valid base64") from None


def _offer_type(value: Any) -> Any:
    if value != "offer":
        raise PydanticCustomError(INVALID_SDP, "'sdp.type' must be \"offer\"")
    return value


def _leg_type(value: Any) -> Any:
    if value is not None and value != "offer":
        raise PydanticCustomError(INVALID_SDP, "'type' must be \"offer\"")
    return value


def _leg_sdp(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("empty", "'sdp' must be the SDP offer, as a non-empty string")
    return value


def _offer_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError(INVALID_SDP, "'sdp.sdp' must be a non-empty SDP string")
    if len(value) > MAX_SDP:
        raise PydanticCustomError(INVALID_SDP, f"the SDP offer exceeds {MAX_SDP} characters")
    return value


Prompt = Annotated[
    StrictStr, AfterValidator(_prompt), Field(json_schema_extra={"maxLength": MAX_PROMPT})
]
ImageData = Annotated[
    bytes,
    BeforeValidator(_image),
    WithJsonSchema({"type": "string", "maxLength": IMAGE_LIMIT}),
    Field(description="base64 or data: URL, at most 10 MB (PNG, JPEG, WebP)"),
]
"""The decoded image bytes."""


class Body(BaseModel):
    """Strict: a string is never taken for a boolean nor a number for a string."""

    model_config = ConfigDict(strict=True)


class Offer(Body):
    type: Annotated[Any, AfterValidator(_offer_type), WithJsonSchema({"const": "offer"})] = None
    sdp: Annotated[
        Any, AfterValidator(_offer_text), WithJsonSchema({"type": "string", "maxLength": MAX_SDP})
    ] = None


class SessionDescription(BaseModel):
    type: Literal["offer", "answer"]
    sdp: str


class CreateSession(Body):
    model: StrictStr = Field(examples=["lucy_2_rt"])
    sdp: Offer
    prompt: Prompt | None = None
    enhance_prompt: StrictBool = True
    image_data: ImageData | None = None


class PatchSession(Body):
    """Trickle (`candidates`, each an RTCIceCandidateInit; null is end-of-candidates) or an ICE
    restart (`sdp`); one of them."""

    candidates: list[Any] | None = Field(
        default=None, description="trickle; a null element is end-of-candidates"
    )
    sdp: Offer | None = Field(default=None, description="ICE restart offer")


class SetPrompt(Body):
    prompt: Prompt
    enhance_prompt: StrictBool = True


class SetImage(Body):
    image_data: ImageData
    prompt: Prompt | None = None
    enhance_prompt: StrictBool = True


class LegOffer(Body):
    """`POST /v1/webrtc/offer`: `JSON.stringify(pc.localDescription)` is a valid body."""

    type: Annotated[Any, AfterValidator(_leg_type), WithJsonSchema({"const": "offer"})] = None
    sdp: Annotated[StrictStr, AfterValidator(_leg_sdp)]
    model: StrictStr | None = None
    prompt: Prompt | None = None
    enhance_prompt: StrictBool = True


class LegCandidate(Body):
    """One RTCIceCandidateInit; `candidate` null or "" ends the candidates."""

    model_config = ConfigDict(strict=True, extra="allow")
    candidate: StrictStr | None


class EventsInfo(BaseModel):
    url: str
    event_token: str


class SessionCreated(BaseModel):
    session_id: str
    sdp: SessionDescription
    ice_servers: list[dict[str, Any]]
    events: EventsInfo
    expires_at: str


class Summary(BaseModel):
    session_id: str
    model: str
    status: Literal["active", "ended"]
    reason: str | None
    seconds: float
    credits_charged: float
    credits_remaining: float | None
    started_at: str | None
    ended_at: str | None
    viewer_seconds: float = 0.0


class Problem(BaseModel):
    type: str
    title: str
    detail: str
    status: int


def body(model: type[BaseModel], *content_types: str) -> dict[str, Any]:
    """`openapi_extra` documenting a request body read by `bodies.parse`."""
    schema = model.model_json_schema()
    schema = _inline(schema, schema.pop("$defs", {}))
    media = {kind: {"schema": schema} for kind in content_types or ("application/json",)}
    return {"requestBody": {"required": True, "content": media}}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace `#/$defs/...` references by the definitions, so the schema stands alone."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in {
        400: "Malformed request body or invalid SDP",
        401: "Missing or invalid API key",
        404: "Session not found or expired",
        410: "Session ended",
        413: "Body or image too large",
        422: "Unsupported model, moderation rejection, invalid image",
        503: "At capacity; see Retry-After",
    }.items()
}
