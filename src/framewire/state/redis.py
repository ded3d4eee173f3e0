"""Shared state in Redis: several `framewire serve` processes act as one service.

Keys, all under `framewire:`:
- `session:{id}`: the record as JSON; an ended record carries the retention as its TTL.
- `owned:{instance}`: sorted set of the instance's session ids scored by their records' expiry
  (+inf while active), so it sheds expired ids and vanishes with its last record.
- Billing (`charge`, `settle`) runs as Lua scripts, each one atomic step that first checks the
  session's fencing token: the stored record must be active with the writer's `epoch`. So an
  owner that stalled past its heartbeat TTL while a survivor settled its session can neither
  charge nor write when it wakes, and a session is settled (charged, summarised, its end events
  appended) exactly once, whichever instances race for it.
- `events:{id}`: one Stream per session whose entry ids are `N-0`, N being the SSE event id, so
  `XREAD BLOCK ... {after}-0` replays then tails. A Lua script numbers appends, so concurrent
  appenders get consecutive ids in order. The key expires after the retention.
- `commands:{instance}`, `request:{rid}`, `reply:{rid}`: the command bus, on lists rather than
  pub/sub. A request is its JSON, a newline, then its binary payload as raw bytes. A request
  waits in the owner's list (BLPOP) even while the owner reconnects; its body
  expires with the caller's timeout, so an owner that pops it late skips it; the caller BLPOPs
  its reply list with that timeout, and an unread reply expires too.
- `credit`, `slots`: hashes by key id (HINCRBYFLOAT in the billing scripts, only for a limited
  balance; a Lua script for "acquire within the limit").
- `beat:{instance}` (a key with the heartbeat TTL) and `instances` (instance -> last beat).

Blocking calls (XREAD BLOCK, BLPOP) run on a client of their own whose sockets have no read
timeout, each bounded by its own wait, so they never hold a connection other commands need.
Nothing is retried automatically: a charge or an append must not be applied twice. Every
`RedisError` leaves the adapter as the port's `StateUnavailable`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import KeyT, StreamIdT

from framewire.state.base import CommandHandler, Event, Fenced, Record, StateUnavailable

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


PUT_RECORD = """
local function put_record(record_key, owned_key, record, ttl, session_id)
  if ttl then
    redis.call('SET', record_key, record, 'PX', ttl)
  else
    redis.call('SET', record_key, record)
  end
  if owned_key then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('ZADD', owned_key, ttl and (now + ttl) or '+inf', session_id)
    redis.call('ZREMRANGEBYSCORE', owned_key, '-inf', now)
    local top = redis.call('ZRANGE', owned_key, -1, -1, 'WITHSCORES')
    if top[2] == 'inf' then
      redis.call('PERSIST', owned_key)
    else
      redis.call('PEXPIREAT', owned_key, top[2])
    end
  end
end
"""
"""Store a record (TTL or none) and index it under its owner, scored by its expiry."""

PUT = PUT_RECORD + "put_record(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), ARGV[3])"

APPEND_EVENT = """
local function append_event(stream, event, data)
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  local id = 1
  if last[1] then
    id = tonumber(string.match(last[1][1], '^%d+')) + 1
  end
  redis.call('XADD', stream, id .. '-0', 'event', event, 'data', data)
  return id
end
"""
"""Append an event as entry `N-0`, N one more than the last entry's."""


HOLDS = """
local function holds(record_key, epoch)
  local stored = redis.call('GET', record_key)
  if not stored then
    return nil
  end
  local record = cjson.decode(stored)
  if record.status ~= 'active' or record.epoch ~= tonumber(epoch) then
    return nil
  end
  return record
end
"""
"""The fence: the stored record, if it is active and has the writer's epoch; else nil."""

APPEND = (
    HOLDS
    + APPEND_EVENT
    + """
if ARGV[3] ~= '' and not holds(KEYS[2], ARGV[3]) then
  return 0
end
return append_event(KEYS[1], ARGV[1], ARGV[2])
"""
)
"""Append an event; with an epoch (ARGV[3]), only while the owner holds the session."""

