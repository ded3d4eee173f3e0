"""Short-lived TURN credentials in the TURN REST API form (coturn's `use-auth-secret`).

The username is `expiry:name` (expiry in Unix seconds) and the credential is
base64(HMAC-SHA1(secret, username)): the TURN server checks both with the shared secret alone,
so credentials are minted here without telling it, and stop working when they expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from typing import Any

TURN_TTL_MARGIN = 300.0
"""Seconds the server's own TURN credentials outlive the longest session."""


def turn_username(name: str, expires_at: float) -> str:
    return f"{math.ceil(expires_at)}:{name}"


def turn_password(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class TurnServer:
    """A TURN server sharing `secret` with us; `ttl` bounds the server's own credentials."""

    urls: list[str]
    secret: str
    ttl: float

    def ice_server(self, name: str, expires_at: float | None = None) -> dict[str, Any]:
        """An RTCIceServer dict for `name` (a session or leg id), valid until `expires_at`
        (default: `ttl` from now)."""
        if expires_at is None:
            expires_at = time.time() + self.ttl
        username = turn_username(name, expires_at)
        return {
            "urls": list(self.urls),
            "username": username,
            "credential": turn_password(self.secret, username),
        }


def turn_server(urls: list[str], secret: str | None, ttl: float) -> TurnServer | None:
    """The configured TURN server, or None when no URL is set."""
    if not urls:
        return None
    if not secret:
        raise ValueError("TURN URLs are set but the TURN secret is not")
    return TurnServer(list(urls), secret, ttl)
