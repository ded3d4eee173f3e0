"""What `framewire run` checks before it starts a server or a session: every file it reads
exists and is what it should be, every file it writes can be written where asked. A failed
check is one line in plain words that names the file (exit status 2)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import av

from framewire.client.sinks import CODECS

IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"))
STILL_SUFFIXES = (".png", ".jpg", ".jpeg")


class InputError(Exception):
    """A bad argument or input file, found before anything started."""


def check_arguments(args: argparse.Namespace, models: list[str] | None) -> None:
    """Raise InputError for the first problem; `models` are the ids the server will offer
    (None when unknown, e.g. a remote server answers for itself)."""
    if (args.input is None) == (not args.demo):
        raise InputError("give an INPUT video or --demo (not both)")
    if args.url and not args.api_key:
        raise InputError("--url needs --api-key (or $FRAMEWIRE_API_KEY)")
    if args.duration is not None and args.duration <= 0:
        raise InputError(f"--duration must be a positive number of seconds, not {args.duration:g}")
    if models is not None and args.model not in models:
        raise InputError(f"unknown model {args.model!r}: choose one of {', '.join(models)}")
    if args.input is not None:
        check_video(args.input)
    if args.image is not None:
        check_image(Path(args.image))
    check_output(Path(args.output))
    if args.still is not None:
        check_still(Path(args.still))


def _readable_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not {what}")
    if not path.is_file():
        raise InputError(f"{path} is not a regular file, so it cannot be {what}")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path}: permission denied")


def check_video(name: str) -> None:
    """A camera device that exists, or a file FFmpeg reads with a video stream in it."""
    path = Path(name)
    if name.startswith("/dev/"):
        if not path.exists():
            raise InputError(f"no such camera: {path}")
        return
    _readable_file(path, "a video file")
    try:
        with av.open(name) as container:
            if not container.streams.video:
                raise InputError(f"{path} has no video stream")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a video file FFmpeg can read") from exc


def check_image(path: Path) -> None:
    _readable_file(path, "an image")
    with path.open("rb") as file:
        head = file.read(12)
    webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if not webp and not any(head.startswith(sig) for sig, _ in IMAGE_SIGNATURES):
        raise InputError(f"{path} is not a PNG, JPEG or WebP image")


def _writable_directory(path: Path, option: str) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{option} {path}: no such directory {folder} (create it first)")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{option} {path}: cannot write in {folder}: permission denied")
    if path.is_dir():
        raise InputError(f"{option} {path} is a directory: give a file name")


def check_output(path: Path) -> None:
    if path.suffix.lower() not in CODECS:
        raise InputError(f"-o {path}: the output must end in {' '.join(CODECS)}")
    _writable_directory(path, "-o")


def check_still(path: Path) -> None:
    if path.suffix.lower() not in STILL_SUFFIXES:
        raise InputError(f"--still {path}: the still must end in {' '.join(STILL_SUFFIXES)}")
    _writable_directory(path, "--still")
