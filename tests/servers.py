"""Run real framewire instances on loopback inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from framewire.api.app import create_app
from framewire.api.connections import bounded_http
from framewire.config import Settings
from framewire.models.registry import ModelRegistry
from framewire.state.memory import MemoryState

API_KEY = "test-key-1"
OTHER_KEY = "test-key-2"


def test_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_keys": {API_KEY: None, OTHER_KEY: None},
        "ice_interfaces": ["127.0.0.1"],
        "secret": "test-secret",
        "tick_interval": 1.0,
        "keepalive_interval": 1.0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Running:
    app: FastAPI
    url: str

    def client(self, key: str | None = API_KEY, timeout: float = 20.0) -> httpx.AsyncClient:
        headers = {"x-api-key": key} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)


@contextlib.asynccontextmanager
async def running(app: FastAPI, host: str = "127.0.0.1") -> AsyncIterator[Running]:
    settings = getattr(app.state, "settings", None)  # framewire's bounds; a proxy has none
    config = uvicorn.Config(
        app,
        host=host,
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
        http=bounded_http(settings) if settings is not None else "auto",
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(app, f"http://{host}:{port}")
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def framewire(
    state: MemoryState | None = None,
    registry: ModelRegistry | None = None,
    http_host: str = "127.0.0.1",
    **overrides: Any,
) -> AsyncIterator[Running]:
    app = create_app(test_settings(**overrides), state=state, registry=registry)
    async with running(app, http_host) as server:
        yield server
