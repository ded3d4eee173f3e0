"""Shared state in Redis: several `framewire serve` processes act as one service (SPEC.md §4).

Keys, all under `framewire:`:
- `session:{id}`: the record as JSON; an ended record carries the retention as its TTL.
- `owned:{instance}`: sorted set of the instance's session ids scored by their records' expiry
  (+inf while active), so it sheds expired ids and vanishes with its last record.
- `claim:{id}`: who settles a session whose owner died (SET NX).
- `events:{id}`: one Stream per session whose entry ids are `N-0`, N being the SSE event id, so
  `XREAD BLOCK ... {after}-0` replays then tails. A Lua script numbers appends, so concurrent
  appenders get consecutive ids in order. The key expires after the retention.
- `commands:{instance}`, `request:{rid}`, `reply:{rid}`: the command bus, on lists rather than
  pub/sub. A request waits in the owner's list (BLPOP) even while the owner reconnects; its body
  expires with the caller's timeout, so an owner that pops it late skips it; the caller BLPOPs
  its reply list with that timeout, and an unread reply expires too.
- `credit`, `slots`: hashes by key id (HINCRBYFLOAT; Lua scripts for "only if limited" and for
  "acquire within the limit").
- `beat:{instance}` (a key with the heartbeat TTL) and `instances` (instance -> last beat).

Blocking calls (XREAD BLOCK, BLPOP) run on a client of their own whose sockets have no read
timeout, each bounded by its own wait, so they never hold a connection other commands need.
Nothing is retried automatically: a charge or an append must not be applied twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import KeyT, StreamIdT

from framewire.state.base import CommandHandler, Event, Record
from framewire.state.redis_outbox import RedisOutbox

log = logging.getLogger("framewire.state.redis")

PREFIX = "framewire:"
UNLIMITED = "unlimited"
BLOCKING_GRACE = 5.0
"""Seconds a blocking call may overrun its server-side timeout before it is abandoned."""
SERVE_POLL = 5.0
"""Server-side timeout of the command server's BLPOP, re-issued in a loop."""
RECONNECT_PAUSE = 1.0
"""Pause of the command server after a Redis error, before it listens again."""


def key(*parts: str) -> str:
    return PREFIX + ":".join(parts)


def milliseconds(seconds: float) -> int:
    """Redis wants whole, positive milliseconds."""
    return max(1, math.ceil(seconds * 1000))


PUT = """
local ttl = tonumber(ARGV[2])
if ttl then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if KEYS[2] then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[2], ttl and (now + ttl) or '+inf', ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if top[2] == 'inf' then
    redis.call('PERSIST', KEYS[2])
  else
    redis.call('PEXPIREAT', KEYS[2], top[2])
  end
end
"""
"""Store a record (TTL or none) and index it under its owner, scored by its expiry."""

APPEND = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id = 1
if last[1] then
  id = tonumber(string.match(last[1][1], '^%d+')) + 1
end
redis.call('XADD', KEYS[1], id .. '-0', 'event', ARGV[1], 'data', ARGV[2])
return id
"""
"""Append an event as entry `N-0`, N one more than the last entry's."""

CHARGE = """
local balance = redis.call('HGET', KEYS[1], ARGV[1])
if not balance or balance == ARGV[3] then
  return false
end
return redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1], ARGV[2])
"""
"""Add ARGV[2] to a limited balance; nil for an unlimited (or unknown) account."""

ACQUIRE = """
local held = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if held >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
"""

RELEASE = """
local held = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if held > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
end
"""

FORGET = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
"""
"""Forget an instance unless it beat again meanwhile."""


class CommandFailed(RuntimeError):
    """The owner's handler raised; its error, as text, reaches the caller."""


class RedisSessionStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._put = redis.register_script(PUT)

    async def get(self, session_id: str) -> Record | None:
        data = await self._redis.get(key("session", session_id))
        if data is None:
            return None
        record: Record = json.loads(data)
        return record

    async def put(self, session_id: str, record: Record, ttl: float | None = None) -> None:
        keys = [key("session", session_id)]
        if record.get("owner"):
            keys.append(key("owned", str(record["owner"])))
        ttl_arg = "" if ttl is None else str(milliseconds(ttl))
        await self._put(keys=keys, args=[json.dumps(record), ttl_arg, session_id])

    async def ids_owned_by(self, instance_id: str) -> list[str]:
        ids = cast(list[str], await self._redis.zrange(key("owned", instance_id), 0, -1))
        if not ids:
            return []
        records = await self._redis.mget([key("session", i) for i in ids])
        return [i for i, record in zip(ids, records, strict=True) if record is not None]

    async def claim(self, session_id: str, ttl: float) -> bool:
        claimed = await self._redis.set(
            key("claim", session_id), "1", nx=True, px=milliseconds(ttl)
        )
        return bool(claimed)


class RedisEventLog:
    def __init__(self, redis: Redis, blocking: Redis) -> None:
        self._redis = redis
        self._blocking = blocking
        self._append = redis.register_script(APPEND)

    async def append(self, session_id: str, event: str, data: Any) -> int:
        new_id = await self._append(
            keys=[key("events", session_id)], args=[event, json.dumps(data)]
        )
        return int(new_id)

    async def read(self, session_id: str, after: int, wait: float) -> list[Event]:
        streams: dict[KeyT, StreamIdT] = {key("events", session_id): f"{max(0, after)}-0"}
        if wait <= 0:
            reply = await self._redis.xread(streams)
        else:
            async with asyncio.timeout(wait + BLOCKING_GRACE):
                reply = await self._blocking.xread(streams, block=milliseconds(wait))
        return [
            Event(int(entry_id.partition("-")[0]), fields["event"], json.loads(fields["data"]))
            for _, entries in cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], reply)
            for entry_id, fields in entries
        ]

    async def expire(self, session_id: str, ttl: float) -> None:
        await self._redis.pexpire(key("events", session_id), milliseconds(ttl))


