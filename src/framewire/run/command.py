"""`framewire run INPUT -o OUTPUT --prompt ...`: stream a video through a realtime session and
write the transformed video, with a progress line while it runs and a summary table at the end.

Every argument and input file is checked before a server or a session starts
(framewire.run.checks). Without `--url` the server runs in this process (the full app on
127.0.0.1, a free port, a one-off key), so one command shows the whole product.
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
from typing import Any

import av
import httpx

from framewire.client.control import ProblemError
from framewire.client.session import RealtimeClient, Session, Summary
from framewire.client.sinks import CODECS
from framewire.models.registry import ModelRegistry
from framewire.run import demo
from framewire.run.checks import InputError, check_arguments
from framewire.run.embedded import embedded_server
from framewire.run.report import Progress, reason_words, save_still, table

API_KEY_ENV = "FRAMEWIRE_API_KEY"
PROGRESS_EVERY = 0.25
QUIET_LOGGERS = ("httpx", "aioice", "aiortc")
"""Their per-request and per-candidate-pair lines would bury the progress line."""

DONE, REFUSED, USAGE, ENDED_EARLY, INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = (
    (DONE, "done: the whole input went through and the output is written"),
    (REFUSED, "the server refused the session or could not be reached (its answer is printed)"),
    (USAGE, "usage or input error, found before any server or session started"),
    (ENDED_EARLY, "the session ended early (credits, content policy, ...); partial output"),
    (INTERRUPTED, "interrupted (Ctrl-C); the session is still closed and billed"),
)
NORMAL_END = "disconnect"
"""The reason of a session the client closed itself; any other reason is an early end."""

DESCRIPTION = """\
Stream a video file (or a camera) through a realtime session and write the transformed video,
with a progress line while it runs and a summary table at the end. Without --url the server
runs inside this command (on 127.0.0.1, a free port, a one-off API key). Server settings are
FRAMEWIRE_* environment variables: see "Running the server" in the README."""


def _epilog() -> str:
    lines = ["exit status:"]
    for code, meaning in EXIT_CODES:
        lines.append(f"  {code:>3}  {meaning}")
    return "\n".join(lines)


def register(subparsers: Any) -> None:
    ids = [spec.id for spec in ModelRegistry.default().specs()]
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="stream a video file through a realtime session and write the result",
        description=DESCRIPTION,
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", nargs="?", help="video file, or a camera such as /dev/video0")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help=f"output video, in an existing directory: {', '.join(CODECS)} (H.264; .webm is VP8)",
    )
    p.add_argument(
        "--model", default="lucy_2_rt", help=f"model id: {', '.join(ids)} (default: lucy_2_rt)"
    )
    p.add_argument("--prompt", help="what the model should make of the video (default: none)")
    p.add_argument("--image", help="reference image file: PNG, JPEG or WebP (default: none)")
    p.add_argument(
        "--enhance",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="let the server enhance the prompt (default: on)",
    )
    p.add_argument("--url", help="server base URL (default: a server inside this command)")
    p.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"API key for --url (default: ${API_KEY_ENV})",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="generate the 10 s demo clip (written as demo-input.mp4 beside OUTPUT) and use it",
    )
    p.add_argument(
        "--duration",
        type=float,
        help="stop after this many seconds (default: the whole input; needed for a camera)",
    )
    p.add_argument(
        "--marker",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="stamp a frame-index strip in the bottom-right corner of each sent frame to "
        "measure the round trip; it shows in the output (default: off)",
    )
    p.add_argument(
        "--still",
        help="also save a PNG or JPEG still from the middle of the output (default: none)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        check_arguments(args, None if args.url else [s.id for s in ModelRegistry.default().specs()])
    except InputError as exc:
        print(f"framewire run: {exc}", file=sys.stderr)
        return USAGE
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return asyncio.run(_run(args))
    except ProblemError as exc:
        print(f"framewire run: the server refused: {exc}", file=sys.stderr)
    except httpx.HTTPError as exc:
        where = args.url or "the embedded server"
        print(f"framewire run: could not talk to {where}: {exc}", file=sys.stderr)
    except (OSError, ValueError, av.FFmpegError) as exc:
        print(f"framewire run: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return INTERRUPTED
    return REFUSED


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
        enhanced = (await session.state()).get("enhanced_prompt") if args.prompt else None
        progress = Progress(session, args.duration or session.source.duration, sys.stderr)
        try:
            await _stream(session, args.duration, progress)
        finally:
            progress.finish()
        summary = await session.close()
    return await _finish(args, session, summary, enhanced)


async def _finish(
    args: argparse.Namespace, session: Session, summary: Summary, enhanced: str | None
) -> int:
    if session.stats.frames_received == 0 and summary.reason == NORMAL_END:
        print("framewire run: no frames came back from the server", file=sys.stderr)
        return REFUSED
    if args.still and session.stats.frames_received:
        await asyncio.to_thread(save_still, Path(args.output), Path(args.still))
    print(table(args, session, summary, enhanced))
    if summary.reason != NORMAL_END:
        print(
            f"framewire run: the session ended early: {reason_words(summary.reason)} "
            f"({summary.reason}); {args.output} holds the frames received until then",
            file=sys.stderr,
        )
        return ENDED_EARLY
    return DONE


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
