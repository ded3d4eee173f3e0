"""The session domain's front: create, read, control, follow and end realtime sessions.

Any instance answers any request: it reads the record from the shared store and runs the
operation on the session's owner (`owner.Owner`, here or over the command bus); sessions whose
owner died are settled on the way (`orphans.OrphanReaper`)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from framewire import errors
from framewire.media.leg import Leg
from framewire.media.legs import Legs
from framewire.metrics import Metrics
from framewire.models.base import Frame, ModelSpec
from framewire.sessions import commands as cmd
from framewire.sessions.admission import Admission
from framewire.sessions.barelegs import BareLegs
from framewire.sessions.content import Content
from framewire.sessions.etags import ice_ufrag, new_etag
from framewire.sessions.lifecycle import Lifecycle
from framewire.sessions.live import LiveSession, Timings
from framewire.sessions.orphans import OrphanReaper
from framewire.sessions.owner import Owner
from framewire.sessions.ports import Limits, Ports
from framewire.sessions.record import SessionRecord
from framewire.sessions.tokens import EventTokens
from framewire.state.base import Event


@dataclass
class Created:
    record: SessionRecord
    answer_sdp: str
    event_token: str
    ice_servers: list[dict[str, Any]]


@dataclass
class Patched:
    """A PATCH's outcome: the ETag now current, and the answer when it restarted ICE."""

    etag: str
    answer_sdp: str | None = None


@dataclass
class View:
    """What GET shows of a session: its record, its leg's live state when owned here, a fresh
    event token and its ICE servers."""

    record: SessionRecord
    event_token: str
    ice_servers: list[dict[str, Any]]
    stats: dict[str, Any] | None = None
    connection_state: str | None = None
    viewers: list[dict[str, Any]] | None = None
    """The session's WHEP viewers, as its owner knows them (here or over the bus; none once it
    ended)."""


