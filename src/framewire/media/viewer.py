"""WHEP viewers: outbound-only legs that show a session leg's output.

A viewer is a Leg (ICE, trickle, restart, DTLS and SRTP of its own) whose only track is a
subscription to its source leg's shared encoder: the viewer's offer must accept the codec the
session already encodes in, and no frame is encoded twice."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from aiortc.mediastreams import MediaStreamTrack

from framewire.media.fanout import Fanout, Subscription
from framewire.media.frameloop import drain
from framewire.media.leg import IceOptions, Leg
from framewire.rtc import internals as private
from framewire.rtc.signaling import InvalidOffer


class UnusableCodec(InvalidOffer):
    """The viewer's offer lacks the codec the session's output is encoded in."""


class ViewerLeg(Leg):
    """One WHEP viewer of `source`. Its `etag` identifies its ICE session (as a session's
    does); its owner sets it."""

    def __init__(self, viewer_id: str, source: Leg, ice: IceOptions) -> None:
        super().__init__(
            viewer_id, source.spec, source.model, source.executor, ice, source.video_codecs
        )
        self.source_id = source.id
        self.etag = ""
        self.remote_ufrag: str | None = None
        self._source: Fanout = source.fanout
        self._subscription: Subscription | None = None

    def _prepare_answer(self) -> None:
        """Narrow the offer's video codecs to the session's and add the shared track."""
        wanted = (self._source.mime_type or "").lower()
        for transceiver in self._pc.getTransceivers():
            if transceiver.kind != "video":
                continue
            codecs = private.TRANSCEIVER_CODECS.get(transceiver)
            same = [c for c in codecs if c.mimeType.lower() == wanted]
            if not same:
                raise UnusableCodec(
                    f"the offer does not accept {self._source.mime_type or 'video'}, "
                    "the codec this session's output is encoded in"
                )
            types = {c.payloadType for c in same}
            rtx = [
                c
                for c in codecs
                if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") in types
            ]
            private.TRANSCEIVER_CODECS.set(transceiver, same + rtx)
            self._subscription = self._source.subscribe()
            self._pc.addTrack(self._subscription)
            return

    def _wire_senders(self) -> None:
        for transceiver in self._pc.getTransceivers():
            if transceiver.sender.track is self._subscription:
                self._source.attach(transceiver.sender, steer=False)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(drain(track))  # a viewer that sends anyway: read and drop it

    @property
    def frames_sent(self) -> int:
        return 0 if self._subscription is None else self._subscription.delivered

    def describe(self) -> dict[str, Any]:
        return {
            "viewer_id": self.id,
            "state": self.connection_state,
            "created_at": self.created_at,
            "frames_sent": self.frames_sent,
            "cut_off": 0 if self._subscription is None else self._subscription.cut_off,
        }

    async def close(self) -> None:
        if self._subscription is not None:
            self._subscription.stop()
        await super().close()


class ViewerWatch:
    """A viewer's listener: a viewer whose media ends by itself leaves its source leg."""

    def __init__(self, source: Leg, viewer_id: str) -> None:
        self._source = source
        self._viewer_id = viewer_id

    def on_candidate(self, init: dict[str, Any] | None) -> None:
        """WHEP answers carry the host candidates; later ones are not signalled."""

    def on_first_frame(self) -> None:
        """Viewers receive no frames."""

    def on_ended(self, reason: str) -> None:
        asyncio.get_running_loop().create_task(self._source.close_viewer(self._viewer_id))


async def open_viewer(source: Leg, offer_sdp: str, ice: IceOptions) -> tuple[ViewerLeg, str]:
    """A new viewer of `source` and its answer SDP; raises InvalidOffer (UnusableCodec) or
    LegFailed, leaving nothing behind."""
    viewer = ViewerLeg("vw_" + secrets.token_hex(8), source, ice)
    viewer.attach(ViewerWatch(source, viewer.id))
    try:
        answer = await viewer.answer(offer_sdp)
    except BaseException:
        await viewer.close()
        raise
    source.add_viewer(viewer)
    return viewer, answer
