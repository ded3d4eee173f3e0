"""A token bucket per client (bearer token id, else client IP): `rate` requests per second on
average, bursts of up to `burst`. Kept per proxy process; with N processes behind a load
balancer a client gets at most N times the rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

PRUNE_ABOVE = 10_000
"""Tracked clients before full (idle) buckets are forgotten: a full bucket equals a new one."""


@dataclass
class Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("the rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst = rate, float(burst)
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}

    def take(self, client: str) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[client] = Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        refill = self.burst / self.rate
        self._buckets = {
            k: b for k, b in self._buckets.items() if now - b.stamp < refill - b.tokens / self.rate
        }
