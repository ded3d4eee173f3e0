"""Browsers that only ever talk to `framewire proxy`, with `framewire serve` upstream: seed 000's
client code as the seed prints it, and the web page, which behind the proxy holds no key."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.async_api import Browser, Request, Route, expect

from tests.browser.pixels import TIMEOUT, wait_for_picture
from tests.browser.test_web_page import grey
from tests.proxy.support import SESSIONS, proxy_for
from tests.servers import API_KEY, framewire

SEED_CLIENT = Path(__file__).with_name("seed_client.html")
WAIT_MS = TIMEOUT * 1000


async def test_seed_client_runs_verbatim_through_the_proxy(browser: Browser) -> None:
    async with framewire() as upstream, proxy_for(upstream.url) as front, upstream.client() as api:
        page = await browser.new_page()
        sent: list[Request] = []
        page.on("request", lambda request: sent.append(request))

        async def serve_seed_client(route: Route) -> None:
            await route.fulfill(path=SEED_CLIENT, content_type="text/html")

        # Served at the proxy's origin, so the seed's same-origin requests reach the real proxy.
        await page.route(f"{front.url}/seed-client.html", serve_seed_client)
        async with page.expect_response(f"{front.url}{SESSIONS}") as creating:
            await page.goto(f"{front.url}/seed-client.html")
        created = await creating.value
        assert created.status == 201
        session_id = (await created.json())["session_id"]

        # generation_started and generation_tick reach the seed's handlers through the proxy.
        await expect(page.locator("#status")).to_have_text("● Live", timeout=WAIT_MS)
        usage = page.locator("#usage")
        await expect(usage).to_have_text(re.compile(r"^[1-9]\d*s$"), timeout=WAIT_MS)
        await wait_for_picture(page, "#remote-video", lambda p: p.chroma > 40 and p.frames > 5)

        await page.evaluate("setPrompt('black and white')")
        picture = await wait_for_picture(page, "#remote-video", grey)
        assert (picture.width, picture.height) == (1280, 720)

        await page.evaluate("disconnect()")
        state = await api.get(f"{SESSIONS}/{session_id}")
        assert state.json()["status"] == "ended"
        assert state.json()["summary"]["reason"] == "disconnect"

        # Every request went to the proxy, and none carried a key: the proxy added it.
        api_requests = [r for r in sent if "/v1/" in r.url]
        assert {r.url.split("/v1/")[0] for r in api_requests} == {front.url}
        assert not any("x-api-key" in r.headers for r in api_requests)
        patches = [r for r in api_requests if r.method == "PATCH"]

        for patch in patches:
            assert patch.headers["if-match"].startswith('"ice-')
            assert "candidates" in json.loads(patch.post_data or "{}")
        assert API_KEY not in await page.content()


async def test_page_behind_the_proxy_asks_for_no_key(browser: Browser) -> None:
    async with framewire() as upstream, proxy_for(upstream.url) as front:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        sent: list[Request] = []
        page.on("request", lambda request: sent.append(request))
        await page.goto(front.url + "/")
        await expect(page.locator("#model")).to_have_value("lucy_2_rt")
        await expect(page.locator("#key-dialog")).to_be_hidden()

        await page.fill("#prompt", "black and white")
        await page.click("#start")
        await expect(page.locator("#status")).to_have_text("Live", timeout=WAIT_MS)
        await wait_for_picture(page, "#output-video", lambda p: grey(p) and p.frames > 5)
        await page.click("#end")
        await expect(page.locator("#status")).to_have_text("Ended", timeout=WAIT_MS)
        await expect(page.locator("#session-note")).to_have_text("Session ended: you ended it.")

        api_requests = [r for r in sent if "/v1/realtime/" in r.url]
        assert {r.method for r in api_requests} >= {"POST", "PATCH", "GET", "DELETE"}
        assert not any("x-api-key" in r.headers for r in api_requests)
        assert await page.evaluate("sessionStorage.length") == 0
