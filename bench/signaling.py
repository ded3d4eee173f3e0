"""Create-session latency on loopback: framewire's POST /v1/realtime/sessions beside a bare aiortc
offer/answer handler, measured in the same run, with and without a STUN server that never replies.

    python bench/signaling.py [--sessions 50] [--silent-stun-samples 5]

Prints one table; ratios are framewire / bare aiortc for the same ICE configuration."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from proxy import an_offer  # bench/proxy.py (this script's folder is on sys.path)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from framewire.api.app import create_app
from framewire.config import Settings
from framewire.run.embedded import serving

KEY = "bench-key"


def bare_aiortc_app(ice_servers: list[RTCIceServer]) -> Starlette:
    """The textbook aiortc server: answer an offer, echo the video back."""
    pcs: set[RTCPeerConnection] = set()
    relay = MediaRelay()

    async def offer(request: Request) -> JSONResponse:
        body = await request.json()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
        pcs.add(pc)

        @pc.on("track")
        def on_track(track: Any) -> None:
            pc.addTrack(relay.subscribe(track))

        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return JSONResponse({"sdp": pc.localDescription.sdp})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await asyncio.gather(*(pc.close() for pc in pcs))

    return Starlette(routes=[Route("/offer", offer, methods=["POST"])], lifespan=lifespan)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def time_bare(url: str, offer: str, n: int) -> list[float]:
    samples = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(n):
            start = time.perf_counter()
            response = await http.post("/offer", json={"sdp": offer})
            samples.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
    return samples


async def time_framewire(url: str, offer: str, n: int) -> list[float]:
    samples = []
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"x-api-key": KEY}) as http:
        for _ in range(n):
            start = time.perf_counter()
            response = await http.post(
                "/v1/realtime/sessions",
                json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}},
            )
            samples.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 201, response.text
            await http.delete(f"/v1/realtime/sessions/{response.json()['session_id']}")
    return samples


async def run(sessions: int, silent_samples: int) -> list[tuple[str, str, list[float]]]:
    pc, offer = await an_offer()
    await pc.close()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # a STUN server that never answers
    stun = f"stun:127.0.0.1:{silent.getsockname()[1]}"
    rows = []
    for label, servers, n_bare in (("none", [], sessions), ("silent", [stun], silent_samples)):
        settings = Settings(
            api_keys={KEY: None},
            ice_interfaces=["127.0.0.1"],
            ice_servers=[{"urls": u} for u in servers],
            max_sessions=10_000,
            key_concurrency=10_000,
        )
        async with serving(bare_aiortc_app([RTCIceServer(u) for u in servers])) as bare:
            rows.append(("bare aiortc", label, await time_bare(bare, offer, n_bare)))
        async with serving(create_app(settings)) as ours:
            rows.append(("framewire", label, await time_framewire(ours, offer, sessions)))
    silent.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--silent-stun-samples", type=int, default=5)
    args = parser.parse_args()
    rows = asyncio.run(run(args.sessions, args.silent_stun_samples))
    base = {stun: percentile(s, 0.5) for name, stun, s in rows if name == "bare aiortc"}
    header = ("handler", "STUN server", "n", "p50 ms", "p95 ms", "p50 ratio")
    print("{:<13}{:<13}{:>4}{:>10}{:>10}{:>11}".format(*header))
    for name, stun, samples in rows:
        p50 = percentile(samples, 0.5)
        print(
            f"{name:<13}{stun:<13}{len(samples):>4}{p50:>10.1f}{percentile(samples, 0.95):>10.1f}"
            f"{p50 / base[stun]:>11.3g}"
        )


if __name__ == "__main__":
    main()
