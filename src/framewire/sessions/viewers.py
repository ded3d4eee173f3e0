"""WHEP viewers of a session: add one, trickle or restart its ICE, remove it.

Like every control operation, these run on the instance that owns the session (a viewer is a
leg fed by the session leg's encoder), reached over the command bus from any other instance.
A viewer's ETag follows the session's rules (RFC 9725): 428 without If-Match, 412 when stale,
a new one on each ICE restart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from framewire import errors
from framewire.media.viewer import UnusableCodec, ViewerLeg, open_viewer
from framewire.models.base import Frame
from framewire.rtc.restart import with_ice_credentials
from framewire.sessions import commands as cmd
from framewire.sessions.etags import check_tags, ice_ufrag, new_etag, stale_generation
from framewire.sessions.live import LiveSession
from framewire.sessions.record import SessionRecord
from framewire.sessions.service import Patched, SessionService, require
from framewire.state.base import Record

Fragment = tuple[str | None, str | None, list[Any]]
"""An SDP fragment's ICE ufrag, pwd and candidates (`parse_sdpfrag`)."""


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
        service.owner.handle(cmd.AddViewer, self._add)
        service.owner.handle(cmd.PatchViewer, self._patch)
        service.owner.handle(cmd.RemoveViewer, self._remove)

    async def add(self, session_id: str, key_id: str, offer_sdp: str) -> ViewerAdded:
        """A new viewer of an active session (one not yet streaming is fine); 410 once ended."""
        record = await self._service.active(session_id, key_id)
        reply = await self._service.owner.send(record.owner, cmd.AddViewer(session_id, offer_sdp))
        return ViewerAdded(record, reply["viewer_id"], reply["answer"], reply["etag"])

    async def patch(
        self,
        session_id: str,
        viewer_id: str,
        key_id: str,
        if_match: list[str] | None,
        fragment: Fragment,
    ) -> Patched:
        """Trickle (`204`) or, with new ICE credentials, restart (`200` + answer) a viewer's
        ICE. The candidates are already checked (`parse_candidate`)."""
        record = await self._service.active(session_id, key_id)
        ufrag, pwd, candidates = fragment
        command = cmd.PatchViewer(session_id, viewer_id, require(if_match), candidates, ufrag, pwd)
        reply = await self._service.owner.send(record.owner, command)
        return Patched(reply["etag"], reply.get("answer"))

    async def remove(self, session_id: str, viewer_id: str, key_id: str) -> None:
        record = await self._service.active(session_id, key_id)
        await self._service.owner.send(record.owner, cmd.RemoveViewer(session_id, viewer_id))

    # on the owner -----------------------------------------------------------------------

    async def _add(
        self, live: LiveSession, command: cmd.AddViewer, blob: bytes, frame: Frame | None
    ) -> Record:
        if len(live.leg.viewers) >= self._max_viewers:
            raise errors.TooManyViewers(f"this session already has {self._max_viewers} viewers")
        try:
            viewer, answer = await open_viewer(live.leg, command.offer, self._service.legs.ice)
        except UnusableCodec as exc:
            raise errors.NoUsableCodec(str(exc)) from exc
        viewer.etag, viewer.remote_ufrag = new_etag(), ice_ufrag(command.offer)
        return {"viewer_id": viewer.id, "answer": answer, "etag": viewer.etag}

    async def _patch(
        self, live: LiveSession, command: cmd.PatchViewer, blob: bytes, frame: Frame | None
    ) -> Record:
        viewer = viewer_of(live, command.viewer_id)
        check_tags(command.if_match, viewer.etag)
        reply: Record = {"etag": viewer.etag}
        if command.ufrag is not None and command.ufrag != viewer.remote_ufrag:
            previous = viewer.remote_sdp
            if command.pwd is None or previous is None:
                raise stale_generation()
            answer = await viewer.restart(
                with_ice_credentials(previous, command.ufrag, command.pwd)
            )
            viewer.etag, viewer.remote_ufrag = new_etag(), command.ufrag
            reply = {"etag": viewer.etag, "answer": answer}
        for item in command.candidates:
            await viewer.add_candidate(item)
        return reply

    async def _remove(
        self, live: LiveSession, command: cmd.RemoveViewer, blob: bytes, frame: Frame | None
    ) -> Record:
        await live.leg.close_viewer(viewer_of(live, command.viewer_id).id)
        return {}


def viewer_of(live: LiveSession, viewer_id: str) -> ViewerLeg:
    viewer = live.leg.viewers.get(viewer_id)
    if not isinstance(viewer, ViewerLeg):
        raise errors.NotFound(f"no viewer {viewer_id!r} of session {live.record.session_id}")
    return viewer
