"""The proxy's own problems: its gate (auth, rate limit, paths) and its upstream (unreachable,
slow). Framewire error values, so the API's one problem mapping renders them."""

from __future__ import annotations

from framewire import errors

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="framewire"'}


class BearerRequired(errors.Unauthorized):
    title = "Missing or invalid bearer token"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, dict(BEARER_CHALLENGE))


class RateLimited(errors.FramewireError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class UpstreamTimeout(errors.FramewireError):
    status, slug, title = 504, "gateway-timeout", "Upstream timed out"


UpstreamUnreachable = errors.UpstreamFailed
"""502: the upstream could not be reached or broke off before its answer was complete."""
