"""The app factory: wires settings, state, media, policy and routes. No module-level state, so a
process may hold several independent instances (tests do)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator

from fastapi import FastAPI

from framewire import __version__
from framewire.api import events, models, ops, problems, realtime, web
from framewire.api import legs as leg_routes
from framewire.api.auth import ApiKeys
from framewire.config import Settings
from framewire.media.leg import IceOptions
from framewire.media.legs import Legs
from framewire.models.registry import ModelRegistry
from framewire.policy.enhance import KeywordEnhancer
from framewire.policy.moderation import DefaultModerator
from framewire.sessions.service import Limits, Ports, SessionService
from framewire.sessions.tokens import EventTokens
from framewire.state.memory import MemoryState

log = logging.getLogger("framewire")
HEARTBEAT_EVERY = 2.0
HEARTBEAT_TTL = 10.0


def create_app(
    settings: Settings | None = None,
    state: MemoryState | None = None,
    registry: ModelRegistry | None = None,
) -> FastAPI:
    """Build one framewire instance. `state` may be shared by several apps (memory scale-out in
    one process); by default each app has its own."""
    settings = settings or Settings()
    if not settings.api_keys:
        dev_key = "fw_dev_" + secrets.token_urlsafe(18)
        settings.api_keys = {dev_key: None}
        log.warning("FRAMEWIRE_API_KEYS is not set: development key %s", dev_key)
    state = state or MemoryState()
    registry = registry or ModelRegistry.default()
    legs = Legs(
        registry,
        IceOptions(
            servers=settings.ice_servers,
            interfaces=settings.ice_interfaces,
            announced_ip=settings.ice_announced_ip,
            connect_timeout=settings.ice_connect_timeout,
        ),
        workers=max(1, os.cpu_count() or 1),
    )
    api_keys = ApiKeys(settings.api_keys)
    service = SessionService(
        settings.instance_id,
        Ports(state.sessions, state.events, state.commands, state.accounts, state.heartbeats),
        legs,
        DefaultModerator(settings.blocked_terms),
        KeywordEnhancer(),
        EventTokens(settings.secret),
        Limits(
            max_duration=settings.max_duration,
            max_sessions=settings.max_sessions,
            key_concurrency=settings.key_concurrency,
            tick_interval=settings.tick_interval,
            inactivity_timeout=settings.inactivity_timeout,
            retention=settings.session_retention,
        ),
    )

    async def heartbeat() -> None:
        while True:
            await state.heartbeats.beat(settings.instance_id, HEARTBEAT_TTL)
            await asyncio.sleep(HEARTBEAT_EVERY)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for kid, credit in api_keys.credits():
            await state.accounts.ensure(kid, credit)
        await state.heartbeats.beat(settings.instance_id, HEARTBEAT_TTL)
        beating = asyncio.get_running_loop().create_task(heartbeat())
        await service.start()
        try:
            yield
        finally:
            beating.cancel()
            await service.stop()
            await legs.close_all()

    app = FastAPI(title="framewire", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.instance_id = settings.instance_id
    app.state.api_keys = api_keys
    app.state.sessions = service
    app.state.legs = legs
    problems.install(app)
    for router in (realtime.router, events.router, leg_routes.router, models.router):
        app.include_router(router)
    app.include_router(ops.router)
    app.include_router(web.router)
    return app
