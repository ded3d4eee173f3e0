"""The effective configuration as `framewire serve --check` prints it: every FRAMEWIRE_*
setting with its value, secrets masked (API keys, the signing secret, the TURN secret and any
password in the Redis URL)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from framewire.config import Settings

MASK = "****"
SECRET_FIELDS = ("secret", "turn_secret")


def _api_keys(keys: dict[str, float | None]) -> str:
    if not keys:
        return "none: a development key is generated at start"
    shown = [MASK + ("" if credit is None else f"={credit:g}") for credit in keys.values()]
    return f"{len(keys)} key(s): " + ", ".join(shown)


def _redis_url(url: str | None) -> str:
    if url is None:
        return "unset: in-memory state"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _value(name: str, value: Any) -> str:
    if name in SECRET_FIELDS:
        return "unset" if value is None else MASK
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return json.dumps(value)
        return ",".join(str(v) for v in value) or "none"
    if isinstance(value, tuple):  # a port range, as it is written: FIRST-LAST
        return "-".join(str(v) for v in value)
    return "unset" if value is None else str(value)


def effective_settings(settings: Settings) -> list[tuple[str, str]]:
    """(FRAMEWIRE_NAME, value as text) for every setting, secrets masked."""
    rows = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name == "api_keys":
            text = _api_keys(value)
        elif name == "redis_url":
            text = _redis_url(value)
        elif name == "ice_servers":
            text = json.dumps([_mask_credential(server) for server in value]) if value else "none"
        else:
            text = _value(name, value)
        rows.append((f"FRAMEWIRE_{name.upper()}", text))
    return rows


def _mask_credential(server: dict[str, Any]) -> dict[str, Any]:
    return {k: (MASK if k == "credential" else v) for k, v in server.items()}
