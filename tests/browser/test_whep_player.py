"""WHEP in a real browser: the page's share link opens a viewer page whose <video> plays the
session's transformed output over WHEP, follows its prompt, and stops when the session ends."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.browser.pixels import wait_for_picture
from tests.browser.test_web_page import WAIT_MS, enter_key, grey, sepia
from tests.servers import API_KEY, framewire
from tests.test_whep import small_models


async def test_the_share_link_plays_the_session_over_whep(browser: Browser) -> None:
    async with framewire(registry=small_models()) as server, server.client() as http:
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        await page.goto(server.url + "/")
        await enter_key(page, API_KEY)
        await page.select_option("#model", "small_style")
        await page.fill("#prompt", "black and white")
        share = page.locator("#share")
        await expect(share).to_be_hidden()
        await page.click("#start")
        await expect(page.locator("#status")).to_have_text("Live", timeout=WAIT_MS)
        await expect(share).to_be_visible()
        href = await share.get_attribute("href")
        assert href is not None and re.fullmatch(r"/watch#rs_[0-9a-f]+", href)
        session_url = f"/v1/realtime/sessions/{href.split('#')[1]}"

        async with context.expect_page() as opened:
            await share.click()
        viewer = await opened.value
        await expect(viewer.locator("#status")).to_have_text("Live", timeout=WAIT_MS)
        picture = await wait_for_picture(
            viewer, "#viewer-video", lambda p: grey(p) and p.frames > 10
        )
        assert (picture.width, picture.height) == (320, 240)
        state = (await http.get(session_url)).json()
        assert [v["state"] for v in state["viewers"]] == ["connected"]

        # A prompt set on the page shows in the viewer too.
        await page.fill("#prompt", "sepia")
        await page.click("#apply")
        await wait_for_picture(viewer, "#viewer-video", sepia)

        # The session ends: the viewer's connection closes with it.
        await page.click("#end")
        await expect(viewer.locator("#status")).to_have_text("Ended", timeout=WAIT_MS)
        summary = (await http.get(session_url)).json()["summary"]
        assert summary["viewer_seconds"] > 0
        await context.close()
