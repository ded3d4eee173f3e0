"""A Leg: one aiortc RTCPeerConnection that receives a client's video, runs it through a model
and sends the result back on the same connection."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from aioice import Candidate
from aiortc import (
    RTCConfiguration,
    RTCIceGatherer,
    RTCPeerConnection,
    RTCSessionDescription,
    RTCTransportStats,
)
from aiortc.exceptions import InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamTrack
from aiortc.stats import RTCInboundRtpStreamStats

from framewire.media.batching import BatchedTrack, BatchSlot
from framewire.media.codecs import BitratePolicy, prefer_codecs
from framewire.media.dtls import answer_as_dtls_server
from framewire.media.fanout import Fanout, Subscription
from framewire.media.frameloop import FrameStats, ModelTrack, PacedTrack, drain
from framewire.media.inbound import EncodedInbox, InboundDecoder
from framewire.media.rtcstats import RateMeter, transport_stats
from framewire.media.turn import TurnServer
from framewire.metrics import Metrics
from framewire.models.base import Frame, FrameModel, ModelSpec
from framewire.rtc import internals as private
from framewire.rtc.gathering import TrickleGatherer, install_trickle
from framewire.rtc.jitter import install_marker_release
from framewire.rtc.restart import IceRestarter, RestartConflict
from framewire.rtc.signaling import (
    MAX_LEG_CANDIDATES,
    PARSE_FAULTS,
    InvalidOffer,
    candidate_json,
    check_offer,
    parse_candidate,
    rtc_ice_servers,
)
from framewire.rtc.sockets import EPHEMERAL, HostSockets, PortsExhausted

log = logging.getLogger("framewire.media")


class LegListener(Protocol):
    """What the owner of a leg (a session, or the leg API) hears about it."""

    def on_candidate(self, init: dict[str, Any] | None) -> None:
        """A server candidate found after the answer; `None` once gathering has ended."""

    def on_first_frame(self) -> None:
        """The first model frame went out."""

    def on_ended(self, reason: str) -> None:
        """The media ended by itself: `disconnect`, `ice_failure` or `error`. Called once."""


@dataclass
class IceOptions:
    servers: list[dict[str, Any]] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    announced_ip: str | None = None
    connect_timeout: float = 30.0
    turn: TurnServer | None = None
    """Relay for the server's own candidates too, with credentials minted per leg."""
    restart_timeout: float = 15.0
    """Bound on an ICE restart's new path connecting; beyond it the leg ends (`ice_failure`)."""
    disconnect_grace: float = 5.0
    """Silence from the client after which its owner asks for an ICE restart."""
    sockets: HostSockets = EPHEMERAL
    """Where host sockets and relay allocations bind: ephemeral ports, a range, one port."""

    def for_client(self, name: str, expires_at: float | None = None) -> list[dict[str, Any]]:
        """The ICE servers a client gets: the configured ones, plus the TURN relay (every URL:
        UDP, TCP, TLS) with credentials for `name`, valid until `expires_at` (default: as
        long as a session may last)."""
        turn = self.turn
        return self.servers + ([turn.ice_server(name, expires_at)] if turn is not None else [])


MEDIA_STALL = 5.0
"""Seconds of packets without a decoded video frame after which a connected leg ends (`error`)."""
STALL_PACKET_RATE = 20.0
"""Packets per second (audio aside) that count as the client still sending video (RTCP is
~1/s)."""
STALL_CHECK_EVERY = 1.0


class LegFailed(RuntimeError):
    """The peer connection could not be set up from a valid offer (the leg API answers 500)."""


