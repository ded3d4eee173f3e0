"""The session domain: create, control, observe and end realtime sessions.

Any instance answers any request: it reads the record from the shared store and, when another
instance owns the session's leg, forwards the operation over the command bus."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from framewire import errors
from framewire.media.leg import Leg, LegFailed
from framewire.media.legs import CapacityFull, Legs
from framewire.media.restart import RestartConflict, with_ice_credentials
from framewire.media.signaling import InvalidCandidate, InvalidOffer, parse_candidate
from framewire.models.base import Frame
from framewire.models.registry import UnknownModel
from framewire.policy import base as policy
from framewire.sessions.live import END_PROBLEMS, LiveSession, Timings
from framewire.sessions.record import SessionRecord
from framewire.sessions.tokens import EventTokens
from framewire.state.base import Accounts, CommandBus, EventLog, Heartbeats, Record, SessionStore

COMMAND_TIMEOUT = 10.0
ORPHAN_CLAIM_TTL = 60.0
"""Seconds one instance holds the right to settle a dead owner's session."""
ORPHAN_POLL = 0.1
RETRY_AFTER_CAPACITY = "5"
RETRY_AFTER_KEY_LIMIT = "10"


@dataclass
class Ports:
    sessions: SessionStore
    events: EventLog
    commands: CommandBus
    accounts: Accounts
    heartbeats: Heartbeats


@dataclass
class Limits:
    max_duration: float
    max_sessions: int
    key_concurrency: int
    tick_interval: float
    inactivity_timeout: float
    retention: float


@dataclass
class Created:
    record: SessionRecord
    answer_sdp: str
    event_token: str


@dataclass
class Patched:
    """A PATCH's outcome: the ETag now current, and the answer when it restarted ICE."""

    etag: str
    answer_sdp: str | None = None


def new_etag() -> str:
    return f'"ice-{secrets.token_hex(8)}"'