UPDATE = (
    HOLDS
    + """
if not holds(KEYS[1], ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
)
"""The owner's write of its active record, fenced."""

BILL = """
local function bill(credit_key, key_id, change, unlimited)
  local balance = redis.call('HGET', credit_key, key_id)
  if not balance or balance == unlimited then
    return nil
  end
  return redis.call('HINCRBYFLOAT', credit_key, key_id, change)
end

local function release_slot(slots_key, key_id)
  local held = tonumber(redis.call('HGET', slots_key, key_id) or '0')
  if held > 0 then
    redis.call('HINCRBY', slots_key, key_id, -1)
  end
end
"""
"""Add `change` to a limited balance (nil for an unlimited or unknown account); give a slot back."""

CHARGE_SESSION = (
    HOLDS
    + BILL
    + """
if not holds(KEYS[1], ARGV[2]) then
  return {0}
end
redis.call('SET', KEYS[1], ARGV[1])
return {1, bill(KEYS[2], ARGV[3], ARGV[4], ARGV[5])}
"""
)
"""A tick's charge: the record (with what it has charged) and the ledger, fenced."""

SETTLE = (
    HOLDS
    + BILL
    + PUT_RECORD
    + APPEND_EVENT
    + """
local stored = holds(KEYS[1], ARGV[2])
if not stored then
  return false
end
local delta = tonumber(ARGV[4]) - (tonumber(stored.charged) or 0)
local remaining = bill(KEYS[3], ARGV[3], string.format('%.17g', -delta), ARGV[5]) or 'null'
release_slot(KEYS[4], ARGV[3])
local final = string.sub(ARGV[1], 1, -2) .. ', "credits_remaining": ' .. remaining .. '}'
put_record(KEYS[1], KEYS[2], final, tonumber(ARGV[6]), ARGV[7])
for i = 8, #ARGV, 2 do
  append_event(KEYS[5], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[5], ARGV[6])
return final
"""
)
"""The one settlement: fence, charge the rest, release the slot, store the final record with
its balance, append the end events, expire them; all or nothing."""

ACQUIRE = """
local held = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if held >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
"""

RELEASE = BILL + "release_slot(KEYS[1], ARGV[1])"

FORGET = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
"""
"""Forget an instance unless it beat again meanwhile."""


class CommandFailed(RuntimeError):
    """The owner's handler raised; its error, as text, reaches the caller."""


P = ParamSpec("P")
T = TypeVar("T")


def unavailable(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """The port's error for a Redis failure, so no layer above `state/` sees redis-py."""

    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except RedisError as exc:
            raise StateUnavailable(f"Redis: {exc}") from exc

    return translated


def ports_raise_unavailable(cls: type[T]) -> type[T]:
    """Apply `unavailable` to every public coroutine method of an adapter class."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and asyncio.iscoroutinefunction(member):
            setattr(cls, name, unavailable(member))
    return cls


@ports_raise_unavailable
class RedisSessionStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._put = redis.register_script(PUT)
        self._update = redis.register_script(UPDATE)

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

    async def update(self, session_id: str, record: Record) -> None:
        stored = await self._update(
            keys=[key("session", session_id)], args=[json.dumps(record), record["epoch"]]
        )
        if not stored:
            raise Fenced(session_id)

    async def ids_owned_by(self, instance_id: str) -> list[str]:
        ids = cast(list[str], await self._redis.zrange(key("owned", instance_id), 0, -1))
        if not ids:
            return []
        records = await self._redis.mget([key("session", i) for i in ids])
        return [i for i, record in zip(ids, records, strict=True) if record is not None]


@ports_raise_unavailable
class RedisEventLog:
    def __init__(self, redis: Redis, blocking: Redis) -> None:
        self._redis = redis
        self._blocking = blocking
        self._append = redis.register_script(APPEND)

    async def append(self, session_id: str, event: str, data: Any, epoch: int | None = None) -> int:
        new_id = await self._append(
            keys=[key("events", session_id), key("session", session_id)],
            args=[event, json.dumps(data), "" if epoch is None else epoch],
        )
        if not new_id:
            raise Fenced(session_id)
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


@ports_raise_unavailable
class RedisCommandBus:
    def __init__(self, redis: Redis, blocking: Redis, raw: Redis) -> None:
        self._redis = redis
        self._blocking = blocking
        self._raw = raw
        """A client without response decoding: requests carry their payload as bytes."""
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
                body = await self._raw.getdel(key("request", request_id))
            except (RedisError, TimeoutError) as exc:
                log.warning("command bus of %s: %s; listening again", instance_id, exc)
                await asyncio.sleep(RECONNECT_PAUSE)
                continue
            if body is None:
                continue  # the caller gave up and its request expired
            header, _, blob = cast(bytes, body).partition(b"\n")
            task = asyncio.get_running_loop().create_task(
                self._answer(request_id, json.loads(header), blob, handler)
            )
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def _answer(
        self, request_id: str, request: Record, blob: bytes, handler: CommandHandler
    ) -> None:
        try:
            reply: Record = {"reply": await handler(request["command"], blob)}
        except Exception as exc:  # a handler bug reaches the caller, as it does in memory
            log.exception("command %s failed", request["command"].get("kind"))
            reply = {"failed": f"{type(exc).__name__}: {exc}"}
        reply_key = key("reply", request_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(reply_key, json.dumps(reply))
                pipe.pexpire(reply_key, request["ttl_ms"])
                await pipe.execute()
        except RedisError as exc:  # the caller will time out and answer 503
            log.warning("reply to command %s lost: %s", request_id, exc)

    async def call(
        self, instance_id: str, command: Record, timeout: float, blob: bytes = b""
    ) -> Record:
        request_id = secrets.token_hex(12)
        ttl_ms = milliseconds(timeout)
        queue = key("commands", instance_id)
        header = json.dumps({"command": command, "ttl_ms": ttl_ms}).encode()
        async with self._raw.pipeline(transaction=True) as pipe:
            pipe.set(key("request", request_id), header + b"\n" + blob, px=ttl_ms)
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


@ports_raise_unavailable
class RedisAccounts:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._acquire = redis.register_script(ACQUIRE)
        self._release = redis.register_script(RELEASE)

    async def ensure(self, key_id: str, credit: float | None) -> None:
        await self._redis.hsetnx(
            key("credit"), key_id, UNLIMITED if credit is None else repr(credit)
        )

    async def balance(self, key_id: str) -> float | None:
        value = await self._redis.hget(key("credit"), key_id)
        return None if value is None or value == UNLIMITED else float(value)

    async def acquire_slot(self, key_id: str, limit: int) -> bool:
        return bool(await self._acquire(keys=[key("slots")], args=[key_id, limit]))

    async def release_slot(self, key_id: str) -> None:
        await self._release(keys=[key("slots")], args=[key_id])


@ports_raise_unavailable
class RedisLedger:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._charge = redis.register_script(CHARGE_SESSION)
        self._settle = redis.register_script(SETTLE)

    async def charge(self, record: Record, seconds: float) -> float | None:
        reply = await self._charge(
            keys=[key("session", record["session_id"]), key("credit")],
            args=[json.dumps(record), record["epoch"], record["key_id"], repr(-seconds), UNLIMITED],
        )
        if not reply[0]:
            raise Fenced(record["session_id"])
        return float(reply[1]) if len(reply) > 1 else None

    async def settle(
        self, record: Record, ttl: float, events: list[tuple[str, Any]]
    ) -> Record | None:
        session_id = record["session_id"]
        final = {k: v for k, v in record.items() if k != "credits_remaining"}
        final["epoch"] = record["epoch"] + 1
        keys = [
            key("session", session_id),
            key("owned", str(record["owner"])),
            key("credit"),
            key("slots"),
            key("events", session_id),
        ]
        args: list[Any] = [json.dumps(final), record["epoch"], record["key_id"]]
        args += [repr(record["seconds"]), UNLIMITED, milliseconds(ttl), session_id]
        for event, data in events:
            args += [event, json.dumps(data)]
        settled = await self._settle(keys=keys, args=args)
        if settled is None:
            return None
        result: Record = json.loads(settled)
        return result


@ports_raise_unavailable
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
        self._raw = Redis.from_url(url, retry=no_retry)
        self.sessions = RedisSessionStore(self._redis)
        self.events = RedisEventLog(self._redis, self._blocking)
        self.commands = RedisCommandBus(self._redis, self._blocking, self._raw)
        self.ledger = RedisLedger(self._redis)
        self.accounts = RedisAccounts(self._redis)
        self.heartbeats = RedisHeartbeats(self._redis)

    async def close(self) -> None:
        await self.commands.stop()
        await self._blocking.aclose()
        await self._raw.aclose()
        await self._redis.aclose()
