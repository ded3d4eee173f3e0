"""Capacity: how many concurrent 1280x720@20 sessions this machine holds, and what one costs.

    .venv/bin/python bench/capacity.py [--codecs vp8,h264] [--seconds 12] [--clients 2]
        [--model lucy_2_rt] [--prompt "film noir"] [--max 10] [--max-sessions N]
        [--workers N --redis-url URL] [--keep-going] [--no-shed] [--framewire PATH] [--no-stages]

A `framewire serve` runs in a child process with default settings (plus the API key and
loopback ICE; `--max-sessions`/`--workers` as given). Client processes (`--clients`, sessions
dealt round-robin) keep their cost low as the issue asks: each sends a *pre-encoded* 720p20 loop
of stamped frames (aiortc's sender packs av.Packets, no encoding), releases received frames on
the RTP marker bit (framewire.rtc.jitter, as browsers do) and reads each frame's number from
its luma plane (no colour conversion). Their CPU is reported, so the bench cannot hide that it
measures itself.

For N = 1, 2, ... one session more joins (the offer names only the swept codec), all stream
for a warm-up and then `--seconds` are measured: the slowest session's fps (distinct stamped
frames back per second), round trip p50 over all frames and the worst session's p95 (camera
hand-off -> decoded on the client), the server's CPU in cores (CPU time of every server
process, so a machine shared with other work still gives honest cost), core per session, and
the clients' CPU, and the server's CPU milliseconds per returned frame (with its cores per
session at the full 20 fps): on a machine loaded by other work fps drops, and CPU per frame is
the cost that still holds. "Held" = every session >= 95 % of the model's fps and worst p95
< 150 ms. The sweep stops at the first N not held, or when the server refuses the session (503: its
admission saw it would not hold).

Then a per-stage table: what one session's frame costs in each stage (CPU ms per frame,
measured in this process on the same 720p stream, and cores at 20 fps), and where the server's
CPU went in the N = 1 window, measured per thread in the server (the server names its threads
for the OS): the event loop (ICE, SRTP, RTP/RTCP, packet sends, asyncio, HTTP), the model
workers (decode, colour conversions, model, encode, packetization) and the rest.
The stages are measured alone and hot in cache; the threads show what they cost in place.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import math
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from models import percentiles, scene  # bench/models.py (this script's folder is on sys.path)

from framewire.media.codecs import VIDEO_CODECS, realtime_h264, realtime_vp8
from framewire.media.decoders import FfmpegVp8Decoder
from framewire.media.pixels import PixelPath, encodable
from framewire.rtc.peer import Peer
from framewire.rtc.stamp import read_stamp, stamp

SCRIPT = os.path.abspath(__file__)
WIDTH, HEIGHT, FPS = 1280, 720, 20
LOOP_FRAMES = 200
"""The pre-encoded loop: 10 s at 20 fps, a keyframe at its start."""
CLOCK = 90_000
BITRATE = 1_500_000
WARMUP = 3.0
HELD_FPS = 0.95
HELD_P95_MS = 150.0
API_KEY = "bench-" + secrets.token_hex(8)


# --- the stream --------------------------------------------------------------------------------


def encode_loop(codec: str) -> list[bytes]:
    """LOOP_FRAMES frames of a panning scene, each stamped with its index, encoded once."""
    canvas = scene(WIDTH, HEIGHT)
    first = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    make = realtime_vp8 if codec == "vp8" else realtime_h264
    encoder = make(first, BITRATE, FPS)
    packets = []
    for number in range(LOOP_FRAMES):
        x = (number * 7) % (canvas.shape[1] - WIDTH)
        image = np.ascontiguousarray(canvas[:, x : x + WIDTH])
        stamp(image, number)
        frame = encodable(image)
        frame.pts, frame.time_base = number, fractions.Fraction(1, FPS)
        kind = av.video.frame.PictureType
        frame.pict_type = kind.I if number == 0 else kind.NONE
        data = b"".join(bytes(p) for p in encoder.encode(frame))
        packets.append(data)
    return packets


class PacketCamera(MediaStreamTrack):
    """Sends the pre-encoded loop at FPS; aiortc packs each packet (no encoding here)."""

    kind = "video"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self._packets = packets
        self._count = 0
        self._start: float | None = None
        self.sent_at: dict[int, float] = {}

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count / FPS - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        index = self._count % len(self._packets)
        packet = av.Packet(self._packets[index])
        packet.pts = self._count * (CLOCK // FPS)
        packet.time_base = fractions.Fraction(1, CLOCK)
        self.sent_at[index] = time.monotonic()
        self._count += 1
        return packet


def luma_top(frame: av.VideoFrame) -> np.ndarray:
    """The Y plane of a decoded yuv420p frame as a view (no copy, no conversion)."""
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : frame.width]


# --- a client process ----------------------------------------------------------------------------


@dataclass
class Session:
    camera: PacketCamera
    peer: Peer = field(init=False)
    """The client peer (framewire.rtc.peer, the Python client's), sending `camera`."""
    received: list[tuple[float, int, float]] = field(default_factory=list)
    """(arrival, stamp, round trip seconds) of every readable frame back."""
    streaming: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""


async def open_session(http: httpx.AsyncClient, args: argparse.Namespace) -> Session | int:
    """A session streaming the loop; or the HTTP status when the server refused it."""
    session = Session(PacketCamera(args.packets))
    session.peer = Peer(
        session.camera, lambda frame, now: read(frame, now, session), interfaces=["127.0.0.1"]
    )
    mime = VIDEO_CODECS[args.codec]
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    session.peer.pc.getTransceivers()[0].setCodecPreferences(
        [c for c in capabilities if c.mimeType.lower() == mime]
    )
    created = await http.post(
        "/v1/realtime/sessions",
        json={
            "model": args.model,
            "sdp": {"type": "offer", "sdp": await session.peer.offer()},
            "prompt": args.prompt or None,
            "enhance_prompt": False,
        },
    )
    if created.status_code != 201:
        await session.peer.close()
        return created.status_code
    session.url = f"/v1/realtime/sessions/{created.json()['session_id']}"
    await session.peer.accept(created.json()["sdp"]["sdp"])
    return session


def read(frame: av.VideoFrame, now: float, session: Session) -> None:
    number = read_stamp(luma_top(frame))
    sent = None if number is None else session.camera.sent_at.get(number)
    if sent is not None:
        session.received.append((now, number, now - sent))
        session.streaming.set()


def window(session: Session, start: float, end: float) -> dict[str, Any]:
    frames = [(n, rtt) for t, n, rtt in session.received if start <= t < end]
    rtts = [rtt * 1000 for _, rtt in frames]
    # The loop repeats its stamps every LOOP_FRAMES: count changes of stamp, not distinct ones.
    numbers = [n for n, _ in frames]
    changes = sum(1 for i, n in enumerate(numbers) if i == 0 or n != numbers[i - 1])
    return {"frames": changes, "rtts": rtts}


async def client_main(args: argparse.Namespace) -> None:
    """Serve the parent's commands, one JSON line each: open, mark, report, quit."""
    sessions: list[Session] = []
    marked = (0.0, 0.0)
    headers = {"x-api-key": os.environ["BENCH_API_KEY"]}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=60) as http:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            command = json.loads(line or '{"op": "quit"}')
            reply: dict[str, Any] = {}
            if command["op"] == "open":
                opened = await open_session(http, args)
                if isinstance(opened, int):
                    reply = {"status": opened}
                else:
                    sessions.append(opened)
                    await asyncio.wait_for(opened.streaming.wait(), 60)
                    reply = {"status": 201}
            elif command["op"] == "mark":
                marked = (time.monotonic(), time.process_time())
            elif command["op"] == "report":
                now = time.monotonic()
                reply = {
                    "sessions": [window(s, marked[0], now) for s in sessions],
                    "seconds": now - marked[0],
                    "cpu": time.process_time() - marked[1],
                }
            else:
                for s in sessions:
                    with contextlib.suppress(httpx.HTTPError):
                        await http.delete(s.url)
                    await s.peer.close()
                print(json.dumps({}), flush=True)
                return
            print(json.dumps(reply), flush=True)


