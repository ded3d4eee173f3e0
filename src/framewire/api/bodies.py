"""Request bodies: size limits enforced before the whole body is read, JSON objects only, then
parsed by their model (`schemas`)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel

from framewire import errors

KB = 1024
MB = 1024 * KB
JSON_LIMIT = 1 * MB
IMAGE_LIMIT = 10 * MB
IMAGE_BODY_LIMIT = IMAGE_LIMIT + JSON_LIMIT
"""Routes that carry image_data take the image's 10 MB plus the rest of a normal body."""

JSON_TYPES = ("application/json", "application/problem+json")
M = TypeVar("M", bound=BaseModel)


def media_type(request: Request) -> str | None:
    value = request.headers.get("content-type")
    if value is None:
        return None
    return value.split(";")[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise errors.ContentTooLarge(f"request body exceeds {limit} bytes")
        except ValueError:
            raise errors.BadRequest("invalid Content-Length header") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.ContentTooLarge(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int = JSON_LIMIT) -> dict[str, Any]:
    """The body as a JSON object. Missing Content-Type is tolerated; a non-JSON one is 415."""
    kind = media_type(request)
    if kind is not None and kind not in JSON_TYPES:
        raise errors.UnsupportedMediaType(f"expected application/json, got {kind}")
    raw = await read_body(request, limit)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(f"malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise errors.BadRequest("the JSON body must be an object")
    return body


async def parse(request: Request, model: type[M], limit: int = JSON_LIMIT) -> M:
    """Read a JSON body (size first) and validate it with its model; a ValidationError leaves
    for `problems`, which maps it to the API's problems."""
    return model.model_validate(await read_json(request, limit))
