"""WHEP viewers of a session: add one, trickle or restart its ICE, remove it.

Like every control operation, these run on the instance that owns the session (a viewer is a
leg fed by the session leg's encoder), reached over the command bus from any other instance.
A viewer's ETag follows the session's rules (RFC 9725): 428 without If-Match, 412 when stale,
a new one on each ICE restart."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from framewire import errors
from framewire.media.leg import LegFailed
from framewire.media.restart import RestartConflict, with_ice_credentials
from framewire.media.signaling import InvalidCandidate, InvalidOffer, parse_candidate
from framewire.media.viewer import UnusableCodec, ViewerLeg, open_viewer
from framewire.sessions.live import LiveSession
from framewire.sessions.record import SessionRecord
from framewire.sessions.service import (
    Patched,
    SessionService,
    check_if_match,
    ice_ufrag,
    new_etag,
    stale_generation,
)
from framewire.state.base import Record

RETRY_AFTER_VIEWERS = "10"


@dataclass
class ViewerAdded:
    record: SessionRecord
    viewer_id: str
    answer_sdp: str
    etag: str


class Viewers:
    """The viewer operations of one instance's session service."""

    def __init__(self, service: SessionService, max_viewers: int) -> None:
        self._service = service
        self._max_viewers = max_viewers
        service.extra_ops.update(
            {
                "viewer_add": self._add,
                "viewer_patch": self._patch,
                "viewer_delete": self._delete,
            }
        )

    async def add(self, session_id: str, key_id: str, offer_sdp: str) -> ViewerAdded:
        """A new viewer of an active session (one not yet streaming is fine); 410 once ended."""
        record = await self._service.active(session_id, key_id)
        reply = await self._service._on_owner(record, {"op": "viewer_add", "offer": offer_sdp})
        return ViewerAdded(record, reply["viewer_id"], reply["answer"], reply["etag"])

    async def patch(
        self,
        session_id: str,
        viewer_id: str,
        key_id: str,
        if_match: str | None,
        fragment: tuple[str | None, str | None, list[dict[str, Any] | None]],
    ) -> Patched:
        """Trickle (`204`) or, with new ICE credentials, restart (`200` + answer) a viewer's ICE."""
        record = await self._service.active(session_id, key_id)
        ufrag, pwd, candidates = fragment
        for item in candidates:
            if item is not None:
                try:
                    parse_candidate(item)
                except InvalidCandidate as exc:
                    raise errors.InvalidCandidates(str(exc)) from exc
        reply = await self._service._on_owner(
            record,
            {
                "op": "viewer_patch",
                "viewer_id": viewer_id,
                "if_match": if_match,
                "ufrag": ufrag,
                "pwd": pwd,
                "candidates": candidates,
            },
        )
        return Patched(reply["etag"], reply.get("answer"))

    async def delete(self, session_id: str, viewer_id: str, key_id: str) -> None:
        record = await self._service.active(session_id, key_id)
        await self._service._on_owner(record, {"op": "viewer_delete", "viewer_id": viewer_id})

    # on the owner -----------------------------------------------------------------------

    async def _add(self, live: LiveSession, command: Record) -> Record:
        if len(live.leg.viewers) >= self._max_viewers:
            raise errors.TooManyViewers(
                f"this session already has {self._max_viewers} viewers",
                headers={"Retry-After": RETRY_AFTER_VIEWERS},
            )
        offer = command["offer"]
        try:
            viewer, answer = await open_viewer(live.leg, offer, self._service.legs.ice)
        except UnusableCodec as exc:
            raise errors.NoUsableCodec(str(exc)) from exc
        except InvalidOffer as exc:
            raise errors.InvalidSdp(str(exc)) from exc
        except LegFailed as exc:
            raise errors.FramewireError(str(exc)) from exc
        viewer.etag, viewer.remote_ufrag = new_etag(), ice_ufrag(offer)
        return {"viewer_id": viewer.id, "answer": answer, "etag": viewer.etag}

    def _viewer(self, live: LiveSession, viewer_id: str) -> ViewerLeg:
        viewer = live.leg.viewers.get(viewer_id)
        if not isinstance(viewer, ViewerLeg):
            raise errors.NotFound(f"no viewer {viewer_id!r} of session {live.record.session_id}")
        return viewer

    async def _patch(self, live: LiveSession, command: Record) -> Record:
        viewer = self._viewer(live, command["viewer_id"])
        check_if_match(command["if_match"], viewer.etag)
        reply: Record = {"etag": viewer.etag}
        ufrag, pwd = command["ufrag"], command["pwd"]
        if ufrag is not None and ufrag != viewer.remote_ufrag:
            previous = viewer.remote_sdp
            if pwd is None or previous is None:
                raise stale_generation()
            reply = await self._restart(viewer, with_ice_credentials(previous, ufrag, pwd))
            viewer.remote_ufrag = ufrag
        for item in command["candidates"]:
            await viewer.add_candidate(item)
        return reply

    async def _restart(self, viewer: ViewerLeg, offer: str) -> Record:
        try:
            answer = await viewer.restart(offer)
        except InvalidOffer as exc:
            raise errors.InvalidSdp(str(exc)) from exc
        except RestartConflict as exc:
            raise errors.Conflict(str(exc)) from exc
        except LegFailed as exc:
            raise errors.FramewireError(str(exc)) from exc
        viewer.etag = new_etag()
        return {"etag": viewer.etag, "answer": answer}

    async def _delete(self, live: LiveSession, command: Record) -> Record:
        viewer = self._viewer(live, command["viewer_id"])
        await live.leg.close_viewer(viewer.id)
        return {"ended_at": time.time()}
