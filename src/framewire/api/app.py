"""The app factory: wires settings, state, media, policy and routes. No module-level state, so a
process may hold several independent instances (tests do)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from framewire import __version__
from framewire.api import events, ice, keyguard, models, ops, problems, realtime, web, whep, whip
from framewire.api import legs as leg_routes
from framewire.api.auth import ApiKeys
from framewire.config import Settings
from framewire.media.leg import IceOptions
from framewire.media.legs import Legs
from framewire.media.network import host_sockets
from framewire.media.turn import TURN_TTL_MARGIN, turn_server
from framewire.metrics import Metrics
from framewire.models.catalog import Catalog, load_catalog
from framewire.models.registry import ModelRegistry
from framewire.policy.plugins import build_enhancer, build_moderator
from framewire.sessions.admission import Admission, usable_cpus
from framewire.sessions.content import Content
from framewire.sessions.lifecycle import Lifecycle
from framewire.sessions.ports import Limits, Ports
from framewire.sessions.service import SessionService
from framewire.sessions.tokens import EventTokens
from framewire.sessions.viewers import Viewers
from framewire.sessions.webhooks import Usage, WebhookSender
from framewire.state.base import State
from framewire.state.connect import open_state

log = logging.getLogger("framewire")
HEARTBEAT_EVERY = 2.0
HEARTBEAT_TTL = 10.0
CORS_EXPOSED = ["Location", "ETag", "Link", "Accept-Post", "Retry-After"]
SWEEP_EVERY = 2.0
"""Seconds between looks for instances whose heartbeat expired (owner death)."""
WEBHOOK_FLUSH = 5.0
"""Seconds a stopping instance keeps delivering due webhooks (the rest stay in the outbox)."""


def create_app(
    settings: Settings | None = None,
    state: State | None = None,
    registry: ModelRegistry | None = None,
    catalog: Catalog | None = None,
) -> FastAPI:
    """Build one framewire instance. `state` may be shared by several apps (memory scale-out in
    one process); by default each app has its own, in Redis when `FRAMEWIRE_REDIS_URL` is set.
    The model ids come from `registry`, else `catalog`, else the models file of the settings,
    else the built-ins. Raises ModelsFileError / PolicyPluginError when those cannot load."""
    settings = settings or Settings()
    content = content_checks(settings, registry, catalog)
    shared = state if state is not None else open_state(settings.redis_url)
    metrics = Metrics(settings.instance_id)
    legs = open_legs(settings, content.registry, metrics)
    api_keys = ApiKeys(with_keys(settings))
    sender, lifecycle = usage_reports(settings, shared, metrics)
    service = session_service(settings, shared, legs, content, lifecycle)
    metrics.watch_load(load_readings(service, legs))

    async def heartbeat() -> None:
        await shared.heartbeats.beat(settings.instance_id, HEARTBEAT_TTL)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for kid, credit in api_keys.credits():
            await shared.accounts.ensure(kid, credit)
        await shared.heartbeats.beat(settings.instance_id, HEARTBEAT_TTL)
        await legs.ice.sockets.start()
        loop = asyncio.get_running_loop()
        periodic = [
            loop.create_task(every(HEARTBEAT_EVERY, "heartbeat", heartbeat)),
            loop.create_task(every(SWEEP_EVERY, "orphan sweep", service.sweep_orphans)),
        ]
        await service.start()
        sender.start()
        try:
            yield
        finally:
            for task in periodic:
                task.cancel()
            await service.stop()
            await sender.stop(flush=WEBHOOK_FLUSH)
            await legs.close_all()
            if state is None:  # made here, so closed here
                await shared.close()

    app = FastAPI(title="framewire", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.instance_id = settings.instance_id
    app.state.api_keys = api_keys
    app.state.sessions = service
    app.state.viewers = Viewers(service, settings.max_viewers)
    app.state.legs = legs
    app.state.sse_streams = Counter()
    app.state.metrics = metrics
    install_routes(app, api_keys, settings)
    return app


def install_routes(app: FastAPI, api_keys: ApiKeys, settings: Settings) -> None:
    """Error mapping, the key guard, then every router (the web page's catch-all last)."""
    problems.install(app)
    keyguard.install(app, api_keys, settings)
    allow_cross_origin(app, settings.cors_origins)
    for module in (realtime, events, whip, whep, leg_routes, models, ice, ops, web):
        app.include_router(module.router)


def allow_cross_origin(app: FastAPI, origins: list[str]) -> None:
    """Let pages from `origins` call the API (WHIP/WHEP players) and read its WHIP headers."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=CORS_EXPOSED,
    )


def with_keys(settings: Settings) -> dict[str, float | None]:
    """The API keys, with a development key (printed) when none is configured."""
    if not settings.api_keys:
        dev_key = "fw_dev_" + secrets.token_urlsafe(18)
        settings.api_keys = {dev_key: None}
        log.warning("FRAMEWIRE_API_KEYS is not set: development key %s", dev_key)
    return settings.api_keys


def load_readings(
    service: SessionService, legs: Legs
) -> dict[str, tuple[str, Callable[[], float]]]:
    """The gauges of /metrics: what this instance holds and what admission measures."""
    admission = service.admission
    return {
        "framewire_sessions_active": ("Sessions this instance owns", service.live_count),
        "framewire_legs_open": ("WebRTC legs open on this instance", lambda: len(legs.all())),
        "framewire_capacity_sessions": (
            "Sessions this instance admits (measured cost; -1: none)",
            lambda: admission.capacity() or -1,
        ),
        "framewire_core_per_session": (
            "CPU cores one streaming session costs (measured)",
            lambda: admission.session_cost().cores or 0.0,
        ),
        "framewire_other_cores": (
            "Cores busy with everything but this process (sibling workers, other programs)",
            lambda: admission.others,
        ),
        "framewire_loop_lag_seconds": (
            "Median event-loop lag over the admission window",
            admission.loop_lag,
        ),
        "framewire_overloaded": (
            "1 while live signals shed new sessions",
            lambda: int(admission.overload() is not None),
        ),
    }


def open_legs(settings: Settings, registry: ModelRegistry, metrics: Metrics) -> Legs:
    return Legs(
        registry,
        IceOptions(
            servers=settings.ice_servers,
            interfaces=settings.ice_interfaces,
            announced_ip=settings.ice_announced_ip,
            connect_timeout=settings.ice_connect_timeout,
            turn=turn_server(
                settings.turn_urls, settings.turn_secret, settings.max_duration + TURN_TTL_MARGIN
            ),
            restart_timeout=settings.ice_restart_timeout,
            disconnect_grace=settings.ice_disconnect_grace,
            sockets=host_sockets(settings),
        ),
        workers=model_workers(settings),
        video_codecs=settings.video_codecs,
        metrics=metrics,
    )


def open_admission(settings: Settings, legs: Legs) -> Admission:
    cores = len(usable_cpus())  # sibling workers' use is measured (Admission.others)
    return Admission(
        legs, settings.max_sessions, cores, model_workers(settings), shed=settings.shed_load
    )


def model_workers(settings: Settings) -> int:
    """Threads per process running models (and each frame's pixel work)."""
    return settings.model_workers or max(1, os.cpu_count() or 1)


def content_checks(
    settings: Settings, registry: ModelRegistry | None, catalog: Catalog | None
) -> Content:
    """The model ids served (a shared model in a models file is loaded here) and the
    moderator and enhancer: the models file's plug-ins, else the settings', else the built-ins."""
    if catalog is None and settings.models is not None:
        catalog = load_catalog(settings.models)
    registry = registry or (catalog.start() if catalog else ModelRegistry.default())
    enhancer = catalog.enhancer if catalog else None
    moderator = catalog.moderator if catalog else None
    return Content(
        registry,
        build_moderator(
            moderator.name if moderator else settings.moderator,
            moderator.options if moderator else {},
            settings.blocked_terms,
        ),
        build_enhancer(
            enhancer.name if enhancer else settings.enhancer, enhancer.options if enhancer else {}
        ),
    )


def usage_reports(
    settings: Settings, shared: State, metrics: Metrics
) -> tuple[WebhookSender, Lifecycle]:
    """The webhook sender, and what sessions tell it (and the metrics) as they live."""
    sender = WebhookSender(
        shared.outbox,
        settings.webhook_secret or "",
        settings.webhook_retry_for,
        settings.webhook_backoff,
        lambda outcome: metrics.webhooks.labels(settings.instance_id, outcome).inc(),
    )
    return sender, Lifecycle(Usage(shared.outbox, settings.webhook_url, sender.wake), metrics)


def session_service(
    settings: Settings, shared: State, legs: Legs, content: Content, lifecycle: Lifecycle
) -> SessionService:
    ports = Ports(
        shared.sessions,
        shared.events,
        shared.commands,
        shared.accounts,
        shared.heartbeats,
        shared.ledger,
    )
    return SessionService(
        settings.instance_id,
        ports,
        legs,
        content,
        EventTokens(settings.secret),
        Limits(
            max_duration=settings.max_duration,
            key_concurrency=settings.key_concurrency,
            tick_interval=settings.tick_interval,
            inactivity_timeout=settings.inactivity_timeout,
            retention=settings.session_retention,
        ),
        open_admission(settings, legs),
        lifecycle,
        lifecycle.metrics,
    )


async def every(period: float, what: str, action: Callable[[], Awaitable[None]]) -> None:
    """Run `action` every `period` seconds for the app's life. A failure (Redis unreachable) is
    logged and the next period tries again: these loops must outlive a blip."""
    while True:
        try:
            await action()
        except Exception as exc:  # Redis away, or a bug: say so, and try again next period
            log.exception("%s failed: %s", what, exc)
        await asyncio.sleep(period)