# --- the parent ----------------------------------------------------------------------------------


class Client:
    """One client process and its command pipe."""

    def __init__(self, url: str, codec: str, stream: Path, args: argparse.Namespace) -> None:
        command = [
            sys.executable, SCRIPT, "--client", "--url", url, "--codec", codec,
            "--stream", str(stream), "--model", args.model, "--prompt", args.prompt,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, op: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op}) + "\n")
        self.process.stdin.flush()
        reply: dict[str, Any] = json.loads(self.process.stdout.readline())
        return reply

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, json.JSONDecodeError):
            self.ask("quit")
        self.process.wait(timeout=30)


THREAD_ROLES = (
    (
        "event loop (each server process's main thread)",
        "ICE, DTLS/SRTP, RTP/RTCP and packet sends, jitter buffer, asyncio, HTTP",
    ),
    (
        "model workers (`model_N`, `batch-…`)",
        "decode of the client's stream, colour conversions, model, encode, packetization",
    ),
)
OTHER_ROLE = (
    "other threads",
    "threads framewire does not name (asyncio's executor, libraries' own), threads that ended "
    "in the window, the `--workers` supervisor",
)


def thread_role(name: str, main: bool) -> str | None:
    """Which of THREAD_ROLES a server thread is (framewire names its threads for the OS), or
    None for the rest."""
    if main:
        return THREAD_ROLES[0][0]
    if name.startswith(("model_", "batch-")):
        return THREAD_ROLES[1][0]
    return None


