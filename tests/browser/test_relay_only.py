"""The web page's **Relay only** switch in real Chromium against real coturn: the page gets ICE
servers from `GET /v1/realtime/ice-servers` before its offer, offers with
`iceTransportPolicy: "relay"`, and its media reaches the server through the relay."""

from __future__ import annotations

from playwright.async_api import Browser, Request, expect

from tests.browser.pixels import TIMEOUT, wait_for_picture
from tests.browser.test_web_page import enter_key
from tests.coturn import coturn
from tests.servers import framewire
from tests.test_turn import leg_connection


async def test_relay_only_page_gets_ice_servers_first_and_streams_through_coturn(
    browser: Browser,
) -> None:
    async with (
        coturn() as relay,
        framewire(turn_urls=[relay.url], turn_secret=relay.secret) as server,
    ):
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        asked: list[str] = []

        def record(request: Request) -> None:
            asked.append(request.url.removeprefix(server.url))

        page.on("request", record)
        await page.goto(server.url + "/")
        await enter_key(page, "test-key-1")
        await page.fill("#prompt", "black and white")
        await page.locator("label.switch", has_text="Relay only").click()
        await expect(page.locator("#relay-only")).to_be_checked()
        await page.click("#start")
        await expect(page.locator("#status")).to_have_text("Live", timeout=TIMEOUT * 1000)
        await wait_for_picture(page, "#output-video", lambda p: p.chroma < 15 and p.frames > 10)

        calls = [path for path in asked if path.startswith("/v1/realtime/")]
        assert calls[:2] == ["/v1/realtime/ice-servers", "/v1/realtime/sessions"], calls
        [session_id] = list(server.app.state.sessions.live)
        offer = server.app.state.sessions.live[session_id].leg.remote_sdp
        assert " typ host" not in offer and " typ srflx" not in offer
        # The server hears the browser from coturn's relayed address.
        nominated = leg_connection(server, session_id)._nominated[1].remote_candidate
        assert nominated.type == "relay" and nominated.port != relay.port
        await page.click("#end")
        await expect(page.locator("#status")).to_have_text("Ended", timeout=TIMEOUT * 1000)
