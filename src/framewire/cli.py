"""The `framewire` command: `serve` (the API server), `proxy` (a white-label proxy in front of
it) and `run` (stream a video file through a session). Server settings are FRAMEWIRE_*
environment variables, listed in the README's "Running the server" table;
`framewire serve --check` prints the effective ones."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import socket
import sys
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from framewire import __version__
from framewire.config import SettingError, Settings
from framewire.settings_view import effective_settings
from framewire.workers import (
    StartupError,
    listening_socket,
    parse_devices,
    parse_workers,
    supervise,
)

SUBCOMMAND_MODULES = ("framewire.proxy.command", "framewire.run.command")
"""Each defines `register(subparsers)`, adding its parser with `set_defaults(func=...)`;
`func(args) -> int` is the exit status."""

SETTINGS_POINTER = (
    'Settings: FRAMEWIRE_* environment variables (README, "Running the server"); '
    "--check prints the effective ones."
)
SERVE_EXIT = """\
exit status:
  0  stopped (Ctrl-C or SIGTERM), or --check printed a valid configuration
  1  --workers: the workers kept dying right after their start
  2  usage error, an invalid FRAMEWIRE_* setting (the message names it), a models file,
     model backend, enhancer or moderator that cannot load (file, model id and field named),
     or --workers > 1 without FRAMEWIRE_REDIS_URL or with FRAMEWIRE_ICE_UDP_PORT
  3  cannot listen on HOST:PORT (e.g. the port is in use); nothing was started"""
CANNOT_LISTEN = 3
WORKERS_NEED = (
    "--workers > 1 needs FRAMEWIRE_REDIS_URL (the workers share sessions, events and the "
    "ledger through Redis) and cannot use FRAMEWIRE_ICE_UDP_PORT (one process owns that port; "
    "use FRAMEWIRE_ICE_PORT_RANGE)"
)


def serve(args: argparse.Namespace) -> int:
    try:
        settings = Settings() if args.models is None else Settings(models=args.models)
    except ValidationError as exc:
        problems = "; ".join(
            (f"FRAMEWIRE_{'_'.join(map(str, e['loc'])).upper()}: " if e["loc"] else "") + e["msg"]
            for e in exc.errors()
        )
        print(f"framewire serve: invalid setting: {problems}", file=sys.stderr)
        return 2
    if args.check:
        return _check(settings)
    if args.workers > 1 and (not settings.redis_url or settings.ice_udp_port is not None):
        print(f"framewire serve: {WORKERS_NEED}", file=sys.stderr)
        return 2
    # A worker of `--workers` shares the port its siblings already listen on: no probe.
    reason = None if args.shared_port else _cannot_listen(args.host, args.port)
    if reason is not None:
        where = f"{args.host}:{args.port}"
        print(f"framewire serve: cannot listen on {where}: {reason}", file=sys.stderr)
        return CANNOT_LISTEN
    if args.workers > 1:
        return _serve_workers(args, settings)
    from framewire.api.app import create_app
    from framewire.api.connections import bounded_http
    from framewire.models.catalog import ModelsFileError
    from framewire.policy.plugins import PolicyPluginError

    try:
        app = create_app(settings)  # binds FRAMEWIRE_ICE_UDP_PORT, checks the port range
    except SettingError as exc:
        print(f"framewire serve: invalid setting: {exc}", file=sys.stderr)
        return 2
    except (ModelsFileError, PolicyPluginError) as exc:
        print(f"framewire serve: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        http=bounded_http(settings),
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
    )
    try:
        sock = listening_socket(args.host, args.port, reuse_port=args.shared_port)
    except OSError as exc:
        print(f"framewire serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return CANNOT_LISTEN
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    """`--workers N`: N worker processes behind the one port (framewire.workers). A models
    file is checked here first, so a bad one fails once, not in every worker."""
    from framewire.models.catalog import ModelsFileError, load_catalog

    extra = ["--log-level", args.log_level]
    if settings.models is not None:
        try:
            load_catalog(settings.models)
        except ModelsFileError as exc:
            print(f"framewire serve: {exc}", file=sys.stderr)
            return 2
        extra += ["--models", str(settings.models)]
    try:
        return supervise(args.host, args.port, args.workers, args.devices or [], extra)
    except StartupError as exc:
        print(f"framewire serve: {exc}", file=sys.stderr)
        return CANNOT_LISTEN


def _check(settings: Settings) -> int:
    """`serve --check`: the effective settings, and the models file read and checked (not
    loaded: no weights are read)."""
    from framewire.models.catalog import ModelsFileError, load_catalog

    for name, value in effective_settings(settings):
        print(f"{name}={value}")
    if settings.models is None:
        return 0
    try:
        ids = [spec.id for spec in load_catalog(settings.models).specs]
    except ModelsFileError as exc:
        print(f"framewire serve: {exc}", file=sys.stderr)
        return 2
    print(f"models: {', '.join(ids)}")
    return 0


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the server could not bind HOST:PORT, found before it starts (no key printed, no
    startup lines); None when it can."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"unknown host ({exc.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "the port is already in use"
            return exc.strerror or str(exc)
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framewire",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"framewire {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "serve",
        help="serve the realtime API, the leg API and the web page",
        description="Serve the realtime API, the leg API and the web page. " + SETTINGS_POINTER,
        epilog=SERVE_EXIT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug", "trace"),
        help="log level (default: info)",
    )
    p.add_argument(
        "--models",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML file declaring the model ids to serve (default: FRAMEWIRE_MODELS, else the"
        " built-in ids)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="print the effective configuration (secrets masked) and exit",
    )
    p.add_argument(
        "--workers",
        type=parse_workers,
        default=1,
        help="server processes behind the one port, sharing state through FRAMEWIRE_REDIS_URL "
        "(default: 1)",
    )
    p.add_argument(
        "--devices",
        type=parse_devices,
        help="accelerator ids, e.g. 0,1: worker i gets CUDA_VISIBLE_DEVICES=devices[i mod n] "
        "(default: none, workers see every device)",
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
