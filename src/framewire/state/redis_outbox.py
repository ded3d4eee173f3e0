"""The webhook outbox in Redis: durable across restarts, shared by every instance.

Keys: `framewire:outbox` (hash: delivery key -> JSON) and `framewire:outbox:due` (sorted set:
delivery key scored by the epoch milliseconds it is due). `take` runs one script that picks the
due keys and pushes their score a lease ahead, so concurrent instances never take the same
delivery; one whose taker died mid-attempt becomes due again when the lease runs out."""

from __future__ import annotations

import dataclasses
import json
import time

from redis.asyncio import Redis

from framewire.state.base import Delivery

ITEMS = "framewire:outbox"
DUE = "framewire:outbox:due"

TAKE = """
local keys = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, k in ipairs(keys) do
  local item = redis.call('HGET', KEYS[1], k)
  if item then
    redis.call('ZADD', KEYS[2], ARGV[3], k)
    table.insert(out, item)
  else
    redis.call('ZREM', KEYS[2], k)
  end
end
return out
"""


def ms(epoch: float) -> int:
    return int(epoch * 1000)


class RedisOutbox:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._take = redis.register_script(TAKE)

    async def _put(self, delivery: Delivery, at: float) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(ITEMS, delivery.key, json.dumps(dataclasses.asdict(delivery)))
            pipe.zadd(DUE, {delivery.key: ms(at)})
            await pipe.execute()

    async def add(self, delivery: Delivery) -> None:
        await self._put(delivery, time.time())

    async def take(self, limit: int, lease: float) -> list[Delivery]:
        now = time.time()
        items = await self._take(keys=[ITEMS, DUE], args=[ms(now), limit, ms(now + lease)])
        return [Delivery(**json.loads(item)) for item in items]

    async def retry(self, delivery: Delivery, at: float) -> None:
        await self._put(dataclasses.replace(delivery, attempts=delivery.attempts + 1), at)

    async def done(self, delivery: Delivery) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(ITEMS, delivery.key)
            pipe.zrem(DUE, delivery.key)
            await pipe.execute()
