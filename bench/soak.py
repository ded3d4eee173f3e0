"""Soak at capacity: as many concurrent sessions as the server admits, held for `--duration`
seconds by clients that join and leave (each streams 5-15 s, then DELETEs), against a server in
its own process. Afterwards the server's RSS, asyncio tasks, threads, file descriptors and UDP
sockets must be back where they were, and every billing summary must match its generation time.

    python bench/soak.py [--duration 600] [--min-hold 5] [--max-hold 15]

Prints one table (the README quotes it). Loopback only: the server gathers on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import socket
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from framewire.api.app import create_app
from framewire.api.connections import bounded_http
from framewire.config import Settings
from framewire.media.gathering import install_trickle

KEY = "soak-key"
CREDIT = 1_000_000.0
SESSIONS = "/v1/realtime/sessions"
TOLERANCE = 0.010


# --- the server process -------------------------------------------------------------------


def udp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as lines:
            next(lines)
            inodes |= {line.split()[9] for line in lines}
    return inodes


def census() -> dict[str, float]:
    """What this process holds now (called in the server's event loop)."""
    gc.collect()
    fds = os.listdir("/proc/self/fd")
    sockets = []
    for fd in fds:
        try:
            sockets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    udp = udp_inodes()
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "rss_mb": round(rss / 1024, 1),
        "asyncio_tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        "fds": len(fds),
        "udp_sockets": sum(s.startswith("socket:[") and s[8:-1] in udp for s in sockets),
        "other_sockets": sum(s.startswith("socket:[") and s[8:-1] not in udp for s in sockets),
    }


def serve(port: int) -> None:
    """The server: framewire on 127.0.0.1:`port`; SIGUSR1 prints a census line on stdout."""
    settings = Settings(api_keys={KEY: CREDIT}, ice_interfaces=["127.0.0.1"], tick_interval=1.0)
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", http=bounded_http(settings)
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: print(json.dumps(census()), flush=True))
        await server.serve()

    asyncio.run(run())


# --- the clients --------------------------------------------------------------------------