def server_cpu(root: int, supervised: bool) -> tuple[float, dict[str, float]]:
    """CPU seconds (user + system, from /proc) of process `root` and all its descendants, and
    of their threads by THREAD_ROLES (threads of no role left out). `supervised`: `root` is the
    `--workers` supervisor, whose main thread runs no event loop of sessions."""
    tick = os.sysconf("SC_CLK_TCK")
    total, roles = 0.0, dict.fromkeys((role for role, _ in THREAD_ROLES), 0.0)
    pending = [root]
    while pending:
        pid = pending.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # ended threads included
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    pending.extend(int(c) for c in (task / "children").read_text().split())
                    name = (task / "comm").read_text().strip()
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    main = int(task.name) == pid and not (supervised and pid == root)
                    role = thread_role(name, main)
                    if role is not None:
                        roles[role] += (int(fields[11]) + int(fields[12])) / tick
    return total, roles


@contextlib.contextmanager
def server(args: argparse.Namespace) -> Any:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "FRAMEWIRE_API_KEYS": API_KEY,
        "FRAMEWIRE_ICE_INTERFACES": "127.0.0.1",
        "FRAMEWIRE_MAX_DURATION": "3600",
        "FRAMEWIRE_KEY_CONCURRENCY": "1000",
    }
    if args.max_sessions:
        env["FRAMEWIRE_MAX_SESSIONS"] = str(args.max_sessions)
    if args.no_shed:
        env["FRAMEWIRE_SHED_LOAD"] = "false"
    if args.redis_url:
        env["FRAMEWIRE_REDIS_URL"] = args.redis_url
    framewire = args.framewire or str(Path(sys.executable).with_name("framewire"))
    command = [framewire, "serve", "--port", str(port), "--log-level", "warning"]
    log = (args.log_dir / "server.log").open("w")
    workers = ["--workers", str(args.workers)] if args.workers > 1 else []
    process = subprocess.Popen([*command, *workers], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + "/healthz").status_code == 200:
                break
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"the server did not start; see {args.log_dir / 'server.log'}")
        time.sleep(0.2)
    time.sleep(2.0)  # admission calibrates its prior at start: keep it out of the first step
    try:
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