class SessionService:
    def __init__(
        self,
        instance_id: str,
        ports: Ports,
        legs: Legs,
        moderator: policy.Moderator,
        enhancer: policy.PromptEnhancer,
        tokens: EventTokens,
        limits: Limits,
    ) -> None:
        self.instance_id = instance_id
        self.ports = ports
        self.legs = legs
        self.moderator = moderator
        self.enhancer = enhancer
        self.tokens = tokens
        self.limits = limits
        self.live: dict[str, LiveSession] = {}
        self.extra_ops: dict[str, Callable[[LiveSession, Record], Awaitable[Record]]] = {}
        """Owner-side operations other modules add (WHEP viewers), run like the ones here."""

    async def start(self) -> None:
        await self._end_orphans_of(self.instance_id)  # left by a previous run under this id
        await self.ports.commands.serve(self.instance_id, self._handle_command)

    async def stop(self) -> None:
        """End every session this instance owns (reason `error`: the server went away)."""
        await asyncio.gather(*(s.end("error") for s in list(self.live.values())))
        await self.ports.commands.stop()

    # content ----------------------------------------------------------------------------

    def check_prompt(self, prompt: str, enhance: bool, model_id: str) -> str:
        """Moderate a prompt; return the text the model gets."""
        try:
            self.moderator.check_prompt(prompt)
        except policy.ContentRejected as exc:
            raise errors.ModerationRejected(exc.detail) from exc
        if not enhance:
            return prompt
        return self.enhancer.enhance(prompt, self.legs.registry.get(model_id))

    async def check_image(self, data: bytes, model_id: str) -> Frame:
        """Vet and decode a reference image, in a worker thread: a large image takes
        hundreds of milliseconds to decode, which the event loop (and every session's media
        on it) must not wait for."""
        if not self.legs.registry.get(model_id).accepts_image:
            raise errors.Unprocessable(f"model {model_id!r} does not take a reference image")
        try:
            return await asyncio.to_thread(self.moderator.decode_image, data)
        except policy.InvalidImage as exc:
            raise errors.InvalidImage(exc.detail) from exc
        except policy.ContentRejected as exc:
            raise errors.ModerationRejected(exc.detail) from exc

    # create -----------------------------------------------------------------------------

    async def create(
        self,
        key_id: str,
        model_id: str,
        offer_sdp: str,
        prompt: str | None,
        enhance_prompt: bool,
        image: bytes | None,
    ) -> Created:
        try:
            self.legs.registry.get(model_id)
        except UnknownModel:
            known = ", ".join(s.id for s in self.legs.registry.specs())
            raise errors.UnsupportedModel(
                f"unknown model {model_id!r}; available: {known}"
            ) from None
        enhanced = self.check_prompt(prompt, enhance_prompt, model_id) if prompt else None
        frame = await self.check_image(image, model_id) if image is not None else None
        try:
            with self.legs.reserve(self.limits.max_sessions):
                leg, answer, balance = await self._open_leg(
                    key_id, model_id, offer_sdp, enhanced, frame
                )
        except CapacityFull as exc:
            raise errors.ServiceUnavailable(
                str(exc), headers={"Retry-After": RETRY_AFTER_CAPACITY}
            ) from None
        now = time.time()
        record = SessionRecord(
            session_id="rs_" + secrets.token_hex(12),
            key_id=key_id,
            model=model_id,
            owner=self.instance_id,
            leg_id=leg.id,
            etag=new_etag(),
            remote_ufrag=ice_ufrag(offer_sdp),
            expires_at=now + self.limits.max_duration,
            prompt=prompt,
            enhanced_prompt=enhanced,
            enhance_prompt=enhance_prompt,
            has_image=frame is not None,
            created_at=now,
        )
        live = LiveSession(
            record,
            leg,
            self.ports.sessions,
            self.ports.events,
            self.ports.accounts,
            Timings(
                self.limits.tick_interval,
                self.limits.inactivity_timeout,
                self.limits.retention,
                self.legs.ice.disconnect_grace,
                self.legs.ice.restart_timeout,
            ),
            self._closed,
            ice_servers=lambda: self.ice_servers(record),
        )
        live.balance_at_start = balance
        self.live[record.session_id] = live
        await self.ports.sessions.put(record.session_id, record.to_dict())
        live.start()
        return Created(record, answer, self.event_token(record))

    async def _open_leg(
        self, key_id: str, model_id: str, offer_sdp: str, prompt: str | None, image: Frame | None
    ) -> tuple[Leg, str, float | None]:
        """Take one of the key's concurrency slots and open the session's leg; on any failure
        the slot is given back. Returns the leg, its answer and the key's balance."""
        balance = await self.ports.accounts.balance(key_id)
        if balance is not None and balance <= 0:
            raise errors.InsufficientCredits("this API key has no generation-seconds left")
        if not await self.ports.accounts.acquire_slot(key_id, self.limits.key_concurrency):
            raise errors.TooManySessions(
                f"this API key already has {self.limits.key_concurrency} active sessions",
                headers={"Retry-After": RETRY_AFTER_KEY_LIMIT},
            )
        try:
            leg, answer = await self.legs.open(offer_sdp, model_id, prompt, image)
        except BaseException as exc:
            await self.ports.accounts.release_slot(key_id)
            if isinstance(exc, InvalidOffer):
                raise errors.InvalidSdp(str(exc)) from exc
            if isinstance(exc, LegFailed):
                raise errors.FramewireError(str(exc)) from exc
            raise
        return leg, answer, balance

    async def _closed(self, live: LiveSession) -> None:
        self.live.pop(live.record.session_id, None)
        await self.legs.close(live.leg.id)

    def event_token(self, record: SessionRecord) -> str:
        return self.tokens.issue(record.session_id, record.expires_at)

    def ice_servers(self, record: SessionRecord) -> list[dict[str, Any]]:
        """The session's `ice_servers`: the configured ones, plus the TURN relay with
        credentials for this session that expire when it does."""
        turn = self.legs.ice.turn
        extra = [turn.ice_server(record.session_id, record.expires_at)] if turn else []
        return self.legs.ice.servers + extra

    # read -------------------------------------------------------------------------------

    async def find(self, session_id: str, key_id: str | None) -> SessionRecord:
        """The session's record; 404 when unknown, expired, or another key's."""
        data = await self.ports.sessions.get(session_id)
        if data is None:
            raise errors.NotFound(f"no session {session_id!r}")
        record = SessionRecord.from_dict(data)
        if key_id is not None and record.key_id != key_id:
            raise errors.NotFound(f"no session {session_id!r}")
        if not record.ended and record.owner != self.instance_id:
            if not await self.ports.heartbeats.alive(record.owner):
                record = await self._end_orphan(record)
        return record

    async def sweep_orphans(self) -> None:
        """End the sessions of every instance whose heartbeat expired, then forget it."""
        for instance in await self.ports.heartbeats.departed():
            if instance == self.instance_id:
                continue
            await self._end_orphans_of(instance)
            await self.ports.heartbeats.forget(instance)

    async def _end_orphans_of(self, instance: str) -> None:
        """End the sessions recorded as `instance`'s that are still active; it holds none."""
        for session_id in await self.ports.sessions.ids_owned_by(instance):
            data = await self.ports.sessions.get(session_id)
            if data is not None and data["status"] != "ended":
                await self._end_orphan(SessionRecord.from_dict(data))

    async def _end_orphan(self, record: SessionRecord) -> SessionRecord:
        """The owner instance died: settle its session here (once, whichever instance claims
        it) with reason `error`. It ends at the owner's last heartbeat, or later if the owner
        had charged or shown (in a tick) more; the ledger gets what the owner had not charged.
        With no heartbeat to go by, it ends at that last proof of generation."""
        if not await self.ports.sessions.claim(record.session_id, ORPHAN_CLAIM_TTL):
            return await self._settled_elsewhere(record)
        now = time.time()
        died_at = (await self.ports.heartbeats.departed()).get(record.owner, 0.0)
        if record.started_at is None:
            floor = record.created_at
        else:
            shown = await self._last_tick(record.session_id)
            floor = record.started_at + max(record.charged, shown)
        record.status, record.reason = "ended", "error"
        record.ended_at = min(now, max(died_at, floor))
        record.seconds = record.generation_seconds()
        remaining = await self.ports.accounts.charge(record.key_id, record.seconds - record.charged)
        record.charged = record.credits_charged = record.seconds
        record.credits_remaining = None if remaining is None else round(max(0.0, remaining), 3)
        await self.ports.accounts.release_slot(record.key_id)
        await self.ports.sessions.put(
            record.session_id, record.to_dict(), ttl=self.limits.retention
        )
        await self.ports.events.append(record.session_id, "error", END_PROBLEMS["error"])
        await self.ports.events.append(
            record.session_id, "generation_ended", {"seconds": record.seconds, "reason": "error"}
        )
        await self.ports.events.expire(record.session_id, self.limits.retention)
        return record

    async def _last_tick(self, session_id: str) -> float:
        """The largest `generation_tick` the session's clients were shown."""
        events = await self.ports.events.read(session_id, 0, wait=0)
        ticks = [float(e.data["seconds"]) for e in events if e.event == "generation_tick"]
        return max(ticks, default=0.0)

    async def _settled_elsewhere(self, record: SessionRecord) -> SessionRecord:
        """Another instance claimed this orphan: wait (bounded) for the record it settles."""
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while time.monotonic() < deadline:
            data = await self.ports.sessions.get(record.session_id)
            if data is not None and data["status"] == "ended":
                return SessionRecord.from_dict(data)
            await asyncio.sleep(ORPHAN_POLL)
        return record

    async def active(self, session_id: str, key_id: str) -> SessionRecord:
        record = await self.find(session_id, key_id)
        if record.ended:
            raise errors.Gone(f"session {session_id} ended ({record.reason})")
        return record

    def describe(self, record: SessionRecord) -> dict[str, Any]:
        """GET's body: state, the leg, a fresh event token, and the summary once ended."""
        body: dict[str, Any] = {
            "session_id": record.session_id,
            "status": record.status,
            "model": record.model,
            "prompt": record.prompt,
            "enhance_prompt": record.enhance_prompt,
            "enhanced_prompt": record.enhanced_prompt,
            "has_image": record.has_image,
            "leg_id": record.leg_id,
            "instance_id": record.owner,
            "etag": record.etag,
            "seconds": record.generation_seconds(),
            "expires_at": record.expires_at,
        }
        live = self.live.get(record.session_id)
        if live is not None:
            body["viewers"] = [viewer.describe() for viewer in live.leg.viewers.values()]
            body["stats"] = live.leg.stats.snapshot()
            body["stats"]["frames_encoded"] = live.leg.fanout.frames_encoded
            body["stats"]["keyframes_encoded"] = live.leg.fanout.keyframes_encoded
            body["connection_state"] = live.leg.connection_state
        if record.ended:
            body["summary"] = record.summary()
            body["viewers"] = []
        return body

    # control ----------------------------------------------------------------------------

    async def trickle(
        self,
        session_id: str,
        key_id: str,
        if_match: str | None,
        candidates: list[Any],
        ufrag: str | None = None,
        pwd: str | None = None,
    ) -> Patched:
        """Add the client's candidates. An SDP fragment (`ufrag`, `pwd`) with new ICE
        credentials restarts ICE as WHIP does (RFC 9725 §4.3.2); candidates of another
        generation than the current one are refused (412)."""
        record = await self.active(session_id, key_id)
        check_if_match(if_match, record.etag)
        for item in candidates:
            if item is not None:
                try:
                    parse_candidate(item)
                except InvalidCandidate as exc:
                    raise errors.InvalidCandidates(str(exc)) from exc
        reply = await self._on_owner(
            record,
            {
                "op": "trickle",
                "candidates": candidates,
                "if_match": if_match,
                "ufrag": ufrag,
                "pwd": pwd,
            },
        )
        return Patched(reply["etag"], reply.get("answer"))

    async def restart(
        self, session_id: str, key_id: str, if_match: str | None, offer_sdp: str
    ) -> Patched:
        """ICE restart by a new offer (seed 000 step 5): `If-Match: "*"` or the current ETag;
        answers at once and mints a new ETag."""
        record = await self.active(session_id, key_id)
        check_if_match(if_match, record.etag)
        reply = await self._on_owner(
            record, {"op": "restart", "offer": offer_sdp, "if_match": if_match}
        )
        return Patched(reply["etag"], reply["answer"])

    async def set_prompt(
        self, session_id: str, key_id: str, prompt: str, enhance: bool
    ) -> SessionRecord:
        record = await self.active(session_id, key_id)
        enhanced = self.check_prompt(prompt, enhance, record.model)
        await self._on_owner(
            record,
            {"op": "prompt", "prompt": prompt, "enhanced": enhanced, "enhance": enhance},
        )
        record.prompt, record.enhanced_prompt, record.enhance_prompt = prompt, enhanced, enhance
        return record

    async def set_image(
        self, session_id: str, key_id: str, image: bytes, prompt: str | None, enhance: bool
    ) -> SessionRecord:
        record = await self.active(session_id, key_id)
        frame = await self.check_image(image, record.model)
        enhanced = self.check_prompt(prompt, enhance, record.model) if prompt else None
        await self._on_owner(
            record,
            {
                "op": "image",
                "frame": frame,
                "image": image,
                "prompt": prompt,
                "enhanced": enhanced,
                "enhance": enhance,
            },
        )
        return await self.find(session_id, key_id)

    async def delete(self, session_id: str, key_id: str) -> SessionRecord:
        record = await self.find(session_id, key_id)
        if record.ended:
            return record
        reply = await self._on_owner(record, {"op": "end", "reason": "disconnect"})
        return SessionRecord.from_dict(reply["record"])

    async def _on_owner(self, record: SessionRecord, command: Record) -> Record:
        command["session_id"] = record.session_id
        if record.owner == self.instance_id:
            return await self._run(command)  # its errors raise here, as they should
        if "frame" in command:  # decoded here for validation; the owner decodes its own copy
            del command["frame"]
            command["image"] = command["image"].hex()
        try:
            reply = await self.ports.commands.call(record.owner, command, COMMAND_TIMEOUT)
        except TimeoutError as exc:
            raise errors.ServiceUnavailable(
                f"instance {record.owner} holding this session did not answer",
                headers={"Retry-After": "1"},
            ) from exc
        if "error" in reply:
            raise remote_error(reply["error"])
        return reply

    async def _handle_command(self, command: Record) -> Record:
        """Run one operation on a session this instance owns (locally or from the bus)."""
        try:
            return await self._run(command)
        except errors.FramewireError as exc:
            return {
                "error": {
                    "status": exc.status,
                    "slug": exc.slug,
                    "title": exc.title,
                    "detail": exc.detail,
                    "headers": exc.headers,
                }
            }

    async def _run(self, command: Record) -> Record:
        live = self.live.get(command["session_id"])
        if live is None:
            data = await self.ports.sessions.get(command["session_id"])
            if data is not None and data.get("status") == "ended":
                if command["op"] == "end":
                    return {"record": data}
                raise errors.Gone(f"session {command['session_id']} ended ({data.get('reason')})")
            raise errors.NotFound(f"no session {command['session_id']!r}")
        op = command["op"]
        if op == "trickle":
            async with live.ice_lock:
                check_if_match(command["if_match"], live.record.etag)
                current = live.record.remote_ufrag
                for item in command["candidates"]:
                    if item is not None and item.get("usernameFragment") not in (None, "", current):
                        raise stale_generation()
                reply: Record = {"etag": live.record.etag}
                ufrag, pwd = command["ufrag"], command["pwd"]
                if ufrag is not None and ufrag != current:
                    previous = live.leg.remote_sdp
                    if pwd is None or previous is None:
                        raise stale_generation()
                    reply = await self._restart(live, with_ice_credentials(previous, ufrag, pwd))
                for item in command["candidates"]:
                    await live.leg.add_candidate(item)
            return reply
        if op == "restart":
            async with live.ice_lock:
                check_if_match(command["if_match"], live.record.etag)
                return await self._restart(live, command["offer"])
        if op == "prompt":
            live.use_prompt(command["prompt"], command["enhanced"], command["enhance"])
            await self.ports.sessions.put(live.record.session_id, live.record.to_dict())
            return {}
        if op == "image":
            frame = command.get("frame")
            if frame is None:
                frame = await asyncio.to_thread(
                    self.moderator.decode_image, bytes.fromhex(command["image"])
                )
            live.leg.set_image(frame)
            live.record.has_image = True
            if command["prompt"]:
                live.use_prompt(command["prompt"], command["enhanced"], command["enhance"])
            await self.ports.sessions.put(live.record.session_id, live.record.to_dict())
            return {}
        if op == "end":
            record = await live.end(command["reason"])
            return {"record": record.to_dict()}
        if op in self.extra_ops:
            return await self.extra_ops[op](live, command)
        raise errors.BadRequest(f"unknown command {op!r}")

    async def _restart(self, live: LiveSession, offer_sdp: str) -> Record:
        """Restart the leg's ICE in place; the session gets a new ETag and ICE generation."""
        try:
            answer = await live.leg.restart(offer_sdp)
        except InvalidOffer as exc:
            raise errors.InvalidSdp(str(exc)) from exc
        except RestartConflict as exc:
            raise errors.Conflict(str(exc)) from exc
        except LegFailed as exc:
            raise errors.FramewireError(str(exc)) from exc
        live.ice.restarted(time.time())
        live.record.etag = new_etag()
        live.record.remote_ufrag = ice_ufrag(offer_sdp)
        await self.ports.sessions.put(live.record.session_id, live.record.to_dict())
        return {"etag": live.record.etag, "answer": answer}


def stale_generation() -> errors.PreconditionFailed:
    return errors.PreconditionFailed(
        "the candidates belong to another ICE generation (ufrag) than the current one"
    )


def ice_ufrag(sdp: str) -> str | None:
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line[len("a=ice-ufrag:") :].strip()
    return None


def check_if_match(if_match: str | None, etag: str) -> None:
    """WHIP's rules: no If-Match → 428; `*` matches (also quoted, `"*"`, as seed 000's curl
    example sends it); otherwise one listed tag must be ours."""
    if if_match is None or not if_match.strip():
        raise errors.PreconditionRequired("PATCH requires an If-Match header with the session ETag")
    tags = [t.strip().removeprefix("W/") for t in if_match.split(",")]
    if "*" in tags or '"*"' in tags or etag in tags:
        return
    raise errors.PreconditionFailed(
        "If-Match does not match the current ICE session; GET the session for its ETag"
    )


def remote_error(data: Record) -> errors.FramewireError:
    """Rebuild an error another instance raised, keeping its status and type."""
    error = errors.FramewireError(data["detail"], headers=data.get("headers") or {})
    error.status, error.slug, error.title = data["status"], data["slug"], data["title"]
    return error
