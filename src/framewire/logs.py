"""Log output: plain lines for a terminal or one JSON object per line, and never a secret.

Every line passes one redaction: the configured secrets (API keys, the token secret, the TURN
and webhook secrets) are replaced wherever they appear, `event_token` query values (uvicorn's
access log prints full paths) and ICE-server `credential` values are masked. Fields a line is
about (`session_id`, `leg_id`, `key_id`) come from the record's `extra` or, failing that, from
the context the line was logged in (`bind`)."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FIELDS = ("session_id", "leg_id", "key_id")
_context: dict[str, ContextVar[str | None]] = {f: ContextVar(f, default=None) for f in FIELDS}
CHATTY = ("aioice", "aiortc", "httpx", "httpcore")
"""Libraries whose INFO lines (per candidate pair, per DTLS step, per webhook request) drown
a server's log; framewire logs the outcomes that matter itself."""
MASK = "[redacted]"
PATTERNS = (
    re.compile(r"(event_token=)[^&\s\"']+"),
    re.compile(r"""(["']credential["']\s*:\s*["'])[^"']+"""),
    re.compile(r"(credential=['\"]?)[^'\"\s,)]+"),
)
MIN_SECRET = 6
"""Shorter configured values are not masked (they would garble ordinary words)."""


def bind(**fields: str) -> None:
    """Attach fields to every line logged from this context (and tasks it starts)."""
    for name, value in fields.items():
        _context[name].set(value)


class Redactor(logging.Filter):
    """Masks secrets in a record's message (before any formatter sees it)."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        kept = {s for s in secrets if s and len(s) >= MIN_SECRET}
        self._secrets = sorted(kept, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        return True


def fields_of(record: logging.LogRecord) -> dict[str, str | None]:
    return {f: getattr(record, f, None) or _context[f].get() for f in FIELDS}


class JsonFormatter(logging.Formatter):
    def __init__(self, instance_id: str, redactor: Redactor) -> None:
        super().__init__()
        self._instance_id = instance_id
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
            "instance_id": self._instance_id,
            **fields_of(record),
        }
        if record.exc_info:
            entry["exception"] = self._redactor.redact(self.formatException(record.exc_info))
        return json.dumps(entry)


class PlainFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        about = " ".join(f"{k}={v}" for k, v in fields_of(record).items() if v)
        return self._redactor.redact(f"{line} [{about}]" if about else line)


def configure(log_format: str, level: str, instance_id: str, secrets: Iterable[str | None]) -> None:
    """Route every logger (uvicorn's included) through one redacting handler on stderr."""
    redactor = Redactor(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(redactor)
    formatter = JsonFormatter(instance_id, redactor) if log_format == "json" else None
    handler.setFormatter(formatter or PlainFormatter(redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())  # uvicorn registers TRACE
    verbose = level in ("debug", "trace")
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
