"""WHEP viewers on one 1280x720@20 session: server CPU and round trips for 0, 1, 5, 10 viewers.

    .venv/bin/python bench/viewers.py [--seconds 20] [--viewers 0,1,5,10] [--model lucy_2_rt]

A publisher (bench/latency.py's browser-like aiortc client) sends stamped 1280x720@20 frames to a
`framewire` server in a child process and gets the output back on its own peer; N aiortc WHEP
viewers watch the same session: the first in this process, decoding; the others in a child
process of their own, counting the frames that reach them without decoding. For each N, on a
fresh session, after a 2 s warm-up:
- camera fps: frames the publisher sent per second; below 20 this process is itself short of
  CPU, and every figure after it is a measure of the machine's load;
- server CPU: the child process's user+system CPU seconds per wall second (`/proc/PID/stat`),
  and its ratio to the N=0 run (the session alone: model, decode and one encode);
- round trip p50 (ms): the publisher's camera hand-off of frame K -> the decode of a frame
  stamped K, at the publisher (its own peer) and at the first viewer, the one that decodes;
- viewer fps: frames per second per viewer (mean);
- keyframes/s: keyframes the shared encoder made (asked for by receivers: a joining viewer, a
  PLI after loss), each costing several delta frames' encoding;
- join ms: a viewer's WHEP POST -> its first decoded frame (the keyframe it asked for on joining);
- encodes per model frame: the session's `frames_encoded` / `frames_out` over the window (1.0
  when every output frame is encoded once, however many receivers there are).
The clients run on the same machine, so on a small one they compete with the server for CPU:
read the round trips with that in mind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame
from latency import API_KEY, FPS, HEIGHT, LOOPBACK, PASSTHROUGH_720P, WIDTH, Client

from framewire.rtc import internals
from framewire.rtc.gathering import install_trickle
from framewire.rtc.jitter import install_marker_release
from framewire.rtc.stamp import luma, read_stamp

SCRIPT = os.path.abspath(__file__)
LATENCY_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "latency.py")
WARMUP = 2.0
TICKS = os.sysconf("SC_CLK_TCK")


class CountingQueue(queue.Queue[Any]):
    """Stands in for an aiortc receiver's decoder queue: counts the encoded frames that arrive
    and drops them undecoded (the end-of-stream None still reaches the decoder thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(item, block, timeout)
        else:
            self.arrivals.append(time.monotonic())


class Watcher:
    """A WHEP viewer: decodes the session's output and times each stamped frame against the
    publisher's camera; or, `light`, only counts the frames that arrive (no decoding, no
    publisher needed), so that ten viewers don't starve the server of CPU."""

    def __init__(self, publisher: Client | None, light: bool = False) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        receiver = self.pc.addTransceiver("video", direction="recvonly").receiver
        self.counter: CountingQueue | None = None
        if light:  # before the receiver starts its decoder thread on this queue
            self.counter = CountingQueue()
            internals.RECEIVER_DECODER_QUEUE.set(receiver, self.counter)
        self.publisher = publisher
        self.received: list[tuple[float, float]] = []
        self.first_frame = asyncio.Event()
        self.asked_at = 0.0
        self.first_at = 0.0
        self._reader: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)

    async def watch(self, http: httpx.AsyncClient, session_id: str) -> None:
        install_trickle(self.pc, LOOPBACK, None, lambda gatherer, candidate: None)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.asked_at = time.monotonic()
        response = await http.post(
            f"/v1/realtime/sessions/{session_id}/whep",
            content=self.pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp"},
        )
        response.raise_for_status()
        await self.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        install_marker_release(self.pc)  # as browsers do, and as the publisher does

    def _on_track(self, track: MediaStreamTrack) -> None:
        if self.publisher is not None:  # a light viewer's track never gets a decoded frame
            self._reader = asyncio.get_running_loop().create_task(self._read(track, self.publisher))

    async def _read(self, track: MediaStreamTrack, publisher: Client) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                assert isinstance(frame, VideoFrame)
                sent = publisher._sent_at(read_stamp(luma(frame)))
                if sent is not None:
                    self.received.append((now, now - sent))
                    if not self.first_frame.is_set():
                        self.first_at = now
                        self.first_frame.set()

    def frames_between(self, start: float, end: float) -> int:
        if self.counter is not None:
            return sum(1 for t in self.counter.arrivals if start <= t < end)
        return sum(1 for t, _ in self.received if start <= t < end)

    async def joined(self) -> float:
        """Milliseconds from the WHEP POST to the first frame (decoded, or counted)."""
        deadline = time.monotonic() + 30
        while self.counter is not None and not self.counter.arrivals:
            if time.monotonic() > deadline:
                raise TimeoutError("no frame reached a viewer")
            await asyncio.sleep(0.01)
        if self.counter is not None:
            return 1000 * (self.counter.arrivals[0] - self.asked_at)
        await asyncio.wait_for(self.first_frame.wait(), 30)
        return 1000 * (self.first_at - self.asked_at)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.pc.close()