class RedisCommandBus:
    def __init__(self, redis: Redis, blocking: Redis) -> None:
        self._redis = redis
        self._blocking = blocking
        self._serving: list[asyncio.Task[None]] = []
        self._answering: set[asyncio.Task[None]] = set()

    async def serve(self, instance_id: str, handler: CommandHandler) -> None:
        loop = asyncio.get_running_loop()
        self._serving.append(loop.create_task(self._serve(instance_id, handler)))

    async def _serve(self, instance_id: str, handler: CommandHandler) -> None:
        """Pop request ids for this instance and answer each in a task of its own, so a slow
        command never delays the next one."""
        queue = key("commands", instance_id)
        while True:
            try:
                async with asyncio.timeout(SERVE_POLL + BLOCKING_GRACE):
                    popped = await self._pop(queue, SERVE_POLL)
                if popped is None:
                    continue
                request_id = popped[1]
                body = await self._redis.getdel(key("request", request_id))
            except (RedisError, TimeoutError) as exc:
                log.warning("command bus of %s: %s; listening again", instance_id, exc)
                await asyncio.sleep(RECONNECT_PAUSE)
                continue
            if body is None:
                continue  # the caller gave up and its request expired
            task = asyncio.get_running_loop().create_task(
                self._answer(request_id, json.loads(body), handler)
            )
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def _answer(self, request_id: str, request: Record, handler: CommandHandler) -> None:
        try:
            reply: Record = {"reply": await handler(request["command"])}
        except Exception as exc:  # a handler bug reaches the caller, as it does in memory
            log.exception("command %s failed", request["command"].get("op"))
            reply = {"failed": f"{type(exc).__name__}: {exc}"}
        reply_key = key("reply", request_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(reply_key, json.dumps(reply))
                pipe.pexpire(reply_key, request["ttl_ms"])
                await pipe.execute()
        except RedisError as exc:  # the caller will time out and answer 503
            log.warning("reply to command %s lost: %s", request_id, exc)

    async def call(self, instance_id: str, command: Record, timeout: float) -> Record:
        request_id = secrets.token_hex(12)
        ttl_ms = milliseconds(timeout)
        queue = key("commands", instance_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(
                key("request", request_id),
                json.dumps({"command": command, "ttl_ms": ttl_ms}),
                px=ttl_ms,
            )
            pipe.rpush(queue, request_id)
            pipe.pexpire(queue, ttl_ms, nx=True)  # a new queue: expire with this request
            pipe.pexpire(queue, ttl_ms, gt=True)  # never cut short an older, longer request
            await pipe.execute()
        async with asyncio.timeout(timeout + BLOCKING_GRACE):
            popped = await self._pop(key("reply", request_id), ttl_ms / 1000)
        if popped is None:
            raise TimeoutError(f"instance {instance_id} did not answer within {timeout} s")
        reply: Record = json.loads(popped[1])
        if "failed" in reply:
            raise CommandFailed(f"instance {instance_id}: {reply['failed']}")
        answer: Record = reply["reply"]
        return answer

    async def _pop(self, list_key: str, timeout: float) -> tuple[str, str] | None:
        """BLPOP one list for up to `timeout` seconds (on the blocking client)."""
        return cast(tuple[str, str] | None, await self._blocking.blpop([list_key], timeout))

    async def stop(self) -> None:
        tasks = [*self._serving, *self._answering]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._serving.clear()


class RedisAccounts:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._charge = redis.register_script(CHARGE)
        self._acquire = redis.register_script(ACQUIRE)
        self._release = redis.register_script(RELEASE)

    async def ensure(self, key_id: str, credit: float | None) -> None:
        await self._redis.hsetnx(
            key("credit"), key_id, UNLIMITED if credit is None else repr(credit)
        )

    async def balance(self, key_id: str) -> float | None:
        value = await self._redis.hget(key("credit"), key_id)
        return None if value is None or value == UNLIMITED else float(value)

    async def charge(self, key_id: str, seconds: float) -> float | None:
        remaining = await self._charge(
            keys=[key("credit")], args=[key_id, repr(-seconds), UNLIMITED]
        )
        return None if remaining is None else float(remaining)

    async def acquire_slot(self, key_id: str, limit: int) -> bool:
        return bool(await self._acquire(keys=[key("slots")], args=[key_id, limit]))

    async def release_slot(self, key_id: str) -> None:
        await self._release(keys=[key("slots")], args=[key_id])


class RedisHeartbeats:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._forget = redis.register_script(FORGET)

    async def beat(self, instance_id: str, ttl: float) -> None:
        now = repr(time.time())
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key("beat", instance_id), now, px=milliseconds(ttl))
            pipe.hset(key("instances"), instance_id, now)
            await pipe.execute()

    async def alive(self, instance_id: str) -> bool:
        return bool(await self._redis.exists(key("beat", instance_id)))

    async def _known(self) -> list[tuple[str, float, bool]]:
        """Every known instance with its last beat and whether it is alive."""
        known = cast(dict[str, str], await self._redis.hgetall(key("instances")))
        if not known:
            return []
        beating = await self._redis.mget([key("beat", i) for i in known])
        return [
            (i, float(at), beat is not None)
            for (i, at), beat in zip(known.items(), beating, strict=True)
        ]

    async def instances(self) -> list[str]:
        return sorted(i for i, _, alive in await self._known() if alive)

    async def departed(self) -> dict[str, float]:
        return {i: at for i, at, alive in await self._known() if not alive}

    async def forget(self, instance_id: str) -> None:
        await self._forget(keys=[key("beat", instance_id), key("instances")], args=[instance_id])


class RedisState:
    """All ports on one Redis (`FRAMEWIRE_REDIS_URL`); one per instance, closed at shutdown."""

    def __init__(self, url: str) -> None:
        no_retry = Retry(NoBackoff(), 0)
        self._redis = Redis.from_url(url, decode_responses=True, retry=no_retry)
        self._blocking = Redis.from_url(
            url, decode_responses=True, retry=no_retry, socket_timeout=None
        )
        self.sessions = RedisSessionStore(self._redis)
        self.events = RedisEventLog(self._redis, self._blocking)
        self.commands = RedisCommandBus(self._redis, self._blocking)
        self.accounts = RedisAccounts(self._redis)
        self.heartbeats = RedisHeartbeats(self._redis)
        self.outbox = RedisOutbox(self._redis)

    async def close(self) -> None:
        await self.commands.stop()
        await self._blocking.aclose()
        await self._redis.aclose()
