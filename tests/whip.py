"""WHIP publishers and WHEP viewers for tests: aiortc peers speaking `application/sdp` as RFC 9725
clients do (a sendonly offer in, a recvonly offer out), gathering on loopback only."""

from __future__ import annotations

import asyncio
import time
from collections import deque

import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

from framewire.rtc.gathering import install_trickle
from tests.peers import LOOPBACK
from tests.stamped import StampedCamera, stamp_of

SDP = "application/sdp"


async def local_offer(pc: RTCPeerConnection, interfaces: list[str] = LOOPBACK) -> str:
    install_trickle(pc, interfaces, None, lambda g, c: None)
    await pc.setLocalDescription(await pc.createOffer())
    return str(pc.localDescription.sdp)


class Publisher:
    """A WHIP client: a stamped camera on a sendonly transceiver."""

    def __init__(self, fps: int = 20, width: int = 320, height: int = 240) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.camera = StampedCamera(fps, width, height)
        self.pc.addTransceiver(self.camera, direction="sendonly")
        self.location = ""
        self.etag = ""
        self.links: list[str] = []

    async def publish(
        self, http: httpx.AsyncClient, path: str = "/v1/whip/passthrough", **params: str
    ) -> httpx.Response:
        offer = await local_offer(self.pc)
        response = await http.post(
            path, content=offer, headers={"Content-Type": SDP}, params=params
        )
        if response.status_code == 201:
            self.location, self.etag = response.headers["location"], response.headers["etag"]
            self.links = response.headers.get_list("link")
            await self.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        return response

    def events_url(self) -> str:
        """The event stream's URL, from the WHIP response's `Link` header."""
        link = next(link for link in self.links if "server-sent-events" in link)
        return link[link.index("<") + 1 : link.index(">")]

    async def wait_connected(self, timeout: float = 20.0) -> None:
        await connected(self.pc, timeout)

    async def close(self) -> None:
        await self.pc.close()


async def connected(pc: RTCPeerConnection, timeout: float = 20.0) -> None:
    """Wait (bounded) until the peer connection is connected."""
    deadline = time.monotonic() + timeout
    while pc.connectionState != "connected":
        if time.monotonic() > deadline:
            raise TimeoutError(f"connection state {pc.connectionState}")
        await asyncio.sleep(0.05)


class Viewer:
    """A WHEP client: a recvonly video transceiver; keeps each frame's stamp and arrival."""

    def __init__(self, interfaces: list[str] = LOOPBACK) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        self.interfaces = interfaces
        self.stamps: list[int | None] = []
        self.arrivals: list[float] = []
        self.last: np.ndarray | None = None
        self.ended = asyncio.Event()
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.location = ""
        self.etag = ""
        self.recent: deque[np.ndarray] = deque(maxlen=5)
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, VideoFrame)
                image = frame.to_ndarray(format="bgr24")
                self.last = image
                self.recent.append(image)
                self.stamps.append(stamp_of(image))
                self.arrivals.append(time.monotonic())
                self._changed.set()
        except MediaStreamError:
            pass
        finally:
            self.ended.set()

    async def watch(
        self, http: httpx.AsyncClient, session_url: str, answer: bool = True
    ) -> httpx.Response:
        offer = await local_offer(self.pc, self.interfaces)
        response = await http.post(
            f"{session_url}/whep", content=offer, headers={"Content-Type": SDP}
        )
        if response.status_code == 201:
            self.location, self.etag = response.headers["location"], response.headers["etag"]
            if answer:
                await self.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        return response

    async def wait_frames(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` frames in all have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.stamps) < count:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"viewer got {len(self.stamps)} frames, wanted {count}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    def fps(self, since: float) -> float:
        """Frames per second received since `since` (monotonic)."""
        times = [t for t in self.arrivals if t >= since]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.pc.close()