@dataclass
class Row:
    viewers: int
    cpu: float = 0.0
    publisher_rtts: list[float] = field(default_factory=list)
    viewer_rtts: list[float] = field(default_factory=list)
    viewer_fps: float = 0.0
    encodes_per_frame: float = 0.0
    output_fps: float = 0.0
    camera_fps: float = 0.0
    keyframes_per_second: float = 0.0
    joins: list[float] = field(default_factory=list)

    @property
    def cpu_per_frame(self) -> float:
        """Server CPU milliseconds per output frame: the cost that should not grow with N."""
        return 1000 * self.cpu / self.output_fps if self.output_fps else 0.0


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


@contextlib.asynccontextmanager
async def server(seconds: float) -> AsyncIterator[tuple[str, int]]:
    """`framewire` (bench/latency.py's server role) in a child process: its URL and pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, LATENCY_SCRIPT, "--serve", "framewire", "--port", str(port),
        "--cv2-threads", "0", "--seconds", str(seconds * 20),
        env={**os.environ, "BENCH_API_KEY": API_KEY},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    await http.get(url + "/healthz")
                    break
                await asyncio.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        await process.wait()


def window(samples: list[tuple[float, float]], start: float, end: float) -> list[float]:
    return [rtt * 1000 for t, rtt in samples if start <= t < end]


async def light_viewers(
    url: str, session_id: str, count: int, hold: float
) -> asyncio.subprocess.Process:
    """`count` counting viewers in a child process of their own (so that their receive paths
    don't take the publisher's CPU); it prints their join times, then, after `hold` seconds,
    every frame's arrival time (CLOCK_MONOTONIC is the same clock in every process)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, SCRIPT, "--watch", session_id, "--url", url, "--count", str(count),
        "--hold", str(hold), stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "BENCH_API_KEY": API_KEY},
    )  # fmt: skip


async def watch_child(args: argparse.Namespace) -> None:
    """The child's side of `light_viewers`."""
    watchers = [Watcher(None, light=True) for _ in range(args.count)]
    key = os.environ["BENCH_API_KEY"]  # the parent's: each process draws its own API_KEY
    async with httpx.AsyncClient(base_url=args.url, headers={"x-api-key": key}) as http:
        for watcher in watchers:
            await watcher.watch(http, args.watch)
    joins = list(await asyncio.gather(*(w.joined() for w in watchers)))
    print(json.dumps({"joins": joins}), flush=True)
    await asyncio.sleep(args.hold)
    arrivals = [w.counter.arrivals if w.counter else [] for w in watchers]
    print(json.dumps({"arrivals": arrivals}), flush=True)
    await asyncio.gather(*(w.close() for w in watchers))


async def line_of(process: asyncio.subprocess.Process) -> Any:
    assert process.stdout is not None
    return json.loads(await asyncio.wait_for(process.stdout.readline(), 120))


