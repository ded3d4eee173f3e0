"""The Python client: a realtime session over HTTP signaling, media over aiortc.

    async with RealtimeClient("http://127.0.0.1:8000", api_key) as client:
        session = await client.connect("in.mp4", model="lucy_2_rt", output="out.mp4")
        async for frame in session.frames():      # numpy BGR, until the clip is done
            ...
        summary = await session.close()           # DELETE: the billing summary

When a finite source (a file, an iterator) runs out, the session waits for the frames still in
flight (`drain`) and closes itself, so `frames()` ends and billing stops with the media.

One `Session` is one peer connection and one server session. It offers, trickles its own
candidates (framewire.client.trickle), follows the SSE stream and applies the server's
candidates (framewire.client.stream), and hands every received frame to its file sink and to
its `frames()` readers without doing codec work on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCIceTransportPolicy
from av import VideoFrame

from framewire.client.catalog import ModelInfo
from framewire.client.control import Control, ProblemError
from framewire.client.events import (
    ErrorEvent,
    GenerationEnded,
    IceCandidate,
    IceRestart,
    ServerEvent,
)
from framewire.client.sinks import VideoFileSink
from framewire.client.sources import OpenedSource, OutboundTrack, Source, open_source, plane
from framewire.client.stats import ClientStats
from framewire.client.stream import EventFollower
from framewire.client.trickle import CandidateTrickle
from framewire.rtc.peer import Peer
from framewire.rtc.restart import RestartConflict
from framewire.rtc.signaling import InvalidCandidate, InvalidOffer, rtc_ice_servers
from framewire.rtc.stamp import read_stamp

log = logging.getLogger("framewire.client")

SESSIONS = "/v1/realtime/sessions"
ICE_SERVERS = "/v1/realtime/ice-servers"
DEFAULT_FPS = 20.0
"""Send rate of numpy sources, and the file's rate, when the server does not list its models."""
LOOPBACK_INTERFACES = ["127.0.0.1"]
"""Seconds a restarted ICE path has to connect."""
END_EVENT_WAIT = 2.0
"""Seconds `close()` waits for `generation_ended` on the stream after the DELETE."""
DRAIN_IDLE = 0.5
"""After the source ran out: seconds without a received frame that mean none is in flight.
Ten frame intervals at 20 fps; each one of them is billed."""
DRAIN_GAPS = 3
"""...or this many of the received stream's frame intervals, when that is longer."""
DRAIN_TIMEOUT = 3.0
"""After the source ran out: the longest wait for frames in flight before closing."""

BGRFrame = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Summary:
    """The billing summary the DELETE returns."""

    session_id: str
    model: str
    status: str
    reason: str | None
    seconds: float
    credits_charged: float
    credits_remaining: float | None
    started_at: str | None
    ended_at: str | None

    @classmethod
    def of(cls, body: dict[str, Any]) -> Summary:
        remaining = body.get("credits_remaining")
        return cls(
            session_id=str(body["session_id"]),
            model=str(body.get("model", "")),
            status=str(body.get("status", "")),
            reason=body.get("reason"),
            seconds=float(body.get("seconds") or 0.0),
            credits_charged=float(body.get("credits_charged") or 0.0),
            credits_remaining=None if remaining is None else float(remaining),
            started_at=body.get("started_at"),
            ended_at=body.get("ended_at"),
        )


