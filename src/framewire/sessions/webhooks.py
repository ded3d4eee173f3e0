"""Usage webhooks, signed as the Standard Webhooks specification says.

`Usage` writes each event (`session.created`, `session.generation_started`, `session.ended`)
to the outbox once per receiver; `WebhookSender` takes due deliveries from it and POSTs them,
retrying failures with exponential backoff until `retry_for` has passed since the event. The
`webhook-id` stays the same on every attempt; the timestamp and signature are made per attempt
(receivers reject stale timestamps). Neither side is awaited by the media path, and a control
request waits at most for one outbox write."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx

from framewire.sessions.record import iso
from framewire.state.base import Delivery, Outbox

log = logging.getLogger("framewire.webhooks")

REQUEST_TIMEOUT = 15.0
"""Seconds one attempt may take before it counts as failed."""
LEASE = REQUEST_TIMEOUT + 15.0
"""Seconds a taken delivery is hidden from other instances (longer than any attempt)."""
CONCURRENCY = 16
"""Attempts in flight at once, per instance."""
POLL = 1.0
"""Seconds between looks at the outbox when nothing woke the sender (retries, other instances'
events)."""
MAX_BACKOFF = 600.0


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed by the secret's base64 part."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class Usage:
    """Queues usage events for every receiver. A failing outbox is logged, never raised: billing
    data is then missing from the webhooks, but the session and its ledger go on."""

    def __init__(self, outbox: Outbox, urls: list[str], wake: Callable[[], None]) -> None:
        self._outbox = outbox
        self._urls = urls
        self._wake = wake

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        if not self._urls:
            return
        now = time.time()
        message_id = "msg_" + secrets.token_hex(12)
        body = json.dumps({"type": event, "timestamp": iso(now), "data": data})
        try:
            for index, url in enumerate(self._urls):
                delivery = Delivery(f"{message_id}.{index}", message_id, url, body, now)
                await self._outbox.add(delivery)
        except Exception as exc:  # the store's own errors (Redis away, ...)
            log.error("webhook %s %s not queued: %r", event, data.get("session_id"), exc)
            return
        self._wake()


class WebhookSender:
    """Delivers the outbox's due deliveries until stopped. With Redis, what it has not delivered
    when it stops stays in the outbox for the next instance (or this one restarted)."""

    def __init__(
        self,
        outbox: Outbox,
        secret: str,
        retry_for: float,
        backoff: float,
        on_attempt: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self._outbox = outbox
        self._secret = secret
        self._retry_for = retry_for
        self._backoff = backoff
        self._on_attempt = on_attempt
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._attempts: set[asyncio.Task[None]] = set()
        self._http = httpx.AsyncClient(timeout=REQUEST_TIMEOUT, follow_redirects=False)
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        """Set while nothing is due and no attempt is in flight."""

    def wake(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                taken = await self._outbox.take(self._free(), LEASE)
            except Exception as exc:  # the store's own errors: look again later
                log.warning("webhook outbox unreachable: %r", exc)
                taken = []
            if taken or self._attempts:
                self._idle.clear()
            else:
                self._idle.set()
            for delivery in taken:
                await self._slots.acquire()
                task = asyncio.get_running_loop().create_task(self._attempt(delivery))
                self._attempts.add(task)
                task.add_done_callback(self._attempts.discard)
            if not taken or self._free() == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), POLL)

    def _free(self) -> int:
        return max(1, CONCURRENCY - len(self._attempts))

    async def _attempt(self, delivery: Delivery) -> None:
        try:
            delivered = await self._post(delivery)
            self._on_attempt("delivered" if delivered else "failed")
            if delivered:
                await self._outbox.done(delivery)
                return
            delay = min(MAX_BACKOFF, self._backoff * 2**delivery.attempts)
            if time.time() + delay - delivery.created_at > self._retry_for:
                log.error(
                    "webhook %s to %s abandoned after %d attempts",
                    delivery.message_id,
                    delivery.url,
                    delivery.attempts + 1,
                )
                await self._outbox.done(delivery)
                return
            await self._outbox.retry(delivery, time.time() + delay)
            self._wakeup.set()
        except Exception as exc:  # the store failed: the lease runs out, it is taken again
            log.warning("webhook %s bookkeeping failed: %r", delivery.message_id, exc)
        finally:
            self._slots.release()

    async def _post(self, delivery: Delivery) -> bool:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(
                self._secret, delivery.message_id, timestamp, delivery.body
            ),
        }
        try:
            response = await self._http.post(delivery.url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("webhook %s to %s failed: %r", delivery.message_id, delivery.url, exc)
            return False
        if response.is_success:
            return True
        log.warning(
            "webhook %s to %s answered %d", delivery.message_id, delivery.url, response.status_code
        )
        return False

    async def stop(self, flush: float = 0.0) -> None:
        """Deliver what is due for up to `flush` seconds, then stop; attempts still in flight
        are cancelled (their leases run out and they are due again)."""
        if self._task is not None and flush > 0:
            self._idle.clear()
            self._wakeup.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), flush)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._attempts):
            task.cancel()
        await asyncio.gather(*self._attempts, return_exceptions=True)
        await self._http.aclose()
