"""Event tokens: HMAC-signed, bound to one session, expiring with it, checkable by any
instance that shares the secret without a lookup. They only grant reading that session's SSE."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class EventTokens:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("framewire-event-token:" + secret).encode()).digest()

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, session_id: str, expires_at: float) -> str:
        nonce = _b64(hashlib.sha256(f"{time.time_ns()}".encode()).digest()[:6])
        body = json.dumps(
            {"sid": session_id, "exp": int(expires_at), "n": nonce}, separators=(",", ":")
        )
        payload = "evt_" + _b64(body.encode())
        return payload + "." + self._sign(payload)

    def expiry(self, token: str, session_id: str) -> float | None:
        """The token's expiry if it is ours and scoped to `session_id`, else None. The caller
        compares it with the clock, so an ended session can still answer 410 rather than 401."""
        payload, _, signature = token.rpartition(".")
        if not payload.startswith("evt_") or not hmac.compare_digest(
            signature.encode(), self._sign(payload).encode()
        ):
            return None
        try:
            claims = json.loads(_unb64(payload[4:]))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(claims, dict) or claims.get("sid") != session_id:
            return None
        expiry = claims.get("exp")
        return float(expiry) if isinstance(expiry, int) else None