class RealtimeClient:
    """Talks to one framewire (or API-compatible) server. Use as an async context manager;
    leaving it closes every session still open.

    `ice_interfaces` are the local addresses to gather candidates on; by default the loopback
    address when the server is on loopback, else every non-loopback interface. `ice_servers`
    (RTCIceServer dicts) are used for gathering. With `relay_only`, each session gathers only
    relay candidates (`iceTransportPolicy: "relay"`, for networks that block direct UDP), with
    TURN servers and fresh credentials from `GET /v1/realtime/ice-servers` added to
    `ice_servers`. 503 and 429 answers are retried after their `Retry-After` for up to
    `retry_budget` seconds in total per request."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        ice_servers: list[dict[str, Any]] | None = None,
        ice_interfaces: list[str] | None = None,
        http: httpx.AsyncClient | None = None,
        retry_budget: float = 30.0,
        relay_only: bool = False,
    ) -> None:
        self._own_http = http is None
        # Each session's event stream holds one connection for the session's life: a bound on
        # the pool would leave a client with many sessions no connection for control requests.
        self.http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
        )
        self.control = Control(self.http, base_url, api_key, retry_budget)
        self.ice_servers = ice_servers or []
        self.relay_only = relay_only
        self.ice_interfaces = (
            ice_interfaces if ice_interfaces is not None else default_interfaces(base_url)
        )
        self._sessions: set[Session] = set()

    async def __aenter__(self) -> RealtimeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for session in list(self._sessions):
            with contextlib.suppress(ProblemError, httpx.HTTPError):
                await session.close()
        if self._own_http:
            await self.http.aclose()

    async def models(self) -> list[ModelInfo]:
        """The models the server runs (`GET /v1/models`, a framewire extension)."""
        response = await self.control.request("GET", "/v1/models")
        return [ModelInfo.of(spec) for spec in response.json()["models"]]

    async def rtc_configuration(self) -> RTCConfiguration:
        """A new session's peer connection configuration."""
        if not self.relay_only:
            return RTCConfiguration(iceServers=rtc_ice_servers(self.ice_servers))
        response = await self.control.request("GET", ICE_SERVERS)
        servers = self.ice_servers + list(response.json()["ice_servers"])
        return RTCConfiguration(
            iceServers=rtc_ice_servers(servers), iceTransportPolicy=RTCIceTransportPolicy.RELAY
        )

    async def _spec(self, model: str) -> ModelInfo | None:
        try:
            specs = await self.models()
        except ProblemError as exc:
            if exc.status in (404, 405):
                return None  # not a framewire server: no model list
            raise
        return next((spec for spec in specs if spec.id == model), None)

    async def connect(
        self,
        source: Source,
        *,
        model: str,
        prompt: str | None = None,
        image: bytes | str | os.PathLike[str] | None = None,
        enhance_prompt: bool = True,
        output: str | os.PathLike[str] | None = None,
        fps: float | None = None,
        mark_frames: bool = False,
        close_at_end: bool = True,
    ) -> Session:
        """Create a session that sends `source` through `model` and return it once the server
        has answered (media starts as soon as ICE connects).

        `image` is a reference image (file path or bytes). `output` records every received
        frame to a video file (.mp4: H.264, .webm: VP8) at the model's frame rate. `fps` paces
        numpy sources (default: the model's rate); the session stops its source when it
        closes. `mark_frames` stamps each sent frame's number in its top-left corner
        (framewire.rtc.stamp) so `stats.round_trip_ms` can be measured; the stamp is visible
        in the output.

        `close_at_end`: when a finite source runs out, wait for the frames in flight, then
        close the session (DELETE), which ends `frames()` and the billing. Pass False to keep
        the session open after its source (and close it yourself)."""
        spec = await self._spec(model)
        rate = fps or (spec.fps if spec is not None else DEFAULT_FPS)
        configuration = await self.rtc_configuration()
        opened = open_source(source, rate)
        sink = None
        if output is not None:
            sink = VideoFileSink(output, spec.fps if spec is not None else rate)
        session = Session(self, model, spec, opened, sink, mark_frames, configuration)
        try:
            await session._open(prompt, image, enhance_prompt, close_at_end)
        except BaseException:
            if not session.id:
                await session._teardown()
                raise
            with contextlib.suppress(ProblemError, httpx.HTTPError):
                await session.close()  # created but not usable: end it, don't leave it running
            raise
        self._sessions.add(session)
        return session

    def _forget(self, session: Session) -> None:
        self._sessions.discard(session)


