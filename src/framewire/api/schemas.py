"""Request and response shapes of seed 000, for /openapi.json. Bodies are parsed by hand (limits
are checked before the body is read), so these models only describe them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class SessionDescription(BaseModel):
    type: Literal["offer", "answer"]
    sdp: str = Field(max_length=64 * 1024)


class IceCandidate(BaseModel):
    candidate: str
    sdpMid: str | None = None
    sdpMLineIndex: int | None = None


class CreateSession(BaseModel):
    model: str = Field(examples=["lucy_2_rt"])
    sdp: SessionDescription
    prompt: str | None = Field(default=None, max_length=1000)
    enhance_prompt: bool = True
    image_data: str | None = Field(
        default=None, description="base64 or data: URL, at most 10 MB (PNG, JPEG, WebP)"
    )


class EventsInfo(BaseModel):
    url: str
    event_token: str


class SessionCreated(BaseModel):
    session_id: str
    sdp: SessionDescription
    ice_servers: list[dict[str, Any]]
    events: EventsInfo
    expires_at: str


class PatchSession(BaseModel):
    candidates: list[IceCandidate | None] | None = Field(
        default=None, description="trickle; a null element is end-of-candidates"
    )
    sdp: SessionDescription | None = Field(default=None, description="ICE restart offer")


class SetPrompt(BaseModel):
    prompt: str = Field(max_length=1000)
    enhance_prompt: bool = True


class SetImage(BaseModel):
    image_data: str
    prompt: str | None = Field(default=None, max_length=1000)
    enhance_prompt: bool = True


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
    """`openapi_extra` documenting a hand-parsed request body."""
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
