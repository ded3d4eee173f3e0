"""A framewire server inside the caller's event loop, on loopback, for `framewire run` without
`--url`: the full app (create_app) under uvicorn on 127.0.0.1 and a free port, gathering ICE on
127.0.0.1 only, with a one-off API key. `serving` runs any ASGI app that way (the benchmarks use
it for their servers)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from framewire.api.app import create_app
from framewire.config import Settings

LOOPBACK = "127.0.0.1"


class _Embedded(uvicorn.Server):
    """Leaves Ctrl-C to the program: the client must still reach the server to end its
    session (DELETE) while the program unwinds."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class EmbeddedServer:
    url: str
    api_key: str


@contextlib.asynccontextmanager
async def embedded_server(settings: Settings | None = None) -> AsyncIterator[EmbeddedServer]:
    """Run a server until the block exits. `settings` default to the environment's, with
    loopback-only ICE and a fresh API key."""
    api_key = "fw_run_" + secrets.token_urlsafe(18)
    settings = settings or Settings()
    settings.api_keys = {api_key: None}
    settings.ice_interfaces = [LOOPBACK]
    async with serving(create_app(settings)) as url:
        yield EmbeddedServer(url, api_key)


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` under uvicorn on 127.0.0.1 and a free port until the block exits; yields
    its base URL once it accepts connections."""
    config = uvicorn.Config(
        app,
        host=LOOPBACK,
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = _Embedded(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the embedded server stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        await task
