"""API keys: kept only as SHA-256 digests, compared in constant time; a key's id is a digest
prefix, so records and logs never hold the key itself."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from framewire import errors


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def key_id(digest: bytes) -> str:
    return "key_" + digest.hex()[:16]


class ApiKeys:
    def __init__(self, keys: dict[str, float | None]) -> None:
        self._digests = [(key_digest(k), credit) for k, credit in keys.items()]

    def credits(self) -> list[tuple[str, float | None]]:
        return [(key_id(d), credit) for d, credit in self._digests]

    def valid(self, presented: str) -> bool:
        try:
            self.identify(presented)
        except errors.Unauthorized:
            return False
        return True

    def identify(self, presented: str | None) -> str:
        """The key id of a presented key; 401 when missing or unknown."""
        if not presented:
            raise errors.Unauthorized(
                "an API key is required: an x-api-key or an Authorization: Bearer header"
            )
        digest = key_digest(presented)
        found = None
        for candidate, _ in self._digests:  # no early exit: constant time in the key set
            if hmac.compare_digest(candidate, digest):
                found = candidate
        if found is None:
            raise errors.Unauthorized("the API key is not valid")
        return key_id(found)


def presented_key(request: Request) -> str | None:
    """The key a request carries: `x-api-key`, or `Authorization: Bearer <key>` as WHIP/WHEP
    clients send it (RFC 9725 §4.5)."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def require_key(request: Request) -> str:
    """FastAPI dependency: the caller's key id."""
    keys: ApiKeys = request.app.state.api_keys
    return keys.identify(presented_key(request))
