"""The sessions this instance owns, and the one place their commands run: a command for a
session owned here runs at once, one for a session owned elsewhere crosses the command bus to
its owner. One handler per command type."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from framewire import errors
from framewire.media.legs import Legs
from framewire.metrics import Metrics
from framewire.models.base import Frame
from framewire.rtc.restart import with_ice_credentials
from framewire.sessions import commands as cmd
from framewire.sessions.content import Content
from framewire.sessions.etags import check_tags, ice_ufrag, new_etag, stale_generation
from framewire.sessions.live import LiveSession, Timings
from framewire.sessions.ports import Ports
from framewire.sessions.record import SessionRecord
from framewire.state.base import Record

log = logging.getLogger("framewire.sessions")
COMMAND_TIMEOUT = 10.0
SHUTDOWN = "shutdown"
"""The end reason of sessions still running when a draining server stops."""
DRAIN_POLL = 0.5
Handler = Callable[[LiveSession, Any, bytes, Frame | None], Awaitable[Record]]


class Owner:
    def __init__(
        self,
        instance_id: str,
        ports: Ports,
        legs: Legs,
        content: Content,
        timings: Timings,
        metrics: Metrics | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.metrics = metrics
        self._hurry = asyncio.Event()
        self.ports = ports
        self.legs = legs
        self.content = content
        self.timings = timings
        self.live: dict[str, LiveSession] = {}
        self._handlers: dict[type[cmd.Command], Handler] = {
            cmd.Trickle: self._trickle,
            cmd.Restart: self._restart,
            cmd.SetPrompt: self._set_prompt,
            cmd.SetImage: self._set_image,
            cmd.End: self._end,
            cmd.Stats: self._stats,
        }

    def handle(self, kind: type[cmd.Command], handler: Handler) -> None:
        """Run commands of `kind` with `handler` (for commands other modules own: viewers)."""
        self._handlers[kind] = handler

    async def serve(self) -> None:
        await self.ports.commands.serve(self.instance_id, self._handle)

    async def stop(self) -> None:
        """End every session this instance still owns (reason `shutdown`)."""
        self.legs.draining = True
        await asyncio.gather(*(s.end(SHUTDOWN) for s in list(self.live.values())))
        await self.ports.commands.stop()

    async def drain(self, timeout: float) -> None:
        """Graceful shutdown: admit nothing more, let running sessions go on for up to `timeout`
        seconds (or until `hurry`), then end the rest with reason `shutdown`."""
        self.legs.draining = True
        log.warning("draining: %d sessions may run for up to %.0f s", len(self.live), timeout)
        deadline = time.monotonic() + timeout
        while self.live and not self._hurry.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), min(DRAIN_POLL, timeout))
        if self.live:
            log.warning("ending %d sessions: the server is shutting down", len(self.live))
        await asyncio.gather(*(s.end(SHUTDOWN) for s in list(self.live.values())))

    def hurry(self) -> None:
        """A second signal: end the drain now."""
        self._hurry.set()

    async def adopt(self, live: LiveSession) -> None:
        self.live[live.record.session_id] = live
        live.start()

    async def closed(self, live: LiveSession) -> None:
        self.live.pop(live.record.session_id, None)
        await self.legs.close(live.leg.id)

    # routing ----------------------------------------------------------------------------

    async def send(
        self, owner: str, command: cmd.Command, blob: bytes = b"", frame: Frame | None = None
    ) -> Record:
        """Run `command` on the session's owner: here, or over the bus with `blob` as its
        payload (`frame`, the payload decoded for validation, only saves the work here)."""
        if owner == self.instance_id:
            return await self.run(command, blob, frame)
        sent = time.monotonic()
        try:
            reply = await self.ports.commands.call(
                owner, cmd.encode(command), COMMAND_TIMEOUT, blob
            )
            if self.metrics is not None:
                self.metrics.bus_round_trip.observe(time.monotonic() - sent)
        except TimeoutError as exc:
            raise errors.OwnerUnreachable(
                f"instance {owner} holding this session did not answer"
            ) from exc
        cmd.raise_remote(reply)
        return reply

    async def _handle(self, body: Record, blob: bytes) -> Record:
        """The bus's handler: errors the caller should see go back as replies."""
        try:
            return await self.run(cmd.decode(body), blob, None)
        except Exception as exc:
            reply = cmd.error_reply(exc)
            if reply is None:
                raise
            return reply

    async def run(self, command: cmd.Command, blob: bytes, frame: Frame | None) -> Record:
        live = self.live.get(command.session_id)
        if live is None:
            return await self._not_here(command)
        return await self._handlers[type(command)](live, command, blob, frame)

    async def _not_here(self, command: cmd.Command) -> Record:
        data = await self.ports.sessions.get(command.session_id)
        if data is not None and data.get("status") == "ended":
            if isinstance(command, cmd.End):
                return {"record": data}
            raise errors.Gone(f"session {command.session_id} ended ({data.get('reason')})")
        raise errors.NotFound(f"no session {command.session_id!r}")

    # handlers ---------------------------------------------------------------------------

    async def _trickle(
        self, live: LiveSession, command: cmd.Trickle, blob: bytes, frame: Frame | None
    ) -> Record:
        async with live.ice_lock:
            check_tags(command.if_match, live.record.etag)
            current = live.record.remote_ufrag
            for item in command.candidates:
                if item is not None and item.get("usernameFragment") not in (None, "", current):
                    raise stale_generation()
            reply: Record = {"etag": live.record.etag}
            if command.ufrag is not None and command.ufrag != current:
                previous = live.leg.remote_sdp
                if command.pwd is None or previous is None:
                    raise stale_generation()
                offer = with_ice_credentials(previous, command.ufrag, command.pwd)
                reply = await self._restart_ice(live, offer)
            for item in command.candidates:
                await live.leg.add_candidate(item)
        return reply

    async def _restart(
        self, live: LiveSession, command: cmd.Restart, blob: bytes, frame: Frame | None
    ) -> Record:
        async with live.ice_lock:
            check_tags(command.if_match, live.record.etag)
            return await self._restart_ice(live, command.offer)

    async def _restart_ice(self, live: LiveSession, offer_sdp: str) -> Record:
        """Restart the leg's ICE in place; the session gets a new ETag and ICE generation."""
        answer = await live.leg.restart(offer_sdp)
        live.ice.restarted(time.time())
        live.record.etag = new_etag()
        live.record.remote_ufrag = ice_ufrag(offer_sdp)
        await live.persist()
        return {"etag": live.record.etag, "answer": answer}

    async def _set_prompt(
        self, live: LiveSession, command: cmd.SetPrompt, blob: bytes, frame: Frame | None
    ) -> Record:
        live.use_prompt(command.prompt, command.enhanced, command.enhance)
        await live.persist()
        return {}

    async def _set_image(
        self, live: LiveSession, command: cmd.SetImage, blob: bytes, frame: Frame | None
    ) -> Record:
        live.leg.set_image(frame if frame is not None else await self.content.decode(blob))
        live.record.has_image = True
        if command.prompt and command.enhanced is not None:
            live.use_prompt(command.prompt, command.enhanced, command.enhance)
        await live.persist()
        return {}

    async def _end(
        self, live: LiveSession, command: cmd.End, blob: bytes, frame: Frame | None
    ) -> Record:
        record: SessionRecord = await live.end(command.reason)
        return {"record": record.to_dict()}

    async def _stats(
        self, live: LiveSession, command: cmd.Stats, blob: bytes, frame: Frame | None
    ) -> Record:
        viewers = [viewer.describe() for viewer in live.leg.viewers.values()]
        return {"stats": await live.leg.media_stats(), "viewers": viewers}
