"""The proxy's side of its upstream: bodies streamed both ways, URLs re-expressed in the proxy's
space, and a dead or slow upstream turned into 502/504 problems, never a hang or a leak."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator

import cv2
import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.proxy.support import (
    SESSIONS,
    access_lines,
    assert_logs_clean,
    assert_not_leaked,
    bearer,
    proxy_for,
)
from tests.servers import API_KEY, framewire, running
from tests.sessions import open_session
from tests.test_errors import assert_problem

TOKEN = "end-user-token-42"
PASSWORD = "upstream-s3cret"
CHUNK = 1_000_000


def gateway() -> FastAPI:
    """An upstream that answers like a hosted API behind its own gateway: under a path prefix,
    with basic auth, and with absolute URLs (framewire itself answers relative ones). It reports
    what reached it without echoing any secret."""
    app = FastAPI()
    app.state.first_bytes = asyncio.Event()
    prefix = "/gw/v1/realtime/sessions"

    @app.post(prefix)
    async def create(request: Request) -> JSONResponse:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
            app.state.first_bytes.set()
        absolute = f"{str(request.base_url).rstrip('/')}{prefix}/rs_1"
        basic = base64.b64encode(f"platform:{PASSWORD}".encode()).decode()
        return JSONResponse(
            {
                "session_id": "rs_1",
                "events": {"url": f"{absolute}/events", "event_token": "evt_1"},
                "received": {
                    "bytes": size,
                    "sha256": digest.hexdigest(),
                    "api_key_ok": request.headers.get("x-api-key") == API_KEY,
                    "basic_auth_ok": request.headers.get("authorization") == f"Basic {basic}",
                    "headers": sorted(request.headers.keys()),
                },
            },
            status_code=201,
            headers={"Location": absolute, "ETag": '"ice-1"'},
        )

    @app.get(f"{prefix}/slow")
    async def slow() -> Response:
        await asyncio.sleep(5)
        return Response(status_code=204)

    return app


async def upload(megabytes: int, arrived: asyncio.Event) -> AsyncIterator[bytes]:
    """A body of unknown length (chunked) whose rest is only sent once its first megabyte has
    reached the upstream: a proxy that buffered bodies would stall here."""
    for i in range(megabytes):
        yield bytes([i]) * CHUNK
        await asyncio.wait_for(arrived.wait(), 5)


async def test_bodies_stream_and_urls_are_rewritten_into_the_proxy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    upstream = gateway()
    async with running(upstream) as up:
        secret_url = up.url.replace("http://", f"http://platform:{PASSWORD}@") + "/gw"
        async with proxy_for(secret_url, tokens=[TOKEN]) as front, bearer(front.url, TOKEN) as http:
            created = await http.post(
                SESSIONS,
                content=upload(8, upstream.state.first_bytes),
                headers={
                    "Content-Type": "application/json",
                    "If-Match": '"ice-0"',
                    "X-Api-Key": "a-client-must-not-choose-the-key",
                    "Cookie": "session=browser",
                },
            )
    assert created.status_code == 201, created.text
    body = created.json()
    expected = hashlib.sha256()
    for i in range(8):
        expected.update(bytes([i]) * CHUNK)
    received = body["received"]
    assert received["bytes"] == 8 * CHUNK and received["sha256"] == expected.hexdigest()
    assert received["api_key_ok"] and received["basic_auth_ok"]
    assert "if-match" in received["headers"] and "content-type" in received["headers"]
    assert "cookie" not in received["headers"]
    assert created.headers["location"] == f"{front.url}{SESSIONS}/rs_1"
    assert created.headers["etag"] == '"ice-1"'
    assert body["events"]["url"] == f"{front.url}{SESSIONS}/rs_1/events"
    assert_not_leaked([created], API_KEY, PASSWORD, up.url)
    assert_logs_clean(caplog, API_KEY, PASSWORD, TOKEN)


async def test_a_slow_upstream_answers_504_in_time() -> None:
    async with (
        running(gateway()) as up,
        proxy_for(up.url + "/gw", timeout=0.5) as front,
        bearer(front.url, None) as http,
    ):
        started = time.monotonic()
        answer = await http.get(f"{SESSIONS}/slow")
        assert time.monotonic() - started < 2.5
    body = assert_problem(answer, 504)
    assert body["type"].endswith("/gateway-timeout")
    assert_not_leaked([answer], up.url, API_KEY)


async def test_a_reference_image_streams_through_to_the_model() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (1400, 1400, 3), np.uint8)
    ok, encoded = cv2.imencode(".png", noise)
    assert ok
    image = base64.b64encode(encoded.tobytes()).decode()
    assert len(image) > 7_000_000  # a large image, under the 10 MB limit
    async with (
        framewire() as upstream,
        proxy_for(upstream.url) as front,
        front.client(None) as http,
    ):
        opened = await open_session(front, http, model="lucy_2_rt", connect=False)
        accepted = await http.post(f"{opened.url}/image", json={"image_data": image})
        assert accepted.status_code == 200, accepted.text
        assert (await http.get(opened.url)).json()["has_image"] is True
        too_big = await http.post(f"{opened.url}/image", json={"image_data": image * 2})
        assert_problem(too_big, 413, "content-too-large")
        await opened.close()


async def test_upstream_dying_mid_stream_ends_the_stream_then_answers_502(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with contextlib.AsyncExitStack() as upstream_life:
        upstream = await upstream_life.enter_async_context(framewire())
        async with (
            proxy_for(upstream.url, tokens=[TOKEN]) as front,
            bearer(front.url, TOKEN) as http,
            front.client(None) as browser,
        ):
            opened = await open_session(front, http)
            await opened.events.wait_for("generation_started")
            assert opened.events.status == 200

            await upstream_life.aclose()  # the upstream goes away; the proxy stays
            await opened.events.wait_closed(timeout=10)
            assert opened.events.closed_by_server  # a clean end, not a broken connection
            assert opened.events.names()[-1] != "generation_ended"
            broken = await http.get(opened.url)
            reconnect = await browser.get(opened.events.url)
            await opened.peer.close()
    for answer in (broken, reconnect):
        body = assert_problem(answer, 502)
        assert "upstream" in body["detail"]
    assert_not_leaked([broken, reconnect], API_KEY, upstream.url)
    assert_logs_clean(caplog, API_KEY, TOKEN, opened.body["events"]["event_token"])
    assert any(" 502 " in line for line in access_lines(caplog))
