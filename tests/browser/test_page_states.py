"""The web page tells the whole story: a key that stops working and its banner, banners that go
when their cause does, a usage counter that runs between ticks, and an end state in words with
seconds, credits charged and remaining, and the last output frame still on screen."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from tests.browser.pixels import still_picture, wait_for_picture
from tests.browser.test_web_page import BLOCKED, WAIT_MS, enter_key, grey
from tests.servers import API_KEY, framewire


async def start_live(page: Page, prompt: str = "black and white") -> None:
    await page.fill("#prompt", prompt)
    await page.click("#start")
    await expect(page.locator("#status")).to_have_text("Live", timeout=WAIT_MS)
    await wait_for_picture(page, "#output-video", lambda p: grey(p) and p.frames > 5)


async def test_a_key_refused_at_start_and_its_banner_go_with_a_good_key(browser: Browser) -> None:
    async with framewire() as server:
        page = await browser.new_page()
        # A key kept from earlier that the server no longer takes: the dialog is not shown.
        await page.add_init_script("sessionStorage.setItem('framewire.apiKey', 'revoked-key')")
        await page.goto(server.url + "/")
        await expect(page.locator("#key-dialog")).to_be_hidden()
        await page.click("#start")
        await expect(page.locator("#error")).to_contain_text("Missing or invalid API key")
        await expect(page.locator("#key-error")).to_contain_text("the API key is not valid")
        await expect(page.locator("#session-note")).to_have_text(
            "Enter a valid API key, then start again."
        )
        await enter_key(page, API_KEY)
        await expect(page.locator("#error")).to_be_hidden()
        await start_live(page)
        await page.click("#end")
        await expect(page.locator("#status")).to_have_text("Ended", timeout=WAIT_MS)


async def test_banners_clear_when_their_cause_does(browser: Browser) -> None:
    async with framewire(blocked_terms=[BLOCKED]) as server:
        page = await browser.new_page()
        await page.goto(server.url + "/")
        await enter_key(page, API_KEY)
        await start_live(page)
        error = page.locator("#error")

        # Apply with an empty prompt says so, and typing a prompt takes the banner away.
        await page.fill("#prompt", "")
        await page.click("#apply")
        await expect(error).to_contain_text("Empty prompt")
        await page.fill("#prompt", "sep")
        await expect(error).to_be_hidden()

        # A rejected prompt's banner goes once the prompt is changed (or cleared)...
        await page.fill("#prompt", f"{BLOCKED} everywhere")
        await page.click("#apply")
        await expect(error).to_contain_text("Input rejected by moderation")
        await page.fill("#prompt", "")
        await expect(error).to_be_hidden()

        # ...and when the session ends.
        await page.fill("#prompt", f"{BLOCKED} again")
        await page.click("#apply")
        await expect(error).to_contain_text("Input rejected by moderation")
        await page.click("#end")
        await expect(page.locator("#status")).to_have_text("Ended", timeout=WAIT_MS)
        await expect(error).to_be_hidden()


async def test_the_end_state_says_why_with_seconds_and_credits(browser: Browser) -> None:
    async with framewire(api_keys={"low": 4.0}, tick_interval=5.0) as server:
        page = await browser.new_page()
        await page.goto(server.url + "/")
        await enter_key(page, "low")
        await start_live(page)

        # Usage counts up between the server's 5 s ticks instead of jumping by 5.
        await expect(page.locator("#usage")).to_have_text(re.compile(r"^[1-4]$"), timeout=WAIT_MS)

        # The key runs out: the server ends the session; the page says so in words, with the
        # seconds, the credits charged and what is left, and keeps the last frame on screen.
        await expect(page.locator("#status")).to_have_text("Ended", timeout=WAIT_MS)
        await expect(page.locator("#session-note")).to_have_text(
            "Session ended: the API key ran out of credits."
        )
        await expect(page.locator("#end-summary")).to_have_text(
            re.compile(
                r"^\d+(\.\d)? s of video generated · \d+(\.\d)? credits charged · "
                r"0 credits remaining$"
            )
        )
        assert "insufficient_credits" not in await page.locator("body").inner_text()
        last = await still_picture(page)
        assert last is not None and grey(last) and last.r > 20
        assert (last.width, last.height) == (1280, 720)

        # Starting again with the empty key: the 402 in words, and what to do about it.
        await page.click("#start")
        await expect(page.locator("#error")).to_contain_text("Insufficient credits")
        await expect(page.locator("#session-note")).to_have_text(
            "This API key has no credits left: add credits to it or use another key."
        )
