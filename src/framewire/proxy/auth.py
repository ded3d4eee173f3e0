"""End-user bearer tokens: the platform's own credentials, checked by the proxy before anything
goes upstream. Kept only as SHA-256 digests and compared in constant time; logs see a token id,
never the token."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from pathlib import Path

from framewire.api.auth import key_digest

TOKENS_ENV = "FRAMEWIRE_PROXY_TOKENS"


def parse_tokens(text: str) -> list[str]:
    """Tokens separated by commas or newlines; blank entries and `#` comment lines ignored."""
    tokens: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        tokens.extend(t.strip() for t in line.split(",") if t.strip())
    return tokens


def load_tokens(tokens_file: str | None, env_value: str | None) -> list[str]:
    """The union of `--tokens-file` and `FRAMEWIRE_PROXY_TOKENS`; empty means auth is off."""
    tokens = parse_tokens(env_value or "")
    if tokens_file:
        tokens += parse_tokens(Path(tokens_file).read_text(encoding="utf-8"))
    return tokens


def token_id(digest: bytes) -> str:
    return "tok_" + digest.hex()[:12]


class BearerTokens:
    def __init__(self, tokens: Iterable[str]) -> None:
        self._digests = sorted({key_digest(t) for t in tokens})

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def identify(self, authorization: str | None) -> str | None:
        """The token id of a valid `Authorization: Bearer <token>`, else None."""
        if not authorization:
            return None
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        digest = key_digest(presented.strip())
        found = None
        for candidate in self._digests:  # no early exit: constant time in the token set
            if hmac.compare_digest(candidate, digest):
                found = candidate
        return None if found is None else token_id(found)
