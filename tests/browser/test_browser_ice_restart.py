"""ICE restart with a real Chromium running the reference browser client verbatim: the server loses
its path to the browser, sends `ice-restart`, its handler re-offers with
`createOffer({iceRestart: true})` and `If-Match: "*"`, and the output video keeps playing on
the same session and the same DTLS session."""

from __future__ import annotations

import json
from typing import Any

from playwright.async_api import Browser, Route, expect

from tests.browser.pixels import TIMEOUT, measure, wait_for_picture
from tests.browser.test_behind_proxy import SEED_CLIENT
from tests.servers import API_KEY, Running, framewire
from tests.sessions import SESSIONS

WAIT_MS = TIMEOUT * 1000


def leg_of(server: Running, session_id: str) -> Any:
    return server.app.state.sessions.live[session_id].leg


def drop_server_path(server: Running, session_id: str) -> None:
    """The server's side of the path goes dead both ways; its sockets stay open."""
    transport = leg_of(server, session_id)._pc.getTransceivers()[0].receiver.transport.transport
    for protocol in transport._connection._protocols:
        protocol.datagram_received = lambda data, addr: None
        protocol.transport.sendto = lambda data, addr=None: None


async def test_the_seed_client_restarts_ice_in_chromium_and_video_keeps_playing(
    browser: Browser,
) -> None:
    async with (
        framewire(ice_disconnect_grace=1.5, ice_restart_timeout=20.0) as server,
        server.client() as api,
    ):
        page = await browser.new_page()
        await page.set_extra_http_headers({"x-api-key": API_KEY})

        async def serve_seed_client(route: Route) -> None:
            await route.fulfill(path=SEED_CLIENT, content_type="text/html")

        await page.route(f"{server.url}/seed-client.html", serve_seed_client)
        async with page.expect_response(f"{server.url}{SESSIONS}") as creating:
            await page.goto(f"{server.url}/seed-client.html")
        session_id = (await (await creating.value).json())["session_id"]
        url = f"{SESSIONS}/{session_id}"
        await expect(page.locator("#status")).to_have_text("● Live", timeout=WAIT_MS)
        before = await wait_for_picture(page, "#remote-video", lambda p: p.frames > 10)
        first_etag = (await api.get(url)).headers["etag"]
        dtls = leg_of(server, session_id)._pc.getTransceivers()[0].receiver.transport
        ssl = dtls._ssl

        async with page.expect_response(
            lambda r: r.request.method == "PATCH" and '"sdp"' in (r.request.post_data or ""),
            timeout=WAIT_MS,
        ) as restarting:
            drop_server_path(server, session_id)
        restart = await restarting.value
        assert restart.status == 200
        assert restart.request.headers["if-match"] == "*"
        offer = json.loads(restart.request.post_data or "{}")["sdp"]
        assert offer["type"] == "offer"
        assert (await restart.json())["sdp"]["type"] == "answer"

        # The video keeps playing after the restart, on the same session and DTLS session.
        stalled = await measure(page, "#remote-video")
        assert stalled is not None
        after = await wait_for_picture(
            page, "#remote-video", lambda p: p.frames > stalled.frames + 40 and p.chroma > 40
        )
        assert after.frames > before.frames
        state = await api.get(url)
        assert state.json()["status"] == "active" and state.headers["etag"] != first_etag
        assert leg_of(server, session_id)._pc.getTransceivers()[0].receiver.transport is dtls
        assert dtls._ssl is ssl and dtls.state == "connected"
        assert not leg_of(server, session_id).ice_restarting
        await page.evaluate("disconnect()")
        summary = (await api.get(url)).json()["summary"]
        assert summary["reason"] == "disconnect"