async def measure(
    http: httpx.AsyncClient, url: str, pid: int, count: int, args: argparse.Namespace
) -> Row:
    publisher = Client(browser_like=True)
    offer = await publisher.offer()
    created = await http.post(
        "/v1/realtime/sessions",
        json={"model": args.model, "sdp": {"type": "offer", "sdp": offer}, "prompt": args.prompt},
    )
    created.raise_for_status()
    session_id = created.json()["session_id"]
    await publisher.accept(created.json()["sdp"]["sdp"])
    await asyncio.wait_for(publisher.first_frame.wait(), 30)
    watchers = [Watcher(publisher)] if count else []
    child = None
    try:
        for watcher in watchers:
            await watcher.watch(http, session_id)
        joins = list(await asyncio.gather(*(w.joined() for w in watchers)))
        if count > 1:
            child = await light_viewers(url, session_id, count - 1, WARMUP + args.seconds + 1)
            joins += (await line_of(child))["joins"]
        await asyncio.sleep(WARMUP)
        path = f"/v1/realtime/sessions/{session_id}"
        before, cpu_before = (await http.get(path)).json()["stats"], cpu_seconds(pid)
        start = time.monotonic()
        await asyncio.sleep(args.seconds)
        end = time.monotonic()
        after, cpu_after = (await http.get(path)).json()["stats"], cpu_seconds(pid)
        row = Row(count, cpu=(cpu_after - cpu_before) / (end - start), joins=joins)
        row.publisher_rtts = window(publisher.received, start, end)
        row.viewer_rtts = [r for w in watchers for r in window(w.received, start, end)]
        counted = sum(w.frames_between(start, end) for w in watchers)
        if child is not None:
            for arrivals in (await line_of(child))["arrivals"]:
                counted += sum(1 for t in arrivals if start <= t < end)
        if count:
            row.viewer_fps = counted / count / (end - start)
        frames = after["frames_out"] - before["frames_out"]
        row.output_fps = frames / (end - start)
        keyframes = after["keyframes_encoded"] - before["keyframes_encoded"]
        row.keyframes_per_second = keyframes / (end - start)
        sent = publisher.camera.sent_at.values()
        row.camera_fps = sum(1 for t in sent if start <= t < end) / (end - start)
        row.encodes_per_frame = (after["frames_encoded"] - before["frames_encoded"]) / max(
            1, frames
        )
        await http.delete(path)
        return row
    finally:
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
            await child.wait()
        await asyncio.gather(*(w.close() for w in watchers))
        await publisher.close()


def p50(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "-"


def report(rows: list[Row]) -> None:
    alone = rows[0] if rows and rows[0].viewers == 0 else None
    print(
        f"{'viewers':>7} {'camera fps':>10} {'server CPU':>10} {'x alone':>8} {'out fps':>8} "
        f"{'CPU ms/frame':>13} "
        f"{'x alone':>8} {'publisher rtt p50':>18} {'viewer rtt p50':>15} {'viewer fps':>11} "
        f"{'encodes/frame':>14} {'keyframes/s':>12} {'join ms p50':>12}"
    )
    for row in rows:
        ratio = f"{row.cpu / alone.cpu:.2f}" if alone and alone.cpu else "-"
        per_frame = (
            f"{row.cpu_per_frame / alone.cpu_per_frame:.2f}"
            if alone and alone.cpu_per_frame
            else "-"
        )
        fps = f"{row.viewer_fps:.1f}" if row.viewers else "-"
        print(
            f"{row.viewers:>7} {row.camera_fps:>10.1f} {row.cpu:>10.2f} {ratio:>8} "
            f"{row.output_fps:>8.1f} "
            f"{row.cpu_per_frame:>13.1f} {per_frame:>8} {p50(row.publisher_rtts):>18} "
            f"{p50(row.viewer_rtts):>15} {fps:>11} {row.encodes_per_frame:>14.2f} "
            f"{row.keyframes_per_second:>12.2f} {p50(row.joins):>12}"
        )
    print(
        "camera fps = frames the publisher sent per second (below 20: this process is short of "
        "CPU); server CPU in cores (CPU seconds per second); out fps = the model's output "
        "frames per second; rtt in ms, camera hand-off -> decode; join = WHEP POST -> first "
        "decoded frame"
    )


async def bench(args: argparse.Namespace) -> None:
    counts = [int(n) for n in args.viewers.split(",")]
    print(
        f"{WIDTH}x{HEIGHT}@{FPS}, model {args.model}, {args.seconds:.0f} s per row, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    rows = []
    async with (
        server(args.seconds) as (url, pid),
        httpx.AsyncClient(base_url=url, headers={"x-api-key": API_KEY}, timeout=30) as http,
    ):
        for count in counts:
            rows.append(await measure(http, url, pid, count, args))
            print(f"  done {count} viewers")
    report(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per row")
    parser.add_argument("--viewers", default="0,1,5,10", help="comma-separated viewer counts")
    parser.add_argument("--model", default=PASSTHROUGH_720P, help="lucy_2_rt or passthrough_720p20")
    parser.add_argument("--prompt", default=None, help="the session's prompt (lucy_2_rt)")
    parser.add_argument("--watch", help=argparse.SUPPRESS)  # the light viewers' child process
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hold", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(watch_child(args) if args.watch else bench(args))


if __name__ == "__main__":
    main()