@dataclass
class Row:
    sessions: int
    refused: bool = False
    slowest_fps: float = 0.0
    p50: float = 0.0
    worst_p95: float = 0.0
    server_cores: float = 0.0
    client_cores: float = 0.0
    frames_per_second: float = 0.0
    """Frames returned per second over all sessions."""
    thread_cores: dict[str, float] = field(default_factory=dict)
    """The server's cores by THREAD_ROLES."""
    admission: str = ""
    """What the server's /readyz said at the end of the window: capacity (core per session,
    other cores)."""

    @property
    def ms_per_frame(self) -> float:
        """Server CPU per returned frame: a cost that holds when a loaded machine cuts fps."""
        return self.server_cores * 1000 / self.frames_per_second if self.frames_per_second else 0

    @property
    def held(self) -> bool:
        return (
            not self.refused and self.slowest_fps >= HELD_FPS * FPS and self.worst_p95 < HELD_P95_MS
        )

    def line(self) -> str:
        if self.refused:
            return f"| {self.sessions} | refused: 503 + Retry-After (admission) | | | | | | | | | |"
        return (
            f"| {self.sessions} | {self.slowest_fps:.1f} | {self.p50:.0f} ms | "
            f"{self.worst_p95:.0f} ms | {self.server_cores:.2f} | "
            f"{self.server_cores / self.sessions:.3f} | {self.ms_per_frame:.1f} | "
            f"{self.ms_per_frame * FPS / 1000:.3f} | {self.client_cores:.2f} | "
            f"{'yes' if self.held else 'no'} | {self.admission} |"
        )


