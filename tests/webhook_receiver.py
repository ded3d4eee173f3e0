"""A webhook receiver for tests: a real HTTP server on loopback that verifies every delivery with
the `standardwebhooks` library (the reference implementation receivers use), can fail or hang on
purpose, and de-duplicates by `webhook-id` as a receiver should."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.servers import running


def webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass
class Receiver:
    secret: str
    fail_first: int = 0
    """Answer 503 to this many attempts before accepting."""
    hang: float = 0.0
    """Seconds to hold every accepted delivery before answering."""
    attempts: list[str] = field(default_factory=list)
    """The webhook-id of every verified attempt, in arrival order (retries included)."""
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Accepted payloads by webhook-id: what a de-duplicating receiver keeps."""
    rejected: list[str] = field(default_factory=list)
    hanging: int = 0
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()
        verifier = Webhook(self.secret)

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = (await request.body()).decode()
            try:
                payload = verifier.verify(body, dict(request.headers))
            except WebhookVerificationError as exc:
                self.rejected.append(str(exc))
                return Response(status_code=400)
            message_id = request.headers["webhook-id"]
            self.attempts.append(message_id)
            if len(self.attempts) <= self.fail_first:
                return Response(status_code=503)
            if self.hang:
                self.hanging += 1
                await asyncio.sleep(self.hang)
            self.events.setdefault(message_id, payload)
            return Response(status_code=204)

        return app

    def settings(self) -> dict[str, Any]:
        """framewire settings that send this receiver the webhooks, retrying quickly."""
        return {"webhook_url": [self.url], "webhook_secret": self.secret, "webhook_backoff": 0.2}

    def of(self, event: str, session_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events.values()
            if e["type"] == event and session_id in (None, e["data"]["session_id"])
        ]

    async def wait_for(
        self, event: str, session_id: str | None = None, count: int = 1, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(found := self.of(event, session_id)) < count:
            assert time.monotonic() < deadline, f"no {event} for {session_id}: {self.events}"
            await asyncio.sleep(0.05)
        return found


@contextlib.asynccontextmanager
async def receiver(**options: Any) -> AsyncIterator[Receiver]:
    hooks = Receiver(webhook_secret(), **options)
    async with running(hooks.app()) as server:
        hooks.url = server.url + "/hook"
        yield hooks
