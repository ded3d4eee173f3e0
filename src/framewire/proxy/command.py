"""`framewire proxy --upstream URL`: run the provider proxy (see framewire.proxy)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import uvicorn

from framewire.proxy.app import create_proxy_app
from framewire.proxy.auth import TOKENS_ENV, load_tokens

KEY_ENV = "FRAMEWIRE_UPSTREAM_API_KEY"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "proxy",
        help="serve a white-label proxy in front of a framewire (or compatible) API",
        description=(
            f"Stateless HTTP proxy for /v1/realtime, /v1/models and the leg API. The upstream "
            f"key comes from {KEY_ENV}; end-user bearer tokens from --tokens-file and/or "
            f"{TOKENS_ENV} (comma-separated); without any, the proxy's auth is off. Its page "
            f"and the upstream's behaviour follow the upstream's own FRAMEWIRE_* settings "
            f'(README, "Running the server").'
        ),
    )
    parser.add_argument("--upstream", required=True, help="base URL of the upstream API")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument(
        "--tokens-file",
        help="end-user bearer tokens, one per line (or comma-separated) (default: none)",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        metavar="N",
        help="requests per second per client (default: off)",
    )
    parser.add_argument(
        "--burst", type=int, help="bucket size for --rate-limit (default: 2x the rate)"
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser pages from ORIGIN (repeatable), e.g. https://app.example.com "
        "(default: none)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for an upstream answer (default: 30)",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="load balancers whose X-Forwarded-For/Proto are trusted for the client's IP "
        "(default: 127.0.0.1)",
    )
    parser.add_argument("--log-level", default="info", help="log level (default: info)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    api_key = os.environ.get(KEY_ENV, "").strip()
    if not api_key:
        print(f"framewire proxy: set {KEY_ENV} to the upstream's API key", file=sys.stderr)
        return 2
    try:
        tokens = load_tokens(args.tokens_file, os.environ.get(TOKENS_ENV))
        app = create_proxy_app(
            args.upstream,
            api_key,
            tokens=tokens,
            rate_limit=args.rate_limit,
            burst=args.burst,
            cors_origins=args.cors_origin,
            timeout=args.timeout,
        )
    except (OSError, ValueError) as exc:
        print(f"framewire proxy: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # uvicorn's would print event tokens; framewire.proxy.access doesn't
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
        timeout_graceful_shutdown=5,
    )
    return 0
