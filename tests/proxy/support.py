"""A proxy in front of a test upstream, plus the checks every proxy test makes: nothing secret
ever reaches the proxy's client or its logs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest

from framewire.proxy import create_proxy_app
from tests.servers import API_KEY, Running, running

SESSIONS = "/v1/realtime/sessions"


@contextlib.asynccontextmanager
async def proxy_for(upstream_url: str, **options: Any) -> AsyncIterator[Running]:
    """`framewire proxy` (the same app factory) on loopback, sending the test API key upstream."""
    async with running(create_proxy_app(upstream_url, API_KEY, **options)) as server:
        yield server


def bearer(url: str, token: str | None, timeout: float = 20.0) -> httpx.AsyncClient:
    """An end user's client of the proxy: no API key, maybe a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout)


def assert_not_leaked(responses: Iterable[httpx.Response], *secrets: str) -> None:
    """No secret in any status line's URL, header or body."""
    for response in responses:
        seen = [str(response.url), response.text]
        seen += [f"{k}: {v}" for k, v in response.headers.multi_items()]
        for secret in secrets:
            assert not any(secret in text for text in seen), (secret, response.url)


def assert_logs_clean(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    """No secret in any captured log line (messages and tracebacks)."""
    for secret in secrets:
        assert secret not in caplog.text, secret


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "framewire.proxy.access"]
