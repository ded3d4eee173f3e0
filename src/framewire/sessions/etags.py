"""The session's ICE ETag and generation (ufrag) rules, checked on the owner under its lock."""

from __future__ import annotations

import secrets

from framewire import errors


def new_etag() -> str:
    return f'"ice-{secrets.token_hex(8)}"'


def ice_ufrag(sdp: str) -> str | None:
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line[len("a=ice-ufrag:") :].strip()
    return None


def check_tags(tags: list[str], etag: str) -> None:
    """WHIP's rule for a parsed If-Match: `*` matches, otherwise one tag must be ours."""
    if "*" in tags or etag in tags:
        return
    raise errors.PreconditionFailed(
        "If-Match does not match the current ICE session; GET the session for its ETag"
    )


def stale_generation() -> errors.PreconditionFailed:
    return errors.PreconditionFailed(
        "the candidates belong to another ICE generation (ufrag) than the current one"
    )