class Peer:
    """A client: sends aiortc's synthetic video, gathers on loopback, counts frames back."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(VideoStreamTrack())
        self.received = 0
        self.first_frame = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.received += 1
                self.first_frame.set()
        except MediaStreamError:
            pass

    async def offer(self) -> str:
        install_trickle(self.pc, ["127.0.0.1"], None, lambda gatherer, candidate: None)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.pc.close()


def seconds_between(start: str, end: str) -> float:
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


async def one_session(http: httpx.AsyncClient, hold: float) -> dict[str, Any] | None:
    peer = Peer()
    try:
        offer = await peer.offer()
        response = await http.post(
            SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
        )
        if response.status_code == 503:  # a leaving session has not freed its place yet
            return None
        assert response.status_code == 201, response.text
        await peer.accept(response.json()["sdp"]["sdp"])
        await asyncio.wait_for(peer.first_frame.wait(), 20)
        first = time.monotonic()
        await asyncio.sleep(hold)
        deleted = time.monotonic()
        summary: dict[str, Any] = (await delete(http, response.headers["location"])).json()
        summary["client_seconds"] = deleted - first
        return summary
    finally:
        await peer.close()


async def delete(http: httpx.AsyncClient, url: str) -> httpx.Response:
    """DELETE (idempotent), once more if the keep-alive connection closed under the request."""
    try:
        return await http.delete(url)
    except httpx.RemoteProtocolError:
        return await http.delete(url)


async def slot(
    http: httpx.AsyncClient, until: float, args: argparse.Namespace, summaries: list[dict[str, Any]]
) -> None:
    rand = random.Random()
    while time.monotonic() < until:
        hold = min(rand.uniform(args.min_hold, args.max_hold), max(0.0, until - time.monotonic()))
        summary = await one_session(http, hold)
        if summary is None:
            await asyncio.sleep(0.2)
        else:
            summaries.append(summary)


class Server:
    def __init__(self, port: int) -> None:
        self.process = asyncio.subprocess.Process  # set in start
        self.port = port

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(  # type: ignore[assignment]
            sys.executable, __file__, "--serve", str(self.port), stdout=asyncio.subprocess.PIPE
        )

    async def settled_census(self) -> dict[str, float]:
        """A census once threads and fds stop changing (closing peers' threads exit late)."""
        last = await self.census()
        for _ in range(15):
            await asyncio.sleep(1.0)
            now = await self.census()
            if all(now[n] == last[n] for n in ("asyncio_tasks", "threads", "fds")):
                return now
            last = now
        return last

    async def census(self) -> dict[str, float]:
        self.process.send_signal(signal.SIGUSR1)  # type: ignore[attr-defined]
        line = await asyncio.wait_for(self.process.stdout.readline(), 10)  # type: ignore[attr-defined]
        result: dict[str, float] = json.loads(line)
        return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def settle(http: httpx.AsyncClient, capacity: int) -> None:
    """Wait until every place is free again, then a little for closes to finish."""
    for _ in range(100):
        if (await http.get("/readyz")).json().get("free_sessions") == capacity:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(3.0)


async def soak(args: argparse.Namespace) -> int:
    server = Server(free_port())
    await server.start()
    url = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": KEY}, timeout=20) as http:
        for _ in range(200):
            try:
                capacity = int((await http.get("/readyz")).json()["free_sessions"])
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        # warm up at capacity first: thread pools, keep-alive connections and allocator arenas
        # grow to their working size once; the census compares after that
        warm: list[dict[str, Any]] = []
        quick = argparse.Namespace(min_hold=1.0, max_hold=3.0)
        until = time.monotonic() + args.warmup
        await asyncio.gather(*(slot(http, until, quick, warm) for _ in range(capacity)))
        await settle(http, capacity)
        start = await server.settled_census()
        summaries: list[dict[str, Any]] = []
        middle: dict[str, float] = {}
        began = time.monotonic()
        for half in (1, 2):
            until = began + args.duration * half / 2
            await asyncio.gather(*(slot(http, until, args, summaries) for _ in range(capacity)))
            await settle(http, capacity)
            middle = middle or await server.settled_census()
        held = time.monotonic() - began
        end = await server.settled_census()
    server.process.terminate()  # type: ignore[attr-defined]
    await server.process.wait()  # type: ignore[attr-defined]
    return report(args, capacity, held, (start, middle, end), summaries)


def report(
    args: argparse.Namespace,
    capacity: int,
    held: float,
    censuses: tuple[dict[str, float], dict[str, float], dict[str, float]],
    summaries: list[dict[str, Any]],
) -> int:
    """The table. Leaks: growth from the middle census (taken once all sessions of the first
    half ended) to the end; the start (after a warm-up at capacity) is shown beside them."""
    start, middle, end = censuses
    drift = [abs(s["seconds"] - seconds_between(s["started_at"], s["ended_at"])) for s in summaries]
    billed = [abs(s["credits_charged"] - s["seconds"]) for s in summaries]
    observed = [s["seconds"] - s["client_seconds"] for s in summaries]
    print(
        f"soak: {capacity} concurrent sessions (the server's capacity) for {held:.0f} s, "
        f"{len(summaries)} sessions joined and left (holds {args.min_hold}-{args.max_hold} s)"
    )
    print(f"{'server, idle':<16}{'start':>10}{'half-way':>10}{'end':>10}{'growth':>10}")
    for name in start:
        growth = round(end[name] - middle[name], 1)
        print(f"{name:<16}{start[name]:>10}{middle[name]:>10}{end[name]:>10}{growth:>10}")
    print(f"{'billing, seconds':<60}{'max':>8}")
    print(f"{'|seconds - (ended_at - started_at)|':<60}{max(drift, default=0):>8.3f}")
    print(f"{'|credits_charged - seconds|':<60}{max(billed, default=0):>8.3f}")
    print(
        f"{'seconds - client view (first frame in .. DELETE out), mean':<60}"
        f"{statistics.mean(observed) if observed else 0:>8.3f}"
    )
    counted = ("asyncio_tasks", "threads", "fds", "udp_sockets")
    leaks = [name for name in counted if end[name] > middle[name]]
    if end["rss_mb"] > middle["rss_mb"] * 1.1:
        leaks.append("rss_mb")
    ok = not leaks and max(drift, default=0) <= TOLERANCE and max(billed, default=0) <= TOLERANCE
    print("result:", "ok" if ok else f"FAILED (grew: {leaks})")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--min-hold", type=float, default=5.0)
    parser.add_argument("--max-hold", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
