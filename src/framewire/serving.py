"""`framewire serve`: uvicorn with framewire's log output and its graceful shutdown.

The first SIGTERM (or SIGINT) drains: `/readyz` and creates answer 503 with `Retry-After`, the
running sessions go on for up to `FRAMEWIRE_DRAIN_TIMEOUT` seconds, then the rest end with
reason `shutdown`; only then does uvicorn stop (SSE streams have closed by then) and the app
settle and flush. A second signal ends the drain at once; settlement still runs. The exit
status is 0 (stock uvicorn re-raises the signal after its shutdown)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import uvicorn

from framewire import logs
from framewire.config import SettingError, Settings

if TYPE_CHECKING:
    from framewire.sessions.service import SessionService

log = logging.getLogger("framewire")
HTTP_GRACE = 5
"""Seconds uvicorn waits for open connections after the drain, before it cancels them."""


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service: SessionService, drain: float) -> None:
        super().__init__(config)
        self._service = service
        self._drain_timeout = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Signal handler (main thread, between bytecodes): hand over to the event loop."""
        if self._loop is None:
            self.should_exit = True
        else:
            self._loop.call_soon_threadsafe(self._on_signal)

    def _on_signal(self) -> None:
        if self._draining is None:
            assert self._loop is not None
            self._draining = self._loop.create_task(self._drain())
        else:
            log.warning("second signal: ending the remaining sessions now")
            self._service.hurry()

    async def _drain(self) -> None:
        try:
            await self._service.drain(self._drain_timeout)
        finally:
            self.should_exit = True


def run_server(settings: Settings, sock: socket.socket, level: str, log_format: str) -> int:
    """Serve until stopped; the exit status (0, or 2 when a setting only the start can check,
    the models file or a policy plug-in is wrong)."""
    from framewire.api.app import create_app
    from framewire.api.connections import bounded_http
    from framewire.models.catalog import ModelsFileError
    from framewire.policy.plugins import PolicyPluginError

    logs.configure(log_format, level, settings.instance_id, secrets_of(settings))
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
        log_level=level,
        log_config=None,
        timeout_graceful_shutdown=HTTP_GRACE,
    )
    DrainingServer(config, app.state.sessions, settings.drain_timeout).run(sockets=[sock])
    return 0


def secrets_of(settings: Settings) -> list[str | None]:
    """Every configured value no log line may show."""
    webhook = settings.webhook_secret
    redis = urlsplit(settings.redis_url).password if settings.redis_url else None
    return [
        *settings.api_keys,
        settings.secret,
        settings.turn_secret,
        webhook,
        webhook.removeprefix("whsec_") if webhook else None,
        redis,
    ]