class Leg:
    """One WebRTC leg. Create with `await Leg.open(...)`; always `await close()`."""

    def __init__(
        self,
        leg_id: str,
        spec: ModelSpec,
        model: FrameModel | BatchSlot,
        executor: Executor,
        ice: IceOptions,
        video_codecs: list[str],
        metrics: Metrics | None = None,
    ) -> None:
        self.id = leg_id
        self.spec = spec
        self.created_at = time.time()
        self.stats = FrameStats(metrics)
        self._rates = RateMeter()
        self.fanout = Fanout()
        """The one encoder of this leg's output, feeding its own peer and its viewers."""
        self.viewers: dict[str, Leg] = {}
        self._viewer_seconds = 0.0
        self.owner: str | None = None
        """Key id of the API key that opened a bare leg; None for a session's leg."""
        self._listener: LegListener | None = None
        self._held: list[tuple[str, tuple[Any, ...]]] = []
        self._model = model
        self._executor = executor
        self._ice = ice
        self._video_codecs = video_codecs
        self._pc = RTCPeerConnection(
            RTCConfiguration(iceServers=rtc_ice_servers(self._ice_servers()))
        )
        self._restarter: IceRestarter | None = None
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._gatherers: list[TrickleGatherer] = []
        self._gathering_left = 0
        self._pending: list[dict[str, Any]] = []
        self._remote_candidates = 0
        self.candidates_done = False
        self._inbox: EncodedInbox | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._watchdog: asyncio.Task[None] | None = None
        self._stall_watch: asyncio.Task[None] | None = None
        self._closed = False
        self._ended = False

    def attach(self, listener: LegListener) -> None:
        """Start telling `listener`, first replaying what happened before it came."""
        self._listener = listener
        held, self._held = self._held, []
        for name, args in held:
            getattr(listener, name)(*args)

    def _notify(self, name: str, *args: Any) -> None:
        if self._listener is None:
            self._held.append((name, args))
        else:
            getattr(self._listener, name)(*args)

    @property
    def connection_state(self) -> str:
        return str(self._pc.connectionState)

    @property
    def ice_state(self) -> str:
        return str(self._pc.iceConnectionState)

    @property
    def model(self) -> FrameModel | BatchSlot:
        return self._model

    @property
    def executor(self) -> Executor:
        return self._executor

    @property
    def video_codecs(self) -> list[str]:
        return self._video_codecs

    async def answer(self, offer_sdp: str) -> str:
        """Apply the offer and return the answer SDP, without waiting for gathering to end."""
        check_offer(offer_sdp)
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except PARSE_FAULTS as exc:
            raise InvalidOffer(f"invalid SDP offer: {exc}") from exc
        except OperationError as exc:
            raise InvalidOffer(
                "the SDP offer has no codec in common with the server "
                "(video: VP8 or H264; audio: Opus, PCMU or PCMA)"
            ) from exc
        if not prefer_codecs(self._pc, self._video_codecs):
            raise InvalidOffer(
                "the SDP offer has no video codec this server is configured for "
                f"(FRAMEWIRE_VIDEO_CODECS: {','.join(self._video_codecs)})"
            )
        answer_as_dtls_server(self._pc, offer_sdp)
        self._prepare_answer()
        self._gatherers = install_trickle(
            self._pc,
            self._ice.interfaces,
            self._ice.announced_ip,
            self._on_local_candidate,
            self._ice.sockets,
        )
        self._gathering_left = len(self._gatherers)
        self._restarter = IceRestarter(
            self._pc, self._ice.restart_timeout, lambda: self._end("ice_failure")
        )
        try:
            answer = await self._pc.createAnswer()
            await self._pc.setLocalDescription(answer)
        except PortsExhausted:
            raise
        except PARSE_FAULTS as exc:
            # aiortc trips over offers it accepted but cannot answer (an m-section without a
            # direction, odd bundles): the offer's fault, found by fuzzing
            raise InvalidOffer(f"the SDP offer cannot be answered: {exc!r}") from exc
        except (RuntimeError, OSError) as exc:
            raise LegFailed(f"answer generation failed: {exc}") from exc
        install_marker_release(self._pc)
        self._wire_senders()
        self._watchdog = asyncio.get_running_loop().create_task(self._watch_connect())
        self._stall_watch = asyncio.get_running_loop().create_task(self._watch_stall())
        return str(self._pc.localDescription.sdp)

    def _prepare_answer(self) -> None:
        """Between the offer and the answer: the place to add tracks and narrow codecs."""

    def _wire_senders(self) -> None:
        """After the answer: the negotiated video codec is the shared encoder's; the own peer's
        sender sends its frames, or lets go of them when the client only sends (WHIP)."""
        policy = BitratePolicy.for_video(self.spec.width, self.spec.height, self.spec.fps)
        for transceiver in self._pc.getTransceivers():
            codecs = private.TRANSCEIVER_CODECS.get(transceiver)
            if transceiver.kind != "video" or not codecs:
                continue
            self.fanout.use_codec(codecs[0].mimeType, policy, self.stats.encoded)
            track = transceiver.sender.track
            if isinstance(track, Subscription):
                if "send" in (transceiver.currentDirection or ""):
                    self.fanout.attach(transceiver.sender, steer=True)
                else:
                    track.stop()

    def _ice_servers(self) -> list[dict[str, Any]]:
        """The server's own ICE servers; TURN credentials are fresh for each generation."""
        turn = self._ice.turn
        return self._ice.servers + ([turn.ice_server(self.id)] if turn is not None else [])

    async def restart(self, offer_sdp: str) -> str:
        """ICE restart in place: apply a re-offer carrying new ICE credentials and return the
        answer (new ufrag/pwd, same DTLS fingerprint) without waiting for gathering; the new
        generation's candidates trickle through `on_candidate` like the first ones. Raises
        InvalidOffer, RestartConflict or LegFailed; the current path is kept on failure."""
        check_offer(offer_sdp)
        if self._restarter is None or self._closed:
            raise RestartConflict("the leg has no ICE session to restart")
        try:
            answer = await self._restarter.answer(offer_sdp, rtc_ice_servers(self._ice_servers()))
        except InvalidOffer:
            raise
        except PortsExhausted:
            raise  # capacity, like a full instance: the current path is kept
        except (*PARSE_FAULTS, OperationError) as exc:
            raise InvalidOffer(f"invalid SDP offer: {exc}") from exc
        except (RuntimeError, OSError, InvalidStateError) as exc:
            raise LegFailed(f"ICE restart failed: {exc}") from exc
        self._pending, self.candidates_done = [], False
        self._gathering_left = len(self._gatherers)
        return answer

    @property
    def remote_sdp(self) -> str | None:
        """The client's current offer: the last re-offer after restarts."""
        description = self._pc.remoteDescription
        return None if description is None else str(description.sdp)

    @property
    def ice_restarting(self) -> bool:
        """An ICE restart's new path has not connected yet."""
        return self._restarter is not None and self._restarter.restarting

    def seconds_since_ice_inbound(self) -> float | None:
        """Seconds since anything arrived from the client over ICE (media, RTCP, DTLS): a
        dead path shows here long before consent expires. None until something arrived."""
        return None if self._restarter is None else self._restarter.seconds_since_inbound()

    def _on_track(self, track: MediaStreamTrack) -> None:
        receiver = next(
            (t.receiver for t in self._pc.getTransceivers() if t.receiver.track is track), None
        )
        if track.kind == "video" and self._inbox is None and receiver is not None:
            # The receiver's complete frames go to the frame loop undecoded (media/inbound.py);
            # its decoder thread starts once DTLS is up, so it takes this queue and idles.
            ask_keyframe = private.RECEIVER_DECODER_ERROR.get(receiver).set
            self._inbox = EncodedInbox(self.stats.late, self.stats.dropped, ask_keyframe)
            private.RECEIVER_DECODER_QUEUE.set(receiver, self._inbox)
            self.fanout.feed(self._model_track(self._inbox, InboundDecoder(ask_keyframe)))
            self._pc.addTrack(self.fanout.subscribe())
        else:
            self._tasks.append(drain(track))

    def _model_track(self, inbox: EncodedInbox, decoder: InboundDecoder) -> PacedTrack:
        def first() -> None:
            self._notify("on_first_frame")

        if isinstance(self._model, BatchSlot):
            return BatchedTrack(
                inbox, decoder, self._model, self._executor, self.stats, first, self._on_fault
            )
        return ModelTrack(
            inbox,
            decoder,
            self._model,
            self.spec,
            self._executor,
            self.stats,
            first,
            self._on_fault,
        )

    def _on_fault(self, reason: str) -> None:
        self._end(reason)

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if state == "failed":
            self._end("ice_failure")
        elif state == "closed" and not self._closed:
            self._end("disconnect")

    async def _watch_connect(self) -> None:
        """ICE without remote candidates stays `checking` forever: bound it."""
        await asyncio.sleep(self._ice.connect_timeout)
        if self._pc.connectionState not in ("connected", "closed"):
            self._end("ice_failure")

    async def _watch_stall(self) -> None:
        """A client whose packets keep coming while no video decodes (a stream it threw out of
        sync, e.g. sequence numbers far ahead of SRTP's replay window, or one made of junk) ends
        with `error` instead of sitting connected and frozen until the inactivity timeout."""
        frames, packets, since = self.stats.frames_in, await self._packets_in(), time.monotonic()
        while not self._ended:
            await asyncio.sleep(STALL_CHECK_EVERY)
            now_frames, now_packets = self.stats.frames_in, await self._packets_in()
            if now_frames != frames or self._pc.connectionState != "connected":
                frames, packets, since = now_frames, now_packets, time.monotonic()
                continue
            stalled = time.monotonic() - since
            if stalled >= MEDIA_STALL and (now_packets - packets) / stalled >= STALL_PACKET_RATE:
                log.warning(
                    "leg %s: %d packets in %.1f s, no video decoded",
                    self.id,
                    now_packets - packets,
                    stalled,
                )
                self._end("error")

    async def _packets_in(self) -> int:
        """Datagrams received on the leg's transports, decodable or not, except audio RTP: a
        client that sends audio but no video is left to the inactivity timeout."""
        report = await self._pc.getStats()
        total = audio = 0
        for stats in report.values():
            if isinstance(stats, RTCTransportStats):
                total += stats.packetsReceived
            elif isinstance(stats, RTCInboundRtpStreamStats) and stats.kind == "audio":
                audio += stats.packetsReceived
        return total - audio

    def _end(self, reason: str) -> None:
        if not self._ended and not self._closed:
            self._ended = True
            self._notify("on_ended", reason)

    def _mline_of(self, gatherer: RTCIceGatherer) -> tuple[str | None, int]:
        for index, transceiver in enumerate(self._pc.getTransceivers()):
            transport = transceiver.receiver.transport
            if transport is not None and transport.transport.iceGatherer is gatherer:
                return transceiver.mid, index
        return None, 0

    def _on_local_candidate(self, gatherer: RTCIceGatherer, candidate: Candidate | None) -> None:
        if candidate is not None:
            mid, index = self._mline_of(gatherer)
            init = candidate_json(candidate, mid, index)
            self._pending.append(init)
            self._notify("on_candidate", init)
            return
        self._gathering_left -= 1
        if self._gathering_left <= 0 and not self.candidates_done:
            self.candidates_done = True
            self._notify("on_candidate", None)

    def drain_candidates(self) -> tuple[list[dict[str, Any]], bool]:
        """Server candidates gathered since the last call, and whether gathering has ended."""
        pending, self._pending = self._pending, []
        return pending, self.candidates_done

    async def add_candidate(self, init: dict[str, Any] | None) -> None:
        """A remote candidate (RTCIceCandidateInit) or `None` for end-of-candidates."""
        candidate = None if init is None else parse_candidate(init)
        if candidate is not None:
            self._remote_candidates += 1
            if self._remote_candidates > MAX_LEG_CANDIDATES:
                # each candidate costs connectivity checks: past the bound they are ignored
                if self._remote_candidates == MAX_LEG_CANDIDATES + 1:
                    log.warning(
                        "leg %s: over %d candidates, ignoring more", self.id, MAX_LEG_CANDIDATES
                    )
                return
        await self._pc.addIceCandidate(candidate)

    def set_prompt(self, prompt: str) -> None:
        self._model.set_prompt(prompt)

    def set_image(self, image: Frame | None) -> None:
        self._model.set_image(image)

    def seconds_since_inbound(self) -> float:
        """Seconds since the last inbound video frame (or since the leg opened)."""
        last = self.stats.last_inbound
        if last is None:
            return time.time() - self.created_at
        return time.monotonic() - last

    async def media_stats(self) -> dict[str, Any]:
        """The frame loop's counters and rates with the transport's (GET session `stats`)."""
        encoded = {
            "frames_encoded": self.fanout.frames_encoded,
            "keyframes_encoded": self.fanout.keyframes_encoded,
        }
        if self._closed:
            return {**self.stats.snapshot(), **encoded}
        return {
            **self.stats.snapshot(),
            **encoded,
            **await transport_stats(self._pc, self._rates),
        }

    # viewers ------------------------------------------------------------------------------

    def add_viewer(self, viewer: Leg) -> None:
        """A viewer of this leg's output (fed by `fanout`), closed with this leg."""
        self.viewers[viewer.id] = viewer

    async def close_viewer(self, viewer_id: str) -> bool:
        """Close one viewer; False when there is none by that id."""
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is None:
            return False
        self._viewer_seconds += time.time() - viewer.created_at
        await viewer.close()
        return True

    def viewer_seconds(self) -> float:
        """Seconds viewers have watched, summed over viewers (the ones still open too)."""
        now = time.time()
        live = sum(now - viewer.created_at for viewer in self.viewers.values())
        return round(self._viewer_seconds + live, 3)

    def describe(self) -> dict[str, Any]:
        return {
            "leg_id": self.id,
            "model": self.spec.id,
            "state": self.connection_state,
            "ice_state": self.ice_state,
            "created_at": self.created_at,
            "stats": self.stats.snapshot(),
        }

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for viewer_id in list(self.viewers):
            await self.close_viewer(viewer_id)
        await self.fanout.close()
        for watch in (self._watchdog, self._stall_watch):
            if watch is not None:
                watch.cancel()
        for gatherer in self._gatherers:
            await gatherer.close()
        if self._restarter is not None:
            await self._restarter.close()
        if self._inbox is not None:
            self._inbox.end()
        for task in self._tasks:
            task.cancel()
        try:
            await self._pc.close()
        except AttributeError:
            # aiortc's close assumes every transceiver got a transport; one an odd offer left
            # without has none to stop: stop the others' transports here.
            for transceiver in self._pc.getTransceivers():
                if transceiver.receiver.transport is not None:
                    await transceiver.receiver.transport.stop()
                    await transceiver.receiver.transport.transport.stop()
