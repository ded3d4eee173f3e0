"""Chromium against a server behind a firewall: the server runs in a network namespace the test
makes, whose nftables admit only TCP to the HTTP port and UDP to `FRAMEWIRE_ICE_UDP_PORT`; the
web page's session connects over the one UDP port and its output streams."""

from __future__ import annotations

import random
from pathlib import Path

from playwright.async_api import async_playwright, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.pixels import TIMEOUT, wait_for_picture
from tests.browser.test_web_page import enter_key
from tests.netns import namespace
from tests.servers import API_KEY
from tests.test_firewall import only, server_in


async def test_chromium_streams_through_a_firewall_admitting_http_and_one_udp_port(
    camera_file: Path,
) -> None:
    http_port, udp_port = random.randrange(20000, 30000), random.randrange(40000, 50000)
    with namespace() as ns:
        ns.firewall(only(http_port, udp_port))
        # As the other browser tests' Chromium, except that the namespace's address resolves
        # too and is a secure context (camera access), as localhost is.
        args = [
            f"{arg}, EXCLUDE {ns.inside}" if arg.startswith("--host-resolver-rules=") else arg
            for arg in CHROMIUM_ARGS
        ] + [f"--unsafely-treat-insecure-origin-as-secure=http://{ns.inside}:{http_port}"]
        async with (
            server_in(ns, http_port, FRAMEWIRE_ICE_UDP_PORT=str(udp_port)) as url,
            async_playwright() as playwright,
        ):
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[*args, f"--use-file-for-fake-video-capture={camera_file}"],
            )
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(url + "/")
            await enter_key(page, API_KEY)
            await page.fill("#prompt", "black and white")
            await page.click("#start")
            await expect(page.locator("#status")).to_have_text("Live", timeout=TIMEOUT * 1000)
            await wait_for_picture(page, "#output-video", lambda p: p.chroma < 15 and p.frames > 10)
            await page.click("#end")
            await expect(page.locator("#status")).to_have_text("Ended", timeout=TIMEOUT * 1000)
            await browser.close()
