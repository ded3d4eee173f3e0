"""One UDP port for all legs (FRAMEWIRE_ICE_UDP_PORT): cross-talk, first-frame time, demux cost.

    .venv/bin/python bench/udp_mux.py [--legs 100] [--fps 5] [--runs 8] [--packets 200000]

1. `--legs` sessions at once against `framewire serve` (a child process) with
   FRAMEWIRE_ICE_UDP_PORT set: every client sends 160x120 frames stamped with numbers from its
   own range (framewire.media.probe); every stamp read back must be from the client's own range.
   Prints legs, frames checked, foreign frames (must be 0) and the sessions' host ports.
2. Create-to-first-frame (POST sent -> first frame decoded), `--runs` sessions one after the
   other, alternating a server on the shared port and one on per-leg ephemeral ports. Prints
   p50/p90 of each and the ratio (target: shared within 10 % of per-leg).
3. Demultiplexing cost, in-process: `--packets` datagrams through `UdpMux.datagram_received`
   against 100 legs, beside the same datagrams handed straight to each leg's protocol (what a
   per-leg socket does). Prints microseconds per packet of each and the difference, and the
   mux's own cost for a STUN check (target: < 20 us). CPU time (process_time), so other load
   on the machine inflates it less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import cv2
import httpx
import numpy as np
from aioice import Connection, stun

from framewire.client import RealtimeClient, Session
from framewire.media.udpmux import UdpMux, bind_udp
from framewire.rtc.sockets import host_candidate
from framewire.rtc.stamp import read_stamp, stamp

KEY = "bench-key"
SPAN = 150
SIZE = (160, 120)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def server(legs: int, udp_port: int | None) -> AsyncIterator[str]:
    """`framewire serve` on loopback in a child process; its base URL once it answers."""
    port = free_port(socket.SOCK_STREAM)
    env = {
        **os.environ,
        "FRAMEWIRE_API_KEYS": KEY,
        "FRAMEWIRE_ICE_INTERFACES": "127.0.0.1",
        "FRAMEWIRE_MAX_SESSIONS": str(legs),
        "FRAMEWIRE_SHED_LOAD": "false",  # a fixed capacity: this measures the port, not admission
        "FRAMEWIRE_KEY_CONCURRENCY": str(legs),
    }
    if udp_port is not None:
        env["FRAMEWIRE_ICE_UDP_PORT"] = str(udp_port)
    argv = [sys.executable, "-m", "framewire.cli", "serve", "--port", str(port)]
    process = await asyncio.create_subprocess_exec(
        *argv, "--log-level", "warning", env=env, stderr=asyncio.subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                if process.returncode is not None:
                    raise RuntimeError("the server exited")
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)


def stamped(offset: int) -> Iterator[np.ndarray]:
    """Frames stamped offset, offset+1, ... (wrapping within the client's own range)."""
    number = 0
    while True:
        image = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
        image[:, : SIZE[0] // 2] = (200, 80, 40)
        stamp(image, offset + number % SPAN)
        number += 1
        yield image


def stamp_of(frame: np.ndarray) -> int | None:
    return read_stamp(np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8))


async def read_back(session: Session, offset: int, frames: int) -> tuple[int, int]:
    """(stamps read, stamps from another client's range) over `frames` frames."""
    read = foreign = 0
    seen = 0
    async for frame in session.frames():
        number = stamp_of(frame)
        if number is not None:
            read += 1
            foreign += not offset <= number < offset + SPAN
        seen += 1
        if seen >= frames:
            break
    return read, foreign


async def cross_talk(legs: int, fps: int) -> None:
    udp_port = free_port(socket.SOCK_DGRAM)
    async with server(legs, udp_port) as url, RealtimeClient(url, KEY) as client:
        sessions = await asyncio.gather(
            *(client.connect(stamped(i * SPAN), model="passthrough", fps=fps) for i in range(legs))
        )
        ports = {
            int(line.split()[5])
            for s in sessions
            for line in s.peer.pc.remoteDescription.sdp.splitlines()
            if line.startswith("a=candidate:") and " typ host" in line
        }
        results = await asyncio.wait_for(
            asyncio.gather(*(read_back(s, i * SPAN, 10) for i, s in enumerate(sessions))), 300
        )
        for session in sessions:
            await session.close()
    read = sum(r for r, _ in results)
    foreign = sum(f for _, f in results)
    print("| legs on one port | frames with a readable stamp | foreign frames | host ports |")
    print("|---|---|---|---|")
    print(f"| {legs} | {read} | {foreign} | {sorted(ports)} (shared: {udp_port}) |")


async def first_frame(url: str) -> float:
    async with RealtimeClient(url, KEY) as client:
        start = time.perf_counter()
        session = await client.connect(stamped(0), model="passthrough", fps=20)
        async for _ in session.frames():
            break
        elapsed = time.perf_counter() - start
        await session.close()
    return elapsed


async def first_frames(runs: int) -> None:
    timings: dict[str, list[float]] = {"shared port": [], "per-leg ports": []}
    async with (
        server(4, free_port(socket.SOCK_DGRAM)) as shared,
        server(4, None) as ephemeral,
    ):
        for run in range(runs):
            order = [("shared port", shared), ("per-leg ports", ephemeral)]
            for name, url in order if run % 2 else order[::-1]:  # alternate who goes first
                timings[name].append(await first_frame(url))
    print("\n| create -> first frame | p50 ms | p90 ms |")
    print("|---|---|---|")
    for name, values in timings.items():
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
        print(f"| {name} | {statistics.median(values) * 1000:.0f} | {p90 * 1000:.0f} |")
    ratio = statistics.median(timings["shared port"]) / statistics.median(timings["per-leg ports"])
    print(f"\nshared / per-leg (p50): {ratio:.3f}")


def demux_cost(packets: int, legs: int = 100) -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    sock = bind_udp("127.0.0.1", 0)
    mux = UdpMux(sock)  # never started: datagrams are handed to it below, not read
    protocols, addresses = [], []
    for i in range(legs):
        conn = Connection(ice_controlling=False)
        conn.data_received = lambda data, component: None  # type: ignore[method-assign]
        protocol = mux.attach(conn)
        protocol.local_candidate = host_candidate(1, "127.0.0.1", 3479)
        address = ("127.0.0.1", 20000 + i)
        mux.send(protocol, b"", address)  # the leg sent to its (loopback) peer: address learnt
        protocols.append(protocol)
        addresses.append(address)
    rtp = bytes([0x80, 96]) + os.urandom(1100)
    check = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    conn = protocols[0].receiver
    check.attributes["USERNAME"] = f"{conn.local_username}:peer"
    check.attributes["PRIORITY"] = 1
    check.add_message_integrity(conn.local_password.encode())
    check.add_fingerprint()
    checks = bytes(check)

    def timed(deliver: Any, data: bytes, count: int) -> float:
        start = time.process_time()
        for n in range(count):
            i = n % legs
            deliver(i, data)
        return (time.process_time() - start) / count * 1e6

    direct = timed(lambda i, d: protocols[i].datagram_received(d, addresses[i]), rtp, packets)
    muxed = timed(lambda i, d: mux.datagram_received(d, addresses[i]), rtp, packets)
    print("\n| per packet, 100 legs (CPU us) | per-leg socket | shared port | mux overhead |")
    print("|---|---|---|---|")
    print(f"| media (RTP/DTLS, by address) | {direct:.2f} | {muxed:.2f} | {muxed - direct:.2f} |")
    # A connectivity check costs the mux a parse, a ufrag lookup and an HMAC before the leg's
    # own handling (which a per-leg socket does too): that is its overhead.
    count = max(1, packets // 10)
    owner = timed(lambda i, d: mux._stun_owner(d, addresses[0]), checks, count)
    print(f"| STUN check (by ufrag, integrity verified) | - | - | {owner:.2f} |")
    mux.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=100)
    parser.add_argument("--fps", type=int, default=5)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--packets", type=int, default=200_000)
    args = parser.parse_args()
    print(f"# bench/udp_mux.py on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    asyncio.run(cross_talk(args.legs, args.fps))
    asyncio.run(first_frames(args.runs))
    demux_cost(args.packets)


if __name__ == "__main__":
    main()
