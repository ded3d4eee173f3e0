"""Round trip and output fps of one 1280x720@20 session, beside a bare aiortc echo.

    /tmp/venv/bin/python bench/latency.py [--seconds 60] [--prompt anime] [--cv2-threads 0]
        [--backend NAME]
        [--cases echo:stock,echo:browser,passthrough:stock,passthrough:browser,style:browser]

An aiortc client in this process sends a panning photo-like scene at 1280x720@20 to a server in
a child process over loopback and reads what comes back:
- `echo`: a bare aiortc answerer that sends the received track straight back (no framewire);
- `passthrough`: a framewire session on a 1280x720@20 passthrough model;
- `style`: a framewire session on `lucy_2_rt` (1280x720@20) with a built-in style (`--prompt`),
  or on a plugin backend (`--backend NAME`, docs/plugins.md).
The client is either `stock` aiortc, or `browser`-like: it releases frames on the RTP marker bit
and keeps a steady encoder bitrate, as browsers do (framewire.rtc.jitter, framewire.media.codecs).

Method: every frame carries its number as black/white blocks in the top-left corner
(framewire.rtc.stamp), which survives the codec and the built-in styles. Round trip = the time
the client's camera handed frame N to aiortc -> the time the client decoded a frame stamped N.
The first 2 s after the first returned frame are warm-up and not counted; "first"/"last" are the
p50 of the first and last 10 s (no build-up: they match). "kf/30s" counts keyframes in the
returned stream (seen before decoding): with stock aiortc each is an encoder rebuild forced by a
bitrate change (or a PLI). "server p50/p95" is the leg's own inbound-arrival -> outbound-hand-off
time (framewire only). A prompt whose style hides the stamp shows as "lost" frames.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import math
import os
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame
from models import percentiles, scene  # bench/models.py (this script's folder is on sys.path)

from framewire.media.codecs import BitratePolicy, install_bitrate_policy
from framewire.media.pixels import encodable
from framewire.media.probe import count_keyframes
from framewire.rtc.gathering import install_trickle
from framewire.rtc.peer import Peer
from framewire.rtc.stamp import MODULUS, luma, read_stamp, stamp

SCRIPT = os.path.abspath(__file__)

WIDTH, HEIGHT, FPS = 1280, 720, 20
LOOPBACK = ["127.0.0.1"]
API_KEY = "bench-" + secrets.token_hex(8)
PASSTHROUGH_720P = "passthrough_720p20"
WARMUP = 2.0
DEFAULT_CASES = "echo:stock,echo:browser,passthrough:stock,passthrough:browser,style:browser"


class Camera(MediaStreamTrack):
    """A 1280x720@20 camera: pans across the scene, stamps each frame with its number, hands
    aiortc yuv420p as a camera does, and drops slots it is late for instead of catching up."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._canvas = scene(WIDTH, HEIGHT)
        self._start: float | None = None
        self.newest = -1
        self.sent_at: dict[int, float] = {}

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        number = max(self.newest + 1, math.ceil((now - self._start) * FPS))
        delay = self._start + number / FPS - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        x = (number * 7) % (self._canvas.shape[1] - WIDTH)
        image = np.ascontiguousarray(self._canvas[:, x : x + WIDTH])
        stamp(image, number)
        frame = encodable(image)
        frame.pts = number * (90_000 // FPS)
        frame.time_base = fractions.Fraction(1, 90_000)
        self.sent_at[number] = time.monotonic()
        self.newest = number
        return frame


@dataclass
class Result:
    case: str
    client: str
    rtts: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    frames: int = 0
    unreadable: int = 0
    keyframes: int = 0
    seconds: float = 0.0
    server: dict[str, Any] = field(default_factory=dict)


class Client(Peer):
    """One session's client (framewire.rtc.peer, the Python client's peer): the camera out,
    stamped frames back, round trips recorded. Not `browser_like`: stock aiortc's receiver and
    encoder."""

    def __init__(self, browser_like: bool) -> None:
        self.camera = Camera()
        super().__init__(
            self.camera, self._on_frame, interfaces=LOOPBACK, marker_release=browser_like
        )
        self.browser_like = browser_like
        self.counter = count_keyframes(self.pc)
        self.received: list[tuple[float, float]] = []
        self.unreadable: list[float] = []
        self.first_frame = asyncio.Event()

    async def accept(self, answer: str) -> None:
        await super().accept(answer)
        if self.browser_like:
            install_bitrate_policy(self.pc, BitratePolicy.for_video(WIDTH, HEIGHT, FPS))

    def _on_frame(self, frame: VideoFrame, now: float) -> None:
        stamped = read_stamp(luma(frame))
        sent = self._sent_at(stamped)
        if sent is None:
            self.unreadable.append(now)
            return
        self.received.append((now, now - sent))
        self.first_frame.set()

    def _sent_at(self, stamped: int | None) -> float | None:
        """When the camera sent the newest frame whose number matches a stamp (mod 2**14)."""
        newest = self.camera.newest
        if stamped is None or newest < 0:
            return None
        return self.camera.sent_at.get(newest - (newest - stamped) % MODULUS)


@contextlib.asynccontextmanager
async def child(role: str, args: argparse.Namespace) -> AsyncIterator[str]:
    """Run a server role of this script in a child process; yield its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, SCRIPT, "--serve", role, "--port", str(port),
        "--cv2-threads", str(args.cv2_threads), "--seconds", str(args.seconds),
        *(["--backend", args.backend] if args.backend else []),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    await http.get(url + "/healthz")
                    break
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        await process.wait()


async def run_case(case: str, client_mode: str, url: str, args: argparse.Namespace) -> Result:
    client = Client(browser_like=client_mode == "browser")
    offer = await client.offer()
    result = Result(case, client_mode)
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": API_KEY}, timeout=30) as http:
        session = None
        if case == "echo":
            answer = (await http.post("/offer", json={"sdp": offer})).json()["sdp"]
        else:
            model, prompt = (
                (PASSTHROUGH_720P, "") if case == "passthrough" else ("lucy_2_rt", args.prompt)
            )
            created = await http.post(
                "/v1/realtime/sessions",
                json={
                    "model": model,
                    "sdp": {"type": "offer", "sdp": offer},
                    "prompt": prompt or None,
                    "enhance_prompt": False,
                },
            )
            created.raise_for_status()
            session = created.json()["session_id"]
            answer = created.json()["sdp"]["sdp"]
        await client.accept(answer)
        await asyncio.wait_for(client.first_frame.wait(), 30)
        start = time.monotonic() + WARMUP
        keyframes_before = None
        while time.monotonic() < start + args.seconds:
            if keyframes_before is None and time.monotonic() >= start:
                keyframes_before = client.counter.keyframes
            await asyncio.sleep(0.25)
        end = time.monotonic()
        if session is not None:
            state = (await http.get(f"/v1/realtime/sessions/{session}")).json()
            leg = (await http.get(f"/v1/legs/{state['leg_id']}")).json()
            result.server = leg.get("stats", {})
            await http.delete(f"/v1/realtime/sessions/{session}")
    window = [(t, rtt * 1000) for t, rtt in client.received if start <= t < end]
    result.rtts = [rtt for _, rtt in window]
    span = min(10.0, args.seconds / 3)
    result.first = [rtt for t, rtt in window if t < start + span]
    result.last = [rtt for t, rtt in window if t >= end - span]
    result.frames = len(window)
    result.unreadable = sum(1 for t in client.unreadable if start <= t < end)
    result.keyframes = client.counter.keyframes - (keyframes_before or 0)
    result.seconds = end - start
    await client.close()
    return result


def report(results: list[Result], seconds: float) -> None:
    span = min(10.0, seconds / 3)
    print(
        f"{'case':<22} {'client':<8} {'rtt p50':>8} {'p95':>6} {'first':>6} {'last':>6} "
        f"{'fps':>5} {'lost':>5} {'kf/30s':>7} {'server p50/p95':>15}"
    )
    for r in results:
        added = ""
        if r.server:
            added = f"{r.server.get('added_latency_ms_p50')}/{r.server.get('added_latency_ms_p95')}"
        p50, p95 = percentiles(r.rtts)
        print(
            f"{r.case:<22} {r.client:<8} {p50:8.1f} {p95:6.1f} {percentiles(r.first)[0]:6.1f} "
            f"{percentiles(r.last)[0]:6.1f} {r.frames / r.seconds:5.1f} {r.unreadable:5d} "
            f"{r.keyframes * 30 / r.seconds:7.1f} {added:>15}"
        )
    print(
        f"rtt in ms (camera hand-off -> client decode); first/last = p50 of the first/last "
        f"{span:.0f} s; fps = stamped frames back per second; lost = frames back without a "
        "readable stamp"
    )


async def bench(args: argparse.Namespace) -> None:
    cv2.setNumThreads(1)
    cases = [tuple(item.split(":")) for item in args.cases.split(",")]
    results = []
    load = os.getloadavg()[0]
    print(
        f"{WIDTH}x{HEIGHT}@{FPS}, {args.seconds:.0f} s per case, style prompt {args.prompt!r}, "
        f"server cv2 threads {args.cv2_threads or 'default'}, load average {load:.2f}"
    )
    for role in ("echo", "framewire"):
        wanted = [(c, m) for c, m in cases if (c == "echo") == (role == "echo")]
        if not wanted:
            continue
        async with child(role, args) as url:
            for case, mode in wanted:
                result = await run_case(case, mode, url, args)
                label = case if case != "style" else f"style {args.prompt!r}"
                result.case = label
                results.append(result)
                print(f"  done {label} / {mode}: rtt p50 {percentiles(result.rtts)[0]:.1f} ms")
    report(results, args.seconds)


def serve_framewire(args: argparse.Namespace) -> None:
    import uvicorn

    from framewire.api.app import create_app
    from framewire.config import Settings
    from framewire.models.base import ModelSpec
    from framewire.models.registry import ModelRegistry

    registry = ModelRegistry.default()
    registry.register(ModelSpec(PASSTHROUGH_720P, FPS, WIDTH, HEIGHT, True, "passthrough"))
    if args.backend:
        registry.register(replace(registry.get("lucy_2_rt"), backend=args.backend))
    settings = Settings(
        api_keys={os.environ["BENCH_API_KEY"]: None},
        ice_interfaces=LOOPBACK,
        max_duration=args.seconds * 10 + 120,
    )
    app = create_app(settings, registry=registry)
    if args.cv2_threads:
        cv2.setNumThreads(args.cv2_threads)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def serve_echo(port: int) -> None:
    """The baseline: stock aiortc answering and echoing the video track (it gathers on
    loopback through framewire's trickle gatherer only because aioice skips 127.0.0.1)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    peers: set[RTCPeerConnection] = set()

    async def offer(request: Request) -> JSONResponse:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.add(pc)

        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                pc.addTrack(track)

        pc.on("track", on_track)
        body = await request.json()
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
        install_trickle(pc, LOOPBACK, None, lambda gatherer, candidate: None)
        await pc.setLocalDescription(await pc.createAnswer())
        return JSONResponse({"sdp": pc.localDescription.sdp})

    async def healthz(request: Request) -> Response:
        return Response("ok")

    app = Starlette(routes=[Route("/offer", offer, methods=["POST"]), Route("/healthz", healthz)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per case")
    parser.add_argument("--prompt", default="anime", help="the built-in style for the style case")
    parser.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated case:client")
    parser.add_argument(
        "--cv2-threads",
        type=int,
        default=0,
        help="server's cv2.setNumThreads; 0 = cv2's default, as `framewire serve` runs",
    )
    parser.add_argument("--backend", help="run the style case's lucy_2_rt on this backend")
    parser.add_argument("--serve", choices=("framewire", "echo"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is None:
        os.environ["BENCH_API_KEY"] = API_KEY
        asyncio.run(bench(args))
        return
    if args.serve == "echo":
        serve_echo(args.port)
    else:
        serve_framewire(args)


if __name__ == "__main__":
    main()
