"""`framewire run INPUT -o OUTPUT --prompt ...`: stream a video through a realtime session and
write the transformed video, with a progress line while it runs and a summary table at the end.

Without `--url` the server runs in this process (the full app on 127.0.0.1, a free port, a
one-off key), so one command shows the whole product. Round-trip latency is the client's own
measurement: a frame-index marker in the bottom-right corner of each sent frame pairs every
received frame with the frame it was made from (framewire.client.marker; `--no-marker` leaves
frames untouched and the latency unmeasured).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import av
import cv2
import httpx

from framewire.client import demo
from framewire.client.control import ProblemError
from framewire.client.embedded import embedded_server
from framewire.client.session import RealtimeClient, Session, Summary
from framewire.client.sinks import CODECS

API_KEY_ENV = "FRAMEWIRE_API_KEY"
PROGRESS_EVERY = 0.25
PLAIN_PROGRESS_EVERY = 2.0
"""When stderr is not a terminal, a progress line every 2 s instead of one redrawn line."""
BAR = 24
QUIET_LOGGERS = ("httpx", "aioice", "aiortc")
"""Their per-request and per-candidate-pair lines would bury the progress line."""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="stream a video file through a realtime session and write the result",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", nargs="?", help="video file, or a camera such as /dev/video0")
    parser.add_argument(
        "-o", "--output", required=True, help="output video: .mp4 (H.264) or .webm (VP8)"
    )
    parser.add_argument("--model", default="lucy_2_rt", help="model id (default: lucy_2_rt)")
    parser.add_argument("--prompt", help="what the model should make of the video")
    parser.add_argument("--image", help="reference image file (PNG, JPEG or WebP)")
    parser.add_argument(
        "--enhance",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="let the server enhance the prompt (default: on)",
    )
    parser.add_argument("--url", help="server base URL (default: an embedded server)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"API key for --url (default: ${API_KEY_ENV})",
    )
    parser.add_argument(
        "--demo", action="store_true", help="generate the demo clip and use it as INPUT"
    )
    parser.add_argument(
        "--duration", type=float, help="stop after this many seconds (needed for a camera)"
    )
    parser.add_argument(
        "--marker",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stamp a frame-index marker to measure round-trip latency (default: on)",
    )
    parser.add_argument("--still", help="also save a PNG still from the middle of the output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.input is None) == (not args.demo):
        print("framewire run: give an INPUT video or --demo (not both)", file=sys.stderr)
        return 2
    if args.url and not args.api_key:
        print(f"framewire run: --url needs --api-key (or ${API_KEY_ENV})", file=sys.stderr)
        return 2
    if args.input and not args.input.startswith("/dev/") and not Path(args.input).is_file():
        print(f"framewire run: no such video file: {args.input}", file=sys.stderr)
        return 2
    if Path(args.output).suffix.lower() not in CODECS:
        print(f"framewire run: -o must end in one of {', '.join(CODECS)}", file=sys.stderr)
        return 2
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return asyncio.run(_run(args))
    except ProblemError as exc:
        print(f"framewire run: the server answered {exc}", file=sys.stderr)
    except httpx.HTTPError as exc:
        print(f"framewire run: {args.url or 'the embedded server'}: {exc}", file=sys.stderr)
    except (OSError, ValueError, av.FFmpegError) as exc:
        print(f"framewire run: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


async def _run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    source = await _input(args, output)
    async with contextlib.AsyncExitStack() as stack:
        if args.url:
            url, api_key = args.url, args.api_key
        else:
            server = await stack.enter_async_context(embedded_server())
            url, api_key = server.url, server.api_key
            print(f"embedded server on {url}", file=sys.stderr)
        client = await stack.enter_async_context(RealtimeClient(url, api_key))
        session = await client.connect(
            source,
            model=args.model,
            prompt=args.prompt,
            image=args.image,
            enhance_prompt=args.enhance,
            output=output,
            mark_frames=args.marker,
        )
        progress = Progress(session, args.duration or session.source.duration, sys.stderr)
        try:
            await _stream(session, args.duration, progress)
        finally:
            progress.finish()
        summary = await session.close()
    if session.stats.frames_received == 0:
        print("framewire run: no frames came back from the server", file=sys.stderr)
        return 1
    if args.still:
        await asyncio.to_thread(save_still, output, Path(args.still))
    print(table(args, session, summary))
    return 0


async def _input(args: argparse.Namespace, output: Path) -> str:
    if not args.demo:
        return str(args.input)
    seconds = min(demo.SECONDS, args.duration or demo.SECONDS)
    clip = output.with_name("demo-input.mp4")
    print(f"generating the demo clip ({seconds:g} s, 1280x720) at {clip}", file=sys.stderr)
    await asyncio.to_thread(demo.write_clip, clip, seconds)
    return str(clip)


async def _stream(session: Session, duration: float | None, progress: Progress) -> None:
    """Until the source ends (or `duration` seconds after the first frame), then the tail."""
    ended = asyncio.get_running_loop().create_task(session.source_ended())
    try:
        while not ended.done():
            await asyncio.wait({ended}, timeout=PROGRESS_EVERY)
            progress.update()
            first = session.stats.first_sent_at
            if duration is not None and first is not None and time.monotonic() - first >= duration:
                break
    finally:
        ended.cancel()
    await session.drain()
    progress.update()


class Progress:
    """One status line on stderr: a bar when the length is known, counts and rate always."""

    def __init__(self, session: Session, total: float | None, out: TextIO) -> None:
        self._session = session
        self._total = total
        self._out = out
        self._tty = out.isatty()
        self._last_plain = 0.0
        self._drawn = False

    def line(self) -> str:
        stats = self._session.stats
        first = stats.first_sent_at
        elapsed = 0.0 if first is None else time.monotonic() - first
        parts = []
        if self._total:
            done = min(1.0, elapsed / self._total)
            filled = round(done * BAR)
            parts.append(f"[{'#' * filled}{'.' * (BAR - filled)}] {done:4.0%}")
        parts.append(f"{elapsed:5.1f} s")
        parts.append(f"sent {stats.frames_sent}")
        parts.append(f"received {stats.frames_received}")
        fps = stats.received_fps
        if fps is not None:
            parts.append(f"{fps:4.1f} fps")
        return "  ".join(parts)

    def update(self) -> None:
        if self._tty:
            self._out.write("\r" + self.line() + "\x1b[K")
            self._drawn = True
        elif time.monotonic() - self._last_plain >= PLAIN_PROGRESS_EVERY:
            self._out.write(self.line() + "\n")
            self._last_plain = time.monotonic()
        self._out.flush()

    def finish(self) -> None:
        if self._drawn:
            self._out.write("\n")
            self._out.flush()


def table(args: argparse.Namespace, session: Session, summary: Summary) -> str:
    """The end-of-run summary."""
    stats = session.stats
    spec = session.spec
    model = session.model
    if spec is not None:
        model += f" ({spec.width}x{spec.height} @ {spec.fps} fps)"
    fps = stats.received_fps
    p50, p95 = stats.round_trip_percentile(0.5), stats.round_trip_percentile(0.95)
    if p50 is None or p95 is None:
        why = "--no-marker" if not args.marker else "no marker survived the model's look"
        round_trip = f"n/a ({why})"
    else:
        round_trip = (
            f"{p50:.0f} / {p95:.0f} ms  "
            f"({stats.frames_matched} of {stats.frames_received} frames matched by marker)"
        )
    remaining = summary.credits_remaining
    credits = f"{summary.credits_charged:g} charged, " + (
        "unlimited remaining" if remaining is None else f"{remaining:g} remaining"
    )
    written = session.sink.frames_written if session.sink is not None else 0
    output = str(args.output) + (f"  (still: {args.still})" if args.still else "")
    rows = [
        ("model", model),
        ("prompt", args.prompt or "-"),
        ("frames in", f"{stats.frames_sent} sent"),
        ("frames out", f"{stats.frames_received} received, {written} written"),
        ("output fps", "-" if fps is None else f"{fps:.1f}"),
        ("round trip p50/p95", round_trip),
        ("generation", f"{summary.seconds:g} s (ended: {summary.reason})"),
        ("credits", credits),
        ("output", output),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def save_still(video: Path, png: Path) -> None:
    """The frame at the middle of `video`, as a PNG."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        count = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        container.seek(0)
        middle = next((f for i, f in enumerate(container.decode(stream)) if i >= count // 2), None)
        if middle is None:
            raise ValueError(f"{video} has no frames")
        image = middle.to_ndarray(format="bgr24")
    png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(png), image):
        raise OSError(f"could not write {png}")
