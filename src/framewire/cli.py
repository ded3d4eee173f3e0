"""The `framewire` command: `serve`, plus the subcommands other modules register
(`proxy` from framewire.proxy.command, `run` from framewire.client.command)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from framewire.serving import serve

SUBCOMMAND_MODULES = ("framewire.proxy.command", "framewire.client.command")
"""Each defines `register(subparsers)`, adding its parser with `set_defaults(func=...)`;
`func(args) -> int` is the exit status."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framewire", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the realtime API, the leg API and the web page")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error", "critical"]
    )
    p.add_argument(
        "--log-format",
        default="plain",
        choices=["plain", "json"],
        help="plain lines for a terminal, or one JSON object per line",
    )
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
