"""Bare legs (the leg API): media without a session above it. Not billed; they count against
the instance's capacity, belong to the key that opened them, and are closed as soon as their
media ends by itself (ICE failure or timeout, peer gone, model fault), so nothing leaks. A
session's leg is visible here too, to the session's key, but only the session may end it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from framewire import errors
from framewire.media.leg import Leg
from framewire.media.legs import LegNotFound, Legs
from framewire.sessions.admission import Admission
from framewire.sessions.content import Content
from framewire.sessions.owner import Owner

log = logging.getLogger("framewire.sessions")
DEFAULT_MODEL = "passthrough"


class BareLeg:
    """Listener of a bare leg: when its media ends by itself the leg is closed and forgotten."""

    def __init__(self, legs: Legs, leg_id: str) -> None:
        self._legs = legs
        self._leg_id = leg_id
        self._closing: asyncio.Task[None] | None = None

    def on_candidate(self, init: dict[str, Any] | None) -> None:
        """Late candidates wait in the leg for `GET .../ice-candidates`."""

    def on_first_frame(self) -> None:
        """Bare legs are not billed: nothing starts with the first frame."""

    def on_ended(self, reason: str) -> None:
        log.info("leg %s ended by itself (%s): closing it", self._leg_id, reason)
        self._closing = asyncio.get_running_loop().create_task(self._legs.close(self._leg_id))


@dataclass
class Found:
    leg: Leg
    session_id: str | None
    """The session the leg carries, if any."""


class BareLegs:
    def __init__(self, legs: Legs, owner: Owner, content: Content, admission: Admission) -> None:
        self._legs = legs
        self._owner = owner
        self._content = content
        self._admission = admission

    async def open(
        self, key_id: str, offer_sdp: str, model_id: str | None, prompt: str | None, enhance: bool
    ) -> tuple[Leg, str]:
        """Open a leg from an offer; its answer comes at once, without waiting for gathering."""
        model_id = model_id or DEFAULT_MODEL
        self._content.model(model_id)
        enhanced = self._content.prompt(prompt, enhance, model_id) if prompt else None
        with self._admission.reserve(model_id):
            leg, answer = await self._legs.open(offer_sdp, model_id, enhanced, owner=key_id)
        leg.attach(BareLeg(self._legs, leg.id))
        return leg, answer

    def _sessions(self) -> dict[str, tuple[str, str]]:
        """Leg id -> (session id, key id) of the live sessions this instance owns."""
        return {
            live.leg.id: (live.record.session_id, live.record.key_id)
            for live in self._owner.live.values()
        }

    def mine(self, key_id: str) -> list[Found]:
        """The key's legs on this instance, bare and session legs alike."""
        sessions = self._sessions()
        found = [Found(leg, sessions[leg.id][0] if leg.id in sessions else None)
                 for leg in self._legs.all()]  # fmt: skip
        return [f for f in found if self._key_of(f, sessions) == key_id]

    @staticmethod
    def _key_of(found: Found, sessions: dict[str, tuple[str, str]]) -> str | None:
        return sessions[found.leg.id][1] if found.leg.id in sessions else found.leg.owner

    def find(self, leg_id: str, key_id: str) -> Found:
        """The key's leg; NotFound for unknown legs and other keys' legs alike."""
        try:
            leg = self._legs.get(leg_id)
        except LegNotFound:
            raise errors.NotFound(f"leg {leg_id!r} not found") from None
        sessions = self._sessions()
        found = Found(leg, sessions[leg_id][0] if leg_id in sessions else None)
        if self._key_of(found, sessions) != key_id:
            raise errors.NotFound(f"leg {leg_id!r} not found")
        return found

    async def close(self, leg_id: str, key_id: str) -> Leg:
        """Close a bare leg; a session's leg is a Conflict (ending it is the session's job)."""
        found = self.find(leg_id, key_id)
        if found.session_id is not None:
            raise errors.Conflict(
                f"leg {leg_id} carries session {found.session_id}; end it with "
                f"DELETE /v1/realtime/sessions/{found.session_id}"
            )
        await self._legs.close(leg_id)
        return found.leg

    async def add_candidate(self, leg_id: str, key_id: str, init: dict[str, Any] | None) -> None:
        await self.find(leg_id, key_id).leg.add_candidate(init)

    def drain_candidates(self, leg_id: str, key_id: str) -> tuple[list[dict[str, Any]], bool]:
        return self.find(leg_id, key_id).leg.drain_candidates()