class SessionService:
    def __init__(
        self,
        instance_id: str,
        ports: Ports,
        legs: Legs,
        content: Content,
        tokens: EventTokens,
        limits: Limits,
        admission: Admission,
        lifecycle: Lifecycle | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.lifecycle = lifecycle or Lifecycle()
        self.ports = ports
        self.legs = legs
        self.content = content
        self.tokens = tokens
        self.limits = limits
        self.admission = admission
        timings = Timings(
            limits.tick_interval,
            limits.inactivity_timeout,
            limits.retention,
            legs.ice.disconnect_grace,
            legs.ice.restart_timeout,
        )
        self.owner = Owner(instance_id, ports, legs, content, timings, metrics)
        self.reaper = OrphanReaper(instance_id, ports, limits.retention, self.lifecycle)
        self.bare = BareLegs(legs, self.owner, content, admission)

    async def start(self) -> None:
        await self.reaper.end_orphans_of(self.instance_id)  # left by a previous run under this id
        await self.owner.serve()
        self.admission.start()

    async def stop(self) -> None:
        await self.admission.stop()
        await self.owner.stop()

    @property
    def draining(self) -> bool:
        return self.legs.draining

    async def drain(self, timeout: float) -> None:
        """Graceful shutdown (see `Owner.drain`)."""
        await self.owner.drain(timeout)

    def hurry(self) -> None:
        self.owner.hurry()

    async def sweep_orphans(self) -> None:
        await self.reaper.sweep()

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
        self.content.model(model_id)
        enhanced = self.content.prompt(prompt, enhance_prompt, model_id) if prompt else None
        frame = await self.content.image(image, model_id) if image is not None else None
        with self.admission.reserve(model_id):
            leg, answer, balance = await self._open_leg(
                key_id, model_id, offer_sdp, enhanced, frame
            )
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
        await self.ports.sessions.put(record.session_id, record.to_dict())
        live = LiveSession(
            record,
            leg,
            self.ports.sessions,
            self.ports.events,
            self.ports.ledger,
            self.owner.timings,
            self.owner.closed,
            ice_servers=lambda: self.ice_servers(record),
            lifecycle=self.lifecycle,
        )
        live.balance_at_start = balance
        await self.lifecycle.created(record)
        await self.owner.adopt(live)
        return Created(record, answer, self.event_token(record), self.ice_servers(record))

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
                f"this API key already has {self.limits.key_concurrency} active sessions"
            )
        try:
            leg, answer = await self.legs.open(offer_sdp, model_id, prompt, image)
        except BaseException:
            await self.ports.accounts.release_slot(key_id)
            raise
        return leg, answer, balance

    def event_token(self, record: SessionRecord) -> str:
        return self.tokens.issue(record.session_id, record.expires_at)

    def ice_servers(self, record: SessionRecord) -> list[dict[str, Any]]:
        """The session's `ice_servers`: the configured ones, plus the TURN relay with
        credentials for this session that expire when it does."""
        return self.legs.ice.for_client(record.session_id, record.expires_at)

    # read -------------------------------------------------------------------------------

    async def find(self, session_id: str, key_id: str | None) -> SessionRecord:
        """The session's record; 404 when unknown, expired, or another key's."""
        data = await self.ports.sessions.get(session_id)
        if data is None:
            raise errors.NotFound(f"no session {session_id!r}")
        record = SessionRecord.from_dict(data)
        if key_id is not None and record.key_id != key_id:
            raise errors.NotFound(f"no session {session_id!r}")
        return await self.reaper.check(record)

    async def active(self, session_id: str, key_id: str | None) -> SessionRecord:
        record = await self.find(session_id, key_id)
        if record.ended:
            raise errors.Gone(f"session {session_id} ended ({record.reason})")
        return record

    async def view(self, session_id: str, key_id: str) -> View:
        record = await self.find(session_id, key_id)
        view = View(record, self.event_token(record), self.ice_servers(record))
        live = self.owner.live.get(session_id)
        if live is not None:
            view.connection_state = live.leg.connection_state
        if record.ended:
            view.viewers = []
        else:
            try:  # from the owner: here, or over the bus
                reply = await self.owner.send(record.owner, cmd.Stats(session_id))
                view.stats, view.viewers = reply["stats"], reply["viewers"]
            except (errors.Gone, errors.NotFound):
                pass  # it ended meanwhile
        return view

    def token_expiry(self, token: str, session_id: str) -> float | None:
        return self.tokens.expiry(token, session_id)

    async def follow(self, session_id: str, after: int, wait: float) -> AsyncIterator[Event | None]:
        """The session's events after `after`, then live ones as they come; None whenever
        `wait` seconds pass with none (a keep-alive is due). Ends after `generation_ended`, or
        when the session's retention is over."""
        while True:
            batch = await self.ports.events.read(session_id, after, wait=wait)
            if not batch:
                if await self.ports.sessions.get(session_id) is None:
                    return
                yield None
                continue
            for event in batch:
                yield event
                after = event.id
                if event.event == "generation_ended":
                    return

    # control ----------------------------------------------------------------------------

    async def trickle(
        self,
        session_id: str,
        key_id: str,
        if_match: list[str] | None,
        candidates: list[Any],
        ufrag: str | None = None,
        pwd: str | None = None,
    ) -> Patched:
        """Add the client's candidates (each already parsed, `parse_candidate`). An SDP
        fragment (`ufrag`, `pwd`) with new ICE credentials restarts ICE as WHIP does (RFC 9725
        §4.3.2); candidates of another generation than the current one are refused (412)."""
        record = await self.active(session_id, key_id)
        command = cmd.Trickle(session_id, require(if_match), candidates, ufrag, pwd)
        reply = await self.owner.send(record.owner, command)
        return Patched(reply["etag"], reply.get("answer"))

    async def restart(
        self, session_id: str, key_id: str, if_match: list[str] | None, offer_sdp: str
    ) -> Patched:
        """ICE restart by a new offer: `If-Match: "*"` or the current ETag; answers at once
        and mints a new ETag."""
        record = await self.active(session_id, key_id)
        restart = cmd.Restart(session_id, require(if_match), offer_sdp)
        reply = await self.owner.send(record.owner, restart)
        return Patched(reply["etag"], reply["answer"])

    async def set_prompt(
        self, session_id: str, key_id: str, prompt: str, enhance: bool
    ) -> SessionRecord:
        record = await self.active(session_id, key_id)
        enhanced = self.content.prompt(prompt, enhance, record.model)
        await self.owner.send(record.owner, cmd.SetPrompt(session_id, prompt, enhanced, enhance))
        record.prompt, record.enhanced_prompt, record.enhance_prompt = prompt, enhanced, enhance
        return record

    async def set_image(
        self, session_id: str, key_id: str, image: bytes, prompt: str | None, enhance: bool
    ) -> SessionRecord:
        record = await self.active(session_id, key_id)
        frame = await self.content.image(image, record.model)
        enhanced = self.content.prompt(prompt, enhance, record.model) if prompt else None
        command = cmd.SetImage(session_id, prompt, enhanced, enhance)
        await self.owner.send(record.owner, command, image, frame)
        return await self.find(session_id, key_id)

    async def delete(self, session_id: str, key_id: str) -> SessionRecord:
        record = await self.find(session_id, key_id)
        if record.ended:
            return record
        reply = await self.owner.send(record.owner, cmd.End(session_id, "disconnect"))
        return SessionRecord.from_dict(reply["record"])

    # this instance ----------------------------------------------------------------------

    @property
    def live(self) -> Mapping[str, LiveSession]:
        """The sessions this instance owns, by id (read-only)."""
        return MappingProxyType(self.owner.live)

    def live_count(self) -> int:
        return len(self.owner.live)

    def open_legs(self) -> list[Leg]:
        return self.legs.all()

    def models(self) -> list[ModelSpec]:
        return self.content.registry.specs()

    def model_ids(self) -> list[str]:
        return [spec.id for spec in self.models()]


def require(if_match: list[str] | None) -> list[str]:
    """ICE changes need an If-Match (the parsed header's tags): 428 without one."""
    if if_match is None:
        raise errors.PreconditionRequired("PATCH requires an If-Match header with the session ETag")
    return if_match