def admission_view(url: str, supervised: bool) -> str:
    """The server's /readyz as "capacity (core per session, other cores)"; behind `--workers`,
    that of the one worker the connection reached."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        load = httpx.get(url + "/readyz", timeout=5).json()
        view = (
            f"{load['capacity']} ({load['core_per_session']}, {load['other_cores']})"
            if load.get("capacity") is not None
            else "no limit"
        )
        return f"one worker: {view}" if supervised else view
    return "?"


def step(clients: list[Client], url: str, server_pid: int, n: int, args: argparse.Namespace) -> Row:
    """Add session n, let all stream, and measure one window."""
    opened = clients[(n - 1) % len(clients)].ask("open")
    if opened["status"] != 201:
        return Row(n, refused=True)
    time.sleep(WARMUP)
    for c in clients:
        c.ask("mark")
    supervised = args.workers > 1
    (cpu_before, roles_before), started = server_cpu(server_pid, supervised), time.monotonic()
    time.sleep(args.seconds)
    reports = [c.ask("report") for c in clients]
    elapsed = time.monotonic() - started
    cpu_after, roles = server_cpu(server_pid, supervised)
    server_cores = (cpu_after - cpu_before) / elapsed
    sessions = [s | {"seconds": r["seconds"]} for r in reports for s in r["sessions"]]
    all_rtts = [rtt for s in sessions for rtt in s["rtts"]]
    return Row(
        n,
        slowest_fps=min(s["frames"] / s["seconds"] for s in sessions),
        p50=percentiles(all_rtts)[0] if all_rtts else math.inf,
        worst_p95=max(percentiles(s["rtts"])[1] if s["rtts"] else math.inf for s in sessions),
        server_cores=server_cores,
        client_cores=sum(r["cpu"] for r in reports) / elapsed,
        frames_per_second=sum(s["frames"] / s["seconds"] for s in sessions),
        thread_cores={role: (roles[role] - roles_before[role]) / elapsed for role in roles},
        admission=admission_view(url, supervised),
    )


def sweep(codec: str, args: argparse.Namespace, directory: Path) -> list[Row]:
    stream = directory / f"{codec}.pickle"
    stream.write_bytes(pickle.dumps(encode_loop(codec)))
    rows: list[Row] = []
    print(f"\n{codec.upper()} (the offer names only {codec}):")
    print(
        "| sessions | slowest fps | rtt p50 | worst p95 | server cores | core/session "
        "| server CPU ms/frame | core/session at 20 fps | clients' cores | held "
        "| admission: capacity (core/session, other cores) |"
    )
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|")
    with server(args) as (url, pid):
        clients = [Client(url, codec, stream, args) for _ in range(args.clients)]
        try:
            for n in range(1, args.max + 1):
                row = step(clients, url, pid, n, args)
                rows.append(row)
                print(row.line(), flush=True)
                if row.refused or (not row.held and not args.keep_going):
                    break
        finally:
            for c in clients:
                c.close()
    return rows


# --- per-stage cost ------------------------------------------------------------------------------


def cpu_ms(action: Callable[[int], object], frames: int) -> float:
    """Mean CPU milliseconds per call over `frames` calls after 3 warm-up calls (the mean, not
    the median: a codec's costly frames are part of what a session costs)."""
    for i in range(3):
        action(i)
    started = time.process_time()
    for i in range(frames):
        action(i + 3)
    return (time.process_time() - started) * 1000 / frames


def stage_costs(codec: str, model_id: str, prompt: str) -> list[tuple[str, float]]:
    """(stage, CPU ms per frame) of one 720p session's frame, in the server's order."""
    import pylibsrtp
    from aiortc.codecs.h264 import H264Encoder
    from aiortc.codecs.vpx import Vp8Encoder
    from aiortc.rtp import RtpPacket

    from framewire.models.base import pixel_format_of
    from framewire.models.registry import ModelRegistry

    cv2.setNumThreads(1)
    packets = encode_loop(codec)
    decoder = av.CodecContext.create("libvpx" if codec == "vp8" else "h264", "r")
    decoded: list[av.VideoFrame] = []
    for data in packets[:120]:
        decoded.extend(decoder.decode(av.Packet(data)))
    frames = len(decoded) - 5
    working = decoded[20:]  # past the rate control's settling after the keyframe
    n = len(working)

    # the server's decoders: FFmpeg's VP8 on one thread (framewire.media.decoders), aiortc's H.264
    dec = FfmpegVp8Decoder().codec if codec == "vp8" else av.CodecContext.create("h264", "r")
    cursor = iter(range(10**9))

    def decode_next(i: int) -> None:
        dec.decode(av.Packet(packets[next(cursor) % LOOP_FRAMES]))

    registry = ModelRegistry.default()
    model = registry.create(model_id)
    if prompt:
        model.set_prompt(prompt)
    pixels = PixelPath(registry.get(model_id), pixel_format_of(model))  # the server's own
    inputs = [pixels.to_model(f) for f in working]
    small = [f.reformat(640, 480) for f in working]
    outputs = [model.process(image) for image in inputs]
    yuv = [pixels.to_encoder(image) for image in outputs]  # what the encoder gets
    make = realtime_vp8 if codec == "vp8" else realtime_h264
    encoder = make(yuv[0], BITRATE, FPS)
    encoded = [bytes(data) for data in packets[1:]]  # every frame after the keyframe
    session = pylibsrtp.Session(
        pylibsrtp.Policy(key=os.urandom(30), ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    )
    sequence = iter(range(10**9))

    def packetize(i: int) -> None:
        data = encoded[i % len(encoded)]
        payloads = (
            Vp8Encoder._packetize(data, i)
            if codec == "vp8"
            else H264Encoder._packetize(H264Encoder._split_bitstream(data))
        )
        for payload in payloads:
            packet = RtpPacket(payload_type=96, sequence_number=next(sequence) % 65536)
            packet.ssrc, packet.payload = 1234, payload
            session.protect(packet.serialize())

    def encode(i: int) -> None:
        frame = yuv[i % len(yuv)]
        frame.pts, frame.time_base = i, fractions.Fraction(1, FPS)
        frame.pict_type = av.video.frame.PictureType.NONE
        encoder.encode(frame)

    fmt = pixels.pixel_format
    way_in = "none: the decoder's own" if fmt == "yuv420p" else f"yuv420p -> {fmt}, swscale"
    way_out = "none: the encoder's own" if fmt == "yuv420p" else f"{fmt} -> yuv420p, cv2"

    def to_model(frames: list[av.VideoFrame]) -> Callable[[int], object]:
        return lambda i: pixels.to_model(frames[i % n])

    return [
        ("decode (client's stream)", cpu_ms(decode_next, frames)),
        (f"to the model ({fmt}; conversion {way_in})", cpu_ms(to_model(working), 40)),
        (
            f"scaling 640x480 -> {WIDTH}x{HEIGHT}, same pass (only when sizes differ; not summed)",
            cpu_ms(to_model(small), 40) - cpu_ms(to_model(working), 40),
        ),
        (f"model ({model_id} {prompt!r})", cpu_ms(lambda i: model.process(inputs[i % n]), 40)),
        (
            f"to the encoder (conversion {way_out})",
            cpu_ms(lambda i: pixels.to_encoder(outputs[i % n]), 40),
        ),
        (f"encode ({codec}, realtime settings)", cpu_ms(encode, n * 2)),
        ("packetization + RTP + SRTP", cpu_ms(packetize, LOOP_FRAMES - 4)),
    ]


def stage_table(codec: str, args: argparse.Namespace, first: Row | None) -> None:
    stages = stage_costs(codec, args.model, args.prompt)
    print(f"\nPer-stage cost of one 720p20 session ({codec.upper()}), CPU per frame, one thread:")
    print("| stage | ms per frame | cores at 20 fps |")
    print("|---|--:|--:|")
    summed = 0.0
    for name, ms in stages:
        print(f"| {name} | {ms:.2f} | {ms * FPS / 1000:.3f} |")
        if "not summed" not in name:
            summed += ms * FPS / 1000
    print(f"| **stages above** | | **{summed:.3f}** |")
    if first is None or not first.frames_per_second:
        return
    print(
        f"\nWhere the server's CPU went with one session ({codec.upper()}), measured per thread "
        "in the server over the N = 1 window:"
    )
    print("| threads | what runs there | ms per frame | cores at 20 fps |")
    print("|---|---|--:|--:|")
    named = 0.0
    for role, work in THREAD_ROLES:
        ms = first.thread_cores.get(role, 0.0) * 1000 / first.frames_per_second
        named += ms
        print(f"| {role} | {work} | {ms:.2f} | {ms * FPS / 1000:.3f} |")
    # the server's whole CPU time minus the named threads' (both counted in 10 ms ticks, so a
    # difference of a tick or two either way is noise)
    other = max(0.0, first.ms_per_frame - named)
    print(f"| {OTHER_ROLE[0]} | {OTHER_ROLE[1]} | {other:.2f} | {other * FPS / 1000:.3f} |")
    total = first.ms_per_frame
    print(f"| **server** | | **{total:.2f}** | **{total * FPS / 1000:.3f}** |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", default="vp8,h264", help="codecs to sweep, in turn")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per step")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--model", default="lucy_2_rt")
    parser.add_argument("--prompt", default="film noir")
    parser.add_argument("--max", type=int, default=10, help="most sessions to try")
    parser.add_argument("--max-sessions", type=int, help="the server's FRAMEWIRE_MAX_SESSIONS")
    parser.add_argument("--workers", type=int, default=1, help="framewire serve --workers")
    parser.add_argument("--redis-url", help="FRAMEWIRE_REDIS_URL (needed with --workers > 1)")
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="go on past the first N not held (a loaded machine: cost per session at every N)",
    )
    parser.add_argument(
        "--framewire", help="the `framewire` executable to serve (another build: a baseline)"
    )
    parser.add_argument(
        "--no-shed", action="store_true", help="FRAMEWIRE_SHED_LOAD=false: measure past capacity"
    )
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage table")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--codec", help=argparse.SUPPRESS)
    parser.add_argument("--stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        args.packets = pickle.loads(Path(args.stream).read_bytes())
        asyncio.run(client_main(args))
        return
    os.environ["BENCH_API_KEY"] = API_KEY
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # clean up children too
    print(
        f"{WIDTH}x{HEIGHT}@{FPS} {args.model} {args.prompt!r}, {args.seconds:.0f} s per step, "
        f"{args.clients} client processes, server workers {args.workers}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
    )
    with tempfile.TemporaryDirectory() as directory:
        args.log_dir = Path(directory)
        for codec in args.codecs.split(","):
            rows = sweep(codec, args, Path(directory))
            first = rows[0] if rows and not rows[0].refused else None
            if not args.no_stages:
                stage_table(codec, args, first)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
