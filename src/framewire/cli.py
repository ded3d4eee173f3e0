"""The `framewire` command: `serve`, plus the subcommands other modules register
(`proxy` from framewire.proxy.command, `run` from framewire.client.command)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

import uvicorn
from pydantic import ValidationError

from framewire.workers import StartupError, parse_devices, parse_workers

SUBCOMMAND_MODULES = ("framewire.proxy.command", "framewire.client.command")
"""Each defines `register(subparsers)`, adding its parser with `set_defaults(func=...)`;
`func(args) -> int` is the exit status."""


def serve(args: argparse.Namespace) -> int:
    from framewire.api.app import create_app
    from framewire.config import Settings
    from framewire.workers import listening_socket, supervise

    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"framewire serve: invalid settings:\n{settings_errors(exc)}", file=sys.stderr)
        return 2
    if args.workers > 1:
        if not settings.redis_url:
            print(
                f"framewire serve: --workers {args.workers} needs FRAMEWIRE_REDIS_URL: the "
                "workers share sessions, events and the ledger through Redis",
                file=sys.stderr,
            )
            return 2
        extra = ["--log-level", args.log_level]
        try:
            return supervise(args.host, args.port, args.workers, args.devices or [], extra)
        except StartupError as exc:
            print(f"framewire serve: {exc}", file=sys.stderr)
            return 2
    config = uvicorn.Config(
        create_app(settings), log_level=args.log_level, timeout_graceful_shutdown=5
    )
    try:
        sock = listening_socket(args.host, args.port, reuse_port=args.shared_port)
    except OSError as exc:
        print(f"framewire serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def settings_errors(exc: ValidationError) -> str:
    """A pydantic ValidationError as one line per setting: `FRAMEWIRE_NAME: message`."""
    lines = []
    for error in exc.errors():
        name = "FRAMEWIRE_" + "_".join(str(part) for part in error.get("loc", ())).upper()
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        lines.append(f"  {name}: {message}" if not message.startswith(name) else f"  {message}")
    return "\n".join(lines) or str(exc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framewire", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the realtime API, the leg API and the web page")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info")
    p.add_argument(
        "--workers", type=parse_workers, default=1, help="server processes behind the one port"
    )
    p.add_argument(
        "--devices", type=parse_devices, help="accelerators, one per worker in turn: 0,1,..."
    )
    p.add_argument("--shared-port", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=serve)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
