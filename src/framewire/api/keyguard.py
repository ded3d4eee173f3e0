"""Failed authentications, limited per source address: a token bucket per client IP that each
401 drains. A source with an empty bucket gets 429 + Retry-After for any request that does not
carry a valid API key, answered before routing or reading the body, so a flood of wrong keys
costs the server little and never starves requests with good keys (from anywhere)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from framewire import errors
from framewire.api.auth import ApiKeys
from framewire.api.problems import problem
from framewire.config import Settings

MAX_SOURCES = 10_000
"""Source addresses remembered at once; the least recently failing are forgotten first."""


@dataclass
class Bucket:
    tokens: float
    at: float


class FailureBudget:
    """`burst` failures at once per source, refilled at `rate` per second."""

    def __init__(self, burst: int, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def _refilled(self, source: str, now: float) -> Bucket | None:
        bucket = self._buckets.get(source)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        return bucket

    def retry_after(self, source: str) -> int | None:
        """Seconds until `source` may fail again, or None when it may now."""
        bucket = self._refilled(source, time.monotonic())
        if bucket is None or bucket.tokens >= 1:
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def failed(self, source: str) -> None:
        now = time.monotonic()
        bucket = self._refilled(source, now) or Bucket(float(self.burst), now)
        bucket.tokens = max(0.0, bucket.tokens - 1)
        self._buckets[source] = bucket
        self._buckets.move_to_end(source)
        while len(self._buckets) > MAX_SOURCES:
            self._buckets.popitem(last=False)


class KeyGuard:
    """ASGI middleware: counts 401s per source and turns away exhausted sources early."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, budget: FailureBudget) -> None:
        self.app = app
        self.keys = keys
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("client"):
            await self.app(scope, receive, send)
            return
        source = str(scope["client"][0])
        presented = api_key(scope)
        if presented is not None and not self.keys.valid(presented):
            # a wrong key is refused here, before routing and before its body is read
            wait = self.budget.retry_after(source)
            self.budget.failed(source)
            error: errors.FramewireError = errors.Unauthorized("the API key is not valid")
            if wait is not None:
                error = too_many(wait)
            await problem(error, Request(scope))(scope, receive, send)
            return
        if presented is None and (wait := self.budget.retry_after(source)) is not None:
            await problem(too_many(wait), Request(scope))(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.budget.failed(source)
            await send(message)

        await self.app(scope, receive, counting)


def api_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return bytes(value).decode("latin-1")
    return None


def too_many(wait: int) -> errors.FramewireError:
    return errors.TooManyFailedAuthentications(
        f"too many requests with a missing or invalid API key from this address; "
        f"retry in {wait} s",
        headers={"Retry-After": str(wait)},
    )


def install(app: FastAPI, keys: ApiKeys, settings: Settings) -> None:
    budget = FailureBudget(settings.auth_failure_burst, settings.auth_failure_rate)
    app.add_middleware(KeyGuard, keys=keys, budget=budget)
