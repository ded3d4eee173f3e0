"""What `framewire run` prints: a progress line while it streams, a table at the end, and a
still from the output."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TextIO

import av
import cv2

from framewire.client.session import Session, Summary

PLAIN_PROGRESS_EVERY = 2.0
"""When stderr is not a terminal, a progress line every 2 s instead of one redrawn line."""
BAR = 24
REASONS = {
    "disconnect": "ended by the client",
    "timeout": "reached its longest allowed duration",
    "inactivity": "no video reached the server for too long",
    "insufficient_credits": "the API key ran out of credits",
    "moderation_violation": "stopped by the content policy",
    "ice_failure": "the network path to the server was lost",
    "error": "a server error",
}
"""Why a session ended (the summary's `reason`), in words."""


def reason_words(reason: str | None) -> str:
    if not reason:
        return "ended"
    return REASONS.get(reason, reason.replace("_", " "))


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


def _round_trip(args: argparse.Namespace, session: Session) -> str:
    stats = session.stats
    p50, p95 = stats.round_trip_percentile(0.5), stats.round_trip_percentile(0.95)
    if p50 is None or p95 is None:
        why = "no --marker" if not args.marker else "no marker survived the model's look"
        return f"n/a ({why})"
    return (
        f"{p50:.0f} / {p95:.0f} ms  "
        f"({stats.frames_matched} of {stats.frames_received} frames matched by marker)"
    )


def _frames(session: Session) -> list[tuple[str, str]]:
    stats = session.stats
    written = session.sink.frames_written if session.sink is not None else 0
    rows = [
        ("frames in", f"{stats.frames_sent} sent"),
        ("frames out", f"{stats.frames_received} received, {written} written"),
    ]
    skipped = stats.frames_sent - stats.frames_received
    if skipped > 0:
        rate = f"{session.spec.fps} fps" if session.spec is not None else "its own rate"
        rows.append(
            (
                "frames skipped",
                f"{skipped}: the model makes {rate} at most; frames that arrive while it "
                "is busy are skipped (the newest wins, nothing queues)",
            )
        )
    return rows


def table(
    args: argparse.Namespace, session: Session, summary: Summary, enhanced: str | None
) -> str:
    """The end-of-run summary."""
    spec = session.spec
    model = session.model
    if spec is not None:
        model += f" ({spec.width}x{spec.height} @ {spec.fps} fps)"
    fps = session.stats.received_fps
    remaining = summary.credits_remaining
    credits = f"{summary.credits_charged:g} charged, " + (
        "unlimited remaining" if remaining is None else f"{remaining:g} remaining"
    )
    output = str(args.output) + (f"  (still: {args.still})" if args.still else "")
    rows = [("model", model), ("prompt", args.prompt or "-")]
    if enhanced and enhanced != args.prompt:
        rows.append(("enhanced prompt", enhanced))
    rows += _frames(session)
    rows += [
        ("output fps", "-" if fps is None else f"{fps:.1f}"),
        ("round trip p50/p95", _round_trip(args, session)),
        ("generation", f"{summary.seconds:g} s, {reason_words(summary.reason)}"),
        ("credits", credits),
        ("output", output),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def save_still(video: Path, image_path: Path) -> None:
    """The frame at the middle of `video`, as an image (PNG or JPEG by its suffix)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        count = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        container.seek(0)
        middle = next((f for i, f in enumerate(container.decode(stream)) if i >= count // 2), None)
        if middle is None:
            raise ValueError(f"{video} has no frames")
        image = middle.to_ndarray(format="bgr24")
    if not cv2.imwrite(str(image_path), image):
        raise OSError(f"could not write {image_path}")
