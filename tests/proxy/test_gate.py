"""The proxy's own layer: end-user bearer auth, per-client rate limits, CORS, path hygiene and
access logs that hold no secret."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from tests.peers import ClientPeer
from tests.proxy.support import (
    SESSIONS,
    access_lines,
    assert_logs_clean,
    assert_not_leaked,
    bearer,
    proxy_for,
)
from tests.servers import API_KEY, Running, framewire
from tests.sse import EventReader
from tests.test_errors import assert_problem

ALICE, BOB = "alice-token-0123456789", "bob-token-9876543210"
PAGE = "https://app.example.com"


@pytest.fixture
async def upstream() -> AsyncIterator[Running]:
    async with framewire() as server:
        yield server


async def create(client_url: str, token: str | None) -> dict[str, str]:
    """A session created through the proxy (not connected: enough for control and SSE)."""
    peer = ClientPeer()
    offer = await peer.offer()
    await peer.close()
    async with bearer(client_url, token) as http:
        created = await http.post(
            SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
        )
    assert created.status_code == 201, created.text
    body = created.json()
    return {
        "session": f"{SESSIONS}/{body['session_id']}",
        "events": f"{body['events']['url']}?event_token={body['events']['event_token']}",
        "event_token": body["events"]["event_token"],
    }


async def test_bearer_auth_guards_every_route_but_the_event_stream(
    upstream: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with proxy_for(upstream.url, tokens=[ALICE, BOB]) as front:
        async with bearer(front.url, None) as anonymous, bearer(front.url, "wrong") as guessing:
            refused = [
                await anonymous.get("/v1/models"),
                await anonymous.post(SESSIONS, json={}),
                await guessing.get("/v1/models"),
                await anonymous.get("/v1/legs"),
            ]
        for response in refused[:3]:
            body = assert_problem(response, 401)
            assert "bearer" in body["title"].lower()
            assert response.headers["www-authenticate"].startswith("Bearer")
        # The leg API answers in its own error shape (seed 002), from the proxy too.
        assert refused[3].status_code == 401 and set(refused[3].json()) == {"error", "instance_id"}

        async with bearer(front.url, ALICE) as alice:
            models = await alice.get("/v1/models")
        assert models.status_code == 200
        assert "lucy_2_rt" in [m["id"] for m in models.json()["models"]]

        # A browser's EventSource sends no Authorization: the stream is authorised upstream by
        # its event_token alone.
        made = await create(front.url, BOB)
        events = EventReader(front.client(None), made["events"]).start()
        await events.wait_for("ice-candidate")
        assert events.status == 200
        async with bearer(front.url, None) as anonymous:
            assert_problem(await anonymous.get(made["session"]), 401)
            forged = await anonymous.get(made["events"].replace("=evt_", "=evt_forged"))
        assert_problem(forged, 401)
        assert "event_token" in forged.json()["detail"]  # the upstream's answer, not the proxy's
        await events.stop()

    assert_not_leaked([*refused, models, forged], API_KEY)
    assert_logs_clean(caplog, API_KEY, ALICE, BOB, made["event_token"])
    logged = "\n".join(access_lines(caplog))
    assert "GET /v1/models 401" in logged and "GET /v1/models 200" in logged
    assert "client=tok_" in logged  # who it was, without the token


async def test_rate_limit_answers_429_with_retry_after_per_client(upstream: Running) -> None:
    async with (
        proxy_for(upstream.url, tokens=[ALICE, BOB], rate_limit=2, burst=3) as front,
        bearer(front.url, ALICE) as alice,
        bearer(front.url, BOB) as bob,
    ):
        answers = [await alice.get("/v1/models") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        body = assert_problem(answers[3], 429)
        assert body["type"].endswith("/rate-limited")
        wait = int(answers[3].headers["retry-after"])
        assert wait >= 1
        assert (await bob.get("/v1/models")).status_code == 200  # Bob has his own bucket
        await asyncio.sleep(wait)
        assert (await alice.get("/v1/models")).status_code == 200


async def test_rate_limit_falls_back_to_the_client_ip(upstream: Running) -> None:
    """Without bearer tokens the bucket is the client IP's. A refill of one request per 60 s
    is negligible over the test however slow the machine: the counts are exact."""
    async with proxy_for(upstream.url, rate_limit=1 / 60, burst=4) as front:
        made = await create(front.url, None)  # one request spent
        events = EventReader(front.client(None), made["events"]).start()
        await events.wait_for("ice-candidate")  # its connect spends the second, once, and it
        deadline = time.monotonic() + 20  # stays open across keep-alives without spending more
        while ": keep-alive" not in events.raw:
            assert time.monotonic() < deadline, "no keep-alive on the open stream"
            await asyncio.sleep(0.05)
        async with bearer(front.url, None) as http:
            answers = [await http.get(made["session"]) for _ in range(3)]
        await events.stop()
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["retry-after"]) >= 1


async def test_cors_preflight_is_answered_by_the_proxy(upstream: Running) -> None:
    options = {"tokens": [ALICE], "rate_limit": 1, "burst": 1, "cors_origins": [PAGE]}
    async with proxy_for(upstream.url, **options) as front, bearer(front.url, None) as browser:
        preflights = [
            await browser.options(
                f"{SESSIONS}/rs_1",
                headers={
                    "Origin": PAGE,
                    "Access-Control-Request-Method": "PATCH",
                    "Access-Control-Request-Headers": "authorization, content-type, if-match",
                },
            )
            for _ in range(3)  # neither authenticated nor rate limited
        ]
        for preflight in preflights:
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == PAGE
            assert "PATCH" in preflight.headers["access-control-allow-methods"]
            allowed = preflight.headers["access-control-allow-headers"].lower()
            assert {"authorization", "content-type", "if-match"} <= set(allowed.split(", "))

        stranger = await browser.options(
            SESSIONS,
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert stranger.status_code == 400
        assert "access-control-allow-origin" not in stranger.headers

        browser.headers["Authorization"] = f"Bearer {ALICE}"
        made = await browser.get("/v1/models", headers={"Origin": PAGE})
        assert made.status_code == 200
        assert made.headers["access-control-allow-origin"] == PAGE
        exposed = made.headers["access-control-expose-headers"].lower().split(", ")
        assert {"etag", "location", "retry-after"} <= set(exposed)
        limited = await browser.get("/v1/models", headers={"Origin": PAGE})
        assert limited.status_code == 429  # readable by the page: CORS headers on errors too
        assert limited.headers["access-control-allow-origin"] == PAGE


async def test_paths_outside_the_proxied_api_never_reach_the_upstream(upstream: Running) -> None:
    async with proxy_for(upstream.url) as front, bearer(front.url, None) as http:
        assert_problem(await http.get("/metrics"), 404)
        assert_problem(await http.get("/openapi.json"), 404)
        escaping = await http.get("/v1/realtime/%2e%2e/%2e%2e/metrics")
        assert_problem(escaping, 400)
        assert "framewire_sessions_active" not in escaping.text
        page = await http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert '<meta name="framewire-proxy" content="1">' in page.text
        health = await http.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
