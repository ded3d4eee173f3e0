"""One aiortc peer connection in the offerer's seat, as a browser holds it: it sends one video
track, gathers its candidates on chosen interfaces and hands each to the caller to trickle,
applies the server's candidates, releases a received frame as soon as it is complete (marker
release), restarts ICE in place when asked, and hands every received video frame to a callback.

The Python client (framewire.client) builds its sessions on it; the tests and the benches use
it as their client peer, so there is one aiortc client implementation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aioice import Candidate, TransportPolicy
from aiortc import (
    RTCConfiguration,
    RTCIceGatherer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

from framewire.rtc.gathering import install_trickle
from framewire.rtc.jitter import install_marker_release
from framewire.rtc.restart import IceRestarter
from framewire.rtc.signaling import candidate_json, parse_candidate, rtc_ice_servers

RESTART_TIMEOUT = 15.0
"""Seconds a restarted ICE path has to connect before `on_restart_failed`."""
GATHER_POLL = 0.02

CandidateSink = Callable[[dict[str, Any] | None], None]
"""Takes each local candidate as its JSON form (`candidate`, `sdpMid`, `sdpMLineIndex`), then
None when gathering is complete."""
FrameSink = Callable[[VideoFrame, float], None]
"""Takes each received video frame and the `time.monotonic()` it arrived at."""


class Peer:
    """An offering peer connection sending `track`. Call `offer()`, send the SDP, `accept()`
    the answer; `close()` when done."""

    def __init__(
        self,
        track: MediaStreamTrack,
        on_frame: FrameSink,
        *,
        configuration: RTCConfiguration | None = None,
        interfaces: list[str],
        on_candidate: CandidateSink | None = None,
        on_restart_failed: Callable[[], None] = lambda: None,
        on_ended: Callable[[], None] = lambda: None,
        marker_release: bool = True,
    ) -> None:
        self.pc = RTCPeerConnection(configuration or RTCConfiguration(iceServers=[]))
        self.pc.addTrack(track)
        self.pc.on("track", self._on_track)
        self.restarter: IceRestarter | None = None
        self.ended = False
        """The received video track ended (or the peer closed): no more frames."""
        self._on_ended = on_ended
        self._marker_release = marker_release
        self._on_frame = on_frame
        self._interfaces = interfaces
        self._on_candidate = on_candidate
        self._on_restart_failed = on_restart_failed
        self._receiver: asyncio.Task[None] | None = None

    # signalling ------------------------------------------------------------------------

    async def offer(self) -> str:
        """The offer SDP, with the host candidates gathered so far; later ones (and the
        end of gathering) go to `on_candidate`."""
        install_trickle(self.pc, self._interfaces, None, self._local_candidate)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        """Apply the server's answer; from here on frames are released when complete (unless
        made with `marker_release=False`, stock aiortc's receiver, which benches compare
        against) and ICE can be restarted."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        if self._marker_release:
            install_marker_release(self.pc)
        self.restarter = IceRestarter(self.pc, RESTART_TIMEOUT, self._on_restart_failed)

    async def add_candidate(self, init: dict[str, Any] | None) -> None:
        """A remote candidate in its JSON form (None: the end of the server's candidates).
        Raises InvalidCandidate."""
        await self.pc.addIceCandidate(None if init is None else parse_candidate(init))

    async def gathered_one(self, timeout: float = 10.0) -> None:
        """Until a local candidate exists: aiortc starts ICE only if one does when the answer
        is applied, and a relay-only peer's first one comes a moment after its offer."""
        gatherer = self.pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
        deadline = time.monotonic() + timeout
        while not gatherer.getLocalCandidates():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no local candidate gathered in {timeout} s")
            await asyncio.sleep(GATHER_POLL)

    async def restart_offer(
        self, ice_servers: list[dict[str, Any]], policy: TransportPolicy | None = None
    ) -> str:
        """A restart offer (new ICE credentials, same DTLS session) with `ice_servers` and,
        optionally, another transport policy; follow with `accept_restart(answer)`. Raises
        RestartConflict (no answer applied yet, or a restart pending)."""
        assert self.restarter is not None, "accept() the first answer before restarting"
        return await self.restarter.offer(rtc_ice_servers(ice_servers), policy)

    async def accept_restart(self, answer_sdp: str) -> None:
        assert self.restarter is not None, "accept() the first answer before restarting"
        await self.restarter.accept(answer_sdp)

    @property
    def restarting(self) -> bool:
        """A restart's new path has not connected yet."""
        return self.restarter is not None and self.restarter.restarting

    def _local_candidate(self, gatherer: RTCIceGatherer, candidate: Candidate | None) -> None:
        if self._on_candidate is None:
            return  # the offer's own candidates are all this peer signals
        if candidate is None:
            self._on_candidate(None)
            return
        mid = self.pc.getTransceivers()[0].mid
        self._on_candidate(candidate_json(candidate, mid, 0))

    # media -----------------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video" and self._receiver is None:
            self._receiver = asyncio.get_running_loop().create_task(self._receive(track))

    async def _receive(self, track: MediaStreamTrack) -> None:
        """Take every decoded frame as it comes: aiortc's receive queue is unbounded."""
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, VideoFrame)
                self._on_frame(frame, time.monotonic())
        except MediaStreamError:
            pass
        finally:
            self._end()

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self._on_ended()

    async def close(self) -> None:
        if self.restarter is not None:
            await self.restarter.close()
        await self.pc.close()
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
        self._end()