def default_interfaces(base_url: str) -> list[str]:
    """Loopback for a server on loopback (aioice skips it otherwise), else aioice's choice."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return LOOPBACK_INTERFACES
    try:
        return LOOPBACK_INTERFACES if ipaddress.ip_address(host).is_loopback else []
    except ValueError:
        return []


def to_bgr(frame: VideoFrame) -> BGRFrame:
    return np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)


def image_data(image: bytes | str | os.PathLike[str]) -> str:
    raw = image if isinstance(image, bytes) else Path(image).read_bytes()
    return base64.b64encode(raw).decode("ascii")


class _Reader:
    """One `frames()` consumer: keeps the newest `size` frames, dropping older ones unread."""

    def __init__(self, size: int) -> None:
        self.frames: deque[VideoFrame] = deque(maxlen=size)
        self.skipped = 0
        self.ended = False
        self.ready = asyncio.Event()

    def put(self, frame: VideoFrame) -> None:
        if len(self.frames) == self.frames.maxlen:
            self.skipped += 1
        self.frames.append(frame)
        self.ready.set()

    def end(self) -> None:
        self.ended = True
        self.ready.set()

    async def get(self) -> VideoFrame | None:
        while not self.frames:
            if self.ended:
                return None
            self.ready.clear()
            await self.ready.wait()
        return self.frames.popleft()


class Session:
    """One realtime session. Made by `RealtimeClient.connect`; end it with `close()`."""

    def __init__(
        self,
        client: RealtimeClient,
        model: str,
        spec: ModelInfo | None,
        source: OpenedSource,
        sink: VideoFileSink | None,
        mark_frames: bool,
        configuration: RTCConfiguration,
    ) -> None:
        self.model = model
        self.spec = spec
        """The model's frame rate and size, when the server lists its models."""
        self.stats = ClientStats()
        self.sink = sink
        self.source = source
        self.id = ""
        self.expires_at = ""
        """When the server will end the session (`timeout`), ISO 8601."""
        self.history: list[ServerEvent] = []
        """Every server event so far, in id order."""
        self.ended: GenerationEnded | None = None
        self._client = client
        self._control = client.control
        self._path = ""
        self._mark = mark_frames
        self._outbound = OutboundTrack(source.track, self.stats.on_sent, mark_frames)
        self.peer = Peer(
            self._outbound,
            self._on_frame,
            configuration=configuration,
            interfaces=client.ice_interfaces,
            on_candidate=self._on_local_candidate,
            on_restart_failed=self._on_restart_failed,
            on_ended=self._on_media_ended,
        )
        """The aiortc peer connection (`peer.pc`) this session's media runs on."""
        self.trickle = CandidateTrickle(client.control)
        self._follower: EventFollower | None = None
        self._readers: set[_Reader] = set()
        self._changed = asyncio.Event()
        self._closing: asyncio.Task[Summary] | None = None
        self._finisher: asyncio.Task[None] | None = None

    # setup ------------------------------------------------------------------------------

    async def _open(
        self,
        prompt: str | None,
        image: bytes | str | os.PathLike[str] | None,
        enhance: bool,
        close_at_end: bool,
    ) -> None:
        body: dict[str, Any] = {
            "model": self.model,
            "sdp": {"type": "offer", "sdp": await self.peer.offer()},
            "enhance_prompt": enhance,
        }
        if prompt is not None:
            body["prompt"] = prompt
        if image is not None:
            body["image_data"] = image_data(image)
        response = await self._control.request("POST", SESSIONS, json=body)
        created = response.json()
        self.id = str(created["session_id"])
        self._path = response.headers.get("location") or f"{SESSIONS}/{self.id}"
        self.expires_at = str(created["expires_at"])
        await self.peer.accept(created["sdp"]["sdp"])
        self.trickle.bind(self._path, response.headers["etag"])
        self._follower = EventFollower(
            self._control,
            created["events"]["url"],
            created["events"]["event_token"],
            self._on_event,
            self._refresh,
        )
        self._follower.start()
        if close_at_end:
            self._finisher = asyncio.get_running_loop().create_task(self._close_at_end())

    async def _close_at_end(self) -> None:
        """The source ran out (or the server ended the session): drain, then close."""
        await self.source_ended()
        if self.ended is None:
            await self.drain()
        try:
            await self.close()
        except (ProblemError, httpx.HTTPError) as exc:
            log.warning("session %s: closing at the end of the source failed: %s", self.id, exc)

    @property
    def etag(self) -> str | None:
        """The ICE session's ETag as last seen."""
        return self.trickle.etag

    @property
    def events_reconnects(self) -> int:
        """How many times the SSE stream was reopened after the first connection."""
        return max(0, self._follower.connects - 1) if self._follower is not None else 0

    def _on_local_candidate(self, candidate: dict[str, Any] | None) -> None:
        self.trickle.add(candidate)

    # server events ----------------------------------------------------------------------

    async def _on_event(self, event: ServerEvent) -> None:
        self.history.append(event)
        if isinstance(event, IceCandidate):
            await self._add_remote_candidate(event.candidate)
        elif isinstance(event, IceRestart):
            await self._restart_ice(event.ice_servers)
        elif isinstance(event, ErrorEvent):
            log.warning("session %s: server error: %s: %s", self.id, event.title, event.detail)
        elif isinstance(event, GenerationEnded):
            self.ended = event
        self._changed.set()

    async def _restart_ice(self, servers: list[dict[str, Any]]) -> None:
        """Answer the server's `ice-restart` as the reference browser client does: re-offer with the
        event's ICE servers (new ICE credentials, same DTLS session) and apply the answer.
        Inline with the event stream, so the new generation's server candidates that follow
        are applied after it."""
        try:
            answer = await self.trickle.restart(lambda: self.peer.restart_offer(servers))
            await self.peer.accept_restart(answer)
        except (ProblemError, RestartConflict, InvalidOffer) as exc:
            log.warning("session %s: ICE restart failed: %s", self.id, exc)

    def _on_restart_failed(self) -> None:
        log.warning("session %s: the restarted ICE path did not connect", self.id)

    async def _add_remote_candidate(self, init: dict[str, Any] | None) -> None:
        try:
            await self.peer.add_candidate(init)
        except InvalidCandidate as exc:
            log.warning("session %s: ignoring a server candidate: %s", self.id, exc)

    async def _refresh(self) -> tuple[str, GenerationEnded | None]:
        """GET the session: a fresh event token and ETag, or how it ended."""
        state = await self.state()
        if state.get("status") == "ended":
            summary = state.get("summary") or {}
            return "", GenerationEnded(
                None, float(summary.get("seconds") or 0.0), str(summary.get("reason") or "")
            )
        return str(state["events"]["event_token"]), None

    async def events(self) -> AsyncIterator[ServerEvent]:
        """Every server event from the start of the session, then live ones, until the end."""
        index = 0
        while True:
            while index < len(self.history):
                yield self.history[index]
                index += 1
            if self.ended is not None or self._follower is None or self._follower.done:
                return
            self._changed.clear()
            await self._changed.wait()

    # media ------------------------------------------------------------------------------

    def _on_frame(self, frame: VideoFrame, at: float) -> None:
        self.stats.on_received(self._read_marker(frame), at)
        if self.sink is not None:
            self.sink.write(frame, at)
        for reader in self._readers:
            reader.put(frame)
        self._changed.set()

    def _on_media_ended(self) -> None:
        for reader in self._readers:
            reader.end()

    def _read_marker(self, frame: VideoFrame) -> int | None:
        if not self._mark:
            return None
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        return read_stamp(plane(frame, 0))

    async def frames(self, buffer: int = 2) -> AsyncIterator[BGRFrame]:
        """The transformed frames as BGR arrays, from now until the session ends. A reader
        slower than the stream skips to the newest `buffer` frames (the file sink, if any,
        still gets every frame)."""
        reader = _Reader(buffer)
        if self._closing is not None or self.peer.ended:
            reader.end()
        self._readers.add(reader)
        try:
            while (frame := await reader.get()) is not None:
                yield await asyncio.to_thread(to_bgr, frame)
        finally:
            self._readers.discard(reader)

    async def source_ended(self) -> None:
        """Wait until the source has no more frames (a file's end) or the session ended."""
        while not self._outbound.ended.is_set() and self.ended is None:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.2)

    async def drain(self, idle: float = DRAIN_IDLE, timeout: float = DRAIN_TIMEOUT) -> None:
        """Wait for the frames still in flight: until none came for `idle` seconds, or for
        DRAIN_GAPS frame intervals when frames come slower than that (a loaded server), at most
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.ended is None:
            last = self.stats.last_received_at
            fps = self.stats.received_fps
            quiet = max(idle, DRAIN_GAPS / fps) if fps else idle
            if last is not None and time.monotonic() - last >= quiet:
                return
            await asyncio.sleep(0.05)

    # control ----------------------------------------------------------------------------

    async def state(self) -> dict[str, Any]:
        """GET the session (status, prompt, leg, stats; a fresh event token; the ETag)."""
        response = await self._control.request("GET", self._path)
        self.trickle.etag = response.headers.get("etag", self.trickle.etag)
        body: dict[str, Any] = response.json()
        return body

    async def set_prompt(self, prompt: str, enhance_prompt: bool = True) -> dict[str, Any]:
        """Change the prompt; the answer echoes it (and the enhanced text)."""
        response = await self._control.request(
            "POST",
            f"{self._path}/prompt",
            json={"prompt": prompt, "enhance_prompt": enhance_prompt},
        )
        body: dict[str, Any] = response.json()
        return body

    async def set_image(
        self,
        image: bytes | str | os.PathLike[str],
        prompt: str | None = None,
        enhance_prompt: bool = True,
    ) -> dict[str, Any]:
        """Set the reference image (a file path or its bytes), optionally with a prompt."""
        body: dict[str, Any] = {"image_data": image_data(image), "enhance_prompt": enhance_prompt}
        if prompt is not None:
            body["prompt"] = prompt
        response = await self._control.request("POST", f"{self._path}/image", json=body)
        result: dict[str, Any] = response.json()
        return result

    async def close(self) -> Summary:
        """End the session (DELETE) and return its billing summary; idempotent, and safe to call
        while the session closes itself at the end of its source. Frames received until then
        are all in the output file when this returns."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        return await asyncio.shield(self._closing)

    async def _close(self) -> Summary:
        try:
            response = await self._control.request("DELETE", self._path)
            summary = Summary.of(response.json())
            if self._follower is not None:
                await self._follower.wait(END_EVENT_WAIT)
        finally:
            await self._teardown()
        return summary

    async def _teardown(self) -> None:
        self._client._forget(self)
        if self._finisher is not None and self._finisher is not asyncio.current_task():
            self._finisher.cancel()
        if self._follower is not None:
            await self._follower.stop()
        await self.trickle.close()
        await self.peer.close()  # ends the readers too
        self.source.close()
        if self.sink is not None:
            await self.sink.close()
