"""The web page at `/`, in real Chromium against a real `framewire serve`: key form, a session
whose output pixels follow the prompt and the reference image, the readouts, the end."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
from playwright.async_api import Browser, FilePayload, FloatRect, Page, Request, Route, expect

from tests.browser.pixels import TIMEOUT, Picture, measure, still_picture, wait_for_picture
from tests.servers import API_KEY, Running, framewire

SCREENSHOT = "FRAMEWIRE_SCREENSHOT"
"""Where the page's full-flow test saves its screenshot (the README's is docs/screenshot.png,
refreshed on purpose); the test's own temporary folder otherwise, so a run changes no tracked
file."""
WAIT_MS = TIMEOUT * 1000
RESUME_TIMEOUT = 10.0
"""After an ICE restart the server's receiver gives up on the packets lost on the dead path
after framewire's jitter hole timeout (0.25 s) and asks for a keyframe; stock aiortc waited for
its buffer to overflow (~13 s at Chrome's bitrate here)."""
GREEN = (40, 200, 40)  # BGR
TIMES = "\N{MULTIPLICATION SIGN}"
BLOCKED = "glitter"
"""A harmless word the test server's moderator is told to reject."""


def png(name: str, colour: tuple[int, int, int], size: int = 256) -> FilePayload:
    ok, encoded = cv2.imencode(".png", np.full((size, size, 3), colour, np.uint8))
    assert ok
    return {"name": name, "mimeType": "image/png", "buffer": encoded.tobytes()}


def inside(inner: FloatRect, outer: FloatRect) -> bool:
    return (
        outer["x"] < inner["x"]
        and inner["x"] + inner["width"] < outer["x"] + outer["width"]
        and outer["y"] < inner["y"]
        and inner["y"] + inner["height"] < outer["y"] + outer["height"]
    )


def grey(picture: Picture) -> bool:
    return picture.chroma < 15


def sepia(picture: Picture) -> bool:
    return picture.r > picture.g + 8 > picture.b + 16 and picture.chroma > 25


def green(picture: Picture) -> bool:
    return picture.g > max(picture.r, picture.b) + 40


async def enter_key(page: Page, key: str) -> None:
    dialog = page.locator("#key-dialog")
    await expect(dialog).to_be_visible()
    await page.fill("#api-key", key)
    await dialog.get_by_role("button", name="Use this key").click()
    await expect(dialog).to_be_hidden()


async def test_page_runs_a_session_that_follows_prompt_and_image(
    browser: Browser, tmp_path: Path
) -> None:
    async with framewire(blocked_terms=[BLOCKED]) as server:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.goto(server.url + "/")
        status = page.locator("#status")

        # Against `framewire serve` the page asks for a key first, and says where a dev key is.
        dialog = page.locator("#key-dialog")
        await expect(dialog).to_contain_text("FRAMEWIRE_API_KEYS")
        await expect(dialog).to_contain_text("development key")
        await expect(page.locator("#model option")).to_have_count(5)
        await expect(page.locator("#model")).to_have_value("lucy_2_rt")

        # A wrong key is refused in the dialog itself, in words, before any session is tried.
        await page.fill("#api-key", "not-a-key")
        await dialog.get_by_role("button", name="Use this key").click()
        await expect(page.locator("#key-error")).to_have_text(
            "The server does not know this key. Check it and try again."
        )
        await expect(dialog).to_be_visible()
        await expect(page.locator("#error")).to_be_hidden()
        assert await page.evaluate("sessionStorage.getItem('framewire.apiKey')") is None
        await enter_key(page, API_KEY)
        await page.fill("#prompt", "black and white")
        assert await page.evaluate("sessionStorage.getItem('framewire.apiKey')") == API_KEY
        assert await page.evaluate("localStorage.length") == 0

        # An image over 10 MB once base64-encoded is refused in the page, before any upload.
        huge: FilePayload = {"name": "huge.png", "mimeType": "image/png", "buffer": bytes(8 << 20)}
        await page.set_input_files("#image", files=[huge])
        await expect(page.locator("#error")).to_contain_text("Image too large")
        await expect(page.locator("#error")).to_contain_text("the limit is 10 MB")
        await expect(page.locator("#image-preview")).to_be_hidden()

        # Start: connecting, then live; the output is the camera in black and white.
        await page.click("#start")
        await expect(status).to_have_text("Live", timeout=WAIT_MS)
        camera = await wait_for_picture(page, "#camera-video", lambda p: p.chroma > 60)
        output = await wait_for_picture(page, "#output-video", lambda p: grey(p) and p.frames > 10)
        assert camera.chroma - output.chroma > 50
        assert (output.width, output.height) == (1280, 720)
        await expect(page.locator("#stat-resolution")).to_have_text(
            f"1280{TIMES}720", timeout=WAIT_MS
        )
        await expect(page.locator("#stat-fps")).to_have_text(re.compile(r"^\d+$"))
        # What the server measures, labelled as such: its added latency and its candidate type.
        await expect(page.locator("#stat-latency")).to_have_text(re.compile(r"^\d+ ms$"))
        await expect(page.locator("#stat-latency").locator("xpath=..")).to_contain_text(
            "server latency"
        )
        await expect(page.locator("#stat-path")).to_have_text("host")  # loopback, no TURN
        await expect(page.locator("#usage")).not_to_have_text("0", timeout=WAIT_MS)

        # A new prompt: sepia tones replace the grey.
        await page.fill("#prompt", "sepia")
        await page.click("#apply")
        await wait_for_picture(page, "#output-video", sepia)
        await expect(page.locator("#session-note")).to_contain_text("Prompt applied")
        await page.screenshot(path=os.environ.get(SCREENSHOT) or str(tmp_path / "page.png"))

        # A prompt the moderator rejects: its problem in words; the session and its look go on.
        await page.fill("#prompt", f"{BLOCKED} everywhere")
        await page.click("#apply")
        await expect(page.locator("#error")).to_contain_text("Input rejected by moderation")
        await expect(status).to_have_text("Live")
        await wait_for_picture(page, "#output-video", sepia)

        # A strong green reference image pulls the palette toward it.
        await page.fill("#prompt", "cinematic")
        await page.set_input_files("#image", files=[png("green.png", GREEN)])
        await expect(page.locator("#image-preview")).to_be_visible()
        await expect(page.locator("#session-note")).to_contain_text("Reference image applied")
        await wait_for_picture(page, "#output-video", green)
        await expect(page.locator("#error")).to_be_hidden()

        # End: DELETE, and the page shows the end, its reason in words, seconds and credits;
        # the last output frame stays in place.
        await page.click("#end")
        await expect(status).to_have_text("Ended", timeout=WAIT_MS)
        await expect(page.locator("#session-note")).to_have_text("Session ended: you ended it.")
        await expect(page.locator("#end-summary")).to_have_text(
            re.compile(
                r"^\d+(\.\d)? s of video generated · \d+(\.\d)? credits charged · "
                r"unlimited credits remaining$"
            )
        )
        await expect(page.locator("#start")).to_be_enabled()
        assert await measure(page, "#camera-video") is None
        last = await still_picture(page)
        assert last is not None and green(last)


async def test_page_fits_a_phone(browser: Browser) -> None:
    async with framewire() as server:
        page = await browser.new_page(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        await page.goto(server.url + "/")
        await enter_key(page, API_KEY)
        await page.fill("#prompt", "black and white")
        await page.click("#start")
        await expect(page.locator("#status")).to_have_text("Live", timeout=WAIT_MS)
        await wait_for_picture(page, "#output-video", lambda p: grey(p) and p.frames > 5)

        # One column, nothing wider than the screen: the output across it with the camera as a
        # picture-in-picture in its corner, the controls below.
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        camera = await page.locator("#camera-video").bounding_box()
        output = await page.locator("#output-video").bounding_box()
        prompt = await page.locator("#prompt").bounding_box()
        end = await page.locator("#end").bounding_box()
        assert camera and output and prompt and end
        assert output["width"] > 340 and camera["width"] < output["width"] / 2
        assert inside(camera, output)
        assert output["y"] + output["height"] < prompt["y"] < end["y"]
        for box in (output, prompt, end):
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        await wait_for_picture(page, "#camera-video", lambda p: p.chroma > 60)

        await page.locator("#end").tap()
        await expect(page.locator("#status")).to_have_text("Ended", timeout=WAIT_MS)


def drop_server_path(server: Running) -> str:
    """Lose the only session's network path on the server's side, as when a network goes away:
    its sockets stay open, packets just stop both ways. Returns the session id."""
    (session_id, live), *others = server.app.state.sessions.live.items()
    assert not others
    ice = live.leg._pc.getTransceivers()[0].receiver.transport.transport
    for protocol in ice._connection._protocols:
        protocol.datagram_received = lambda data, addr: None
        protocol.transport.sendto = lambda data, addr=None: None
    return str(session_id)


async def test_page_answers_an_ice_restart_and_media_resumes(browser: Browser) -> None:
    async with framewire(ice_disconnect_grace=1.0, ice_restart_timeout=10.0) as server:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.goto(server.url + "/")
        await enter_key(page, API_KEY)
        await page.fill("#prompt", "black and white")
        await page.click("#start")
        await expect(page.locator("#status")).to_have_text("Live", timeout=WAIT_MS)
        await wait_for_picture(page, "#output-video", lambda p: grey(p) and p.frames > 5)

        sent: list[Request] = []
        page.on("request", lambda request: sent.append(request))
        async with page.expect_request(
            lambda r: r.method == "PATCH" and r.headers.get("if-match") == "*", timeout=WAIT_MS
        ) as restarting:
            session_id = drop_server_path(server)
        restart = await restarting.value
        assert json.loads(restart.post_data or "{}")["sdp"]["type"] == "offer"
        response = await restart.response()
        assert response is not None and response.status == 200
        new_etag = await response.header_value("etag")
        assert new_etag is not None

        # Media flows again on the same session, and the prompt still steers it.
        before = await measure(page, "#output-video")
        assert before is not None
        await wait_for_picture(
            page, "#output-video", lambda p: p.frames > before.frames + 20, RESUME_TIMEOUT
        )
        # The new generation's candidates were trickled with the restart's new ETag.
        trickled = [r for r in sent[sent.index(restart) + 1 :] if r.method == "PATCH"]
        assert trickled and all(r.headers["if-match"] == new_etag for r in trickled)
        await page.fill("#prompt", "sepia")
        await page.click("#apply")
        await wait_for_picture(page, "#output-video", sepia)
        await expect(page.locator("#status")).to_have_text("Live")
        async with server.client() as http:
            state = (await http.get(f"/v1/realtime/sessions/{session_id}")).json()
        assert state["status"] == "active"

        await page.click("#end")
        await expect(page.locator("#status")).to_have_text("Ended", timeout=WAIT_MS)


async def test_page_reads_the_current_etag_after_a_412(browser: Browser) -> None:
    async with framewire() as server:
        page = await browser.new_page()
        sent: list[Request] = []
        page.on("request", lambda request: sent.append(request))
        stale: list[Request] = []

        async def lose_the_first_race(route: Route) -> None:
            """Answer the first trickle PATCH as if another ICE operation had won (a real
            race cannot be produced on demand); everything else reaches the server."""
            if route.request.method == "PATCH" and not stale:
                stale.append(route.request)
                problem = {
                    "type": "https://framewire.dev/errors/precondition-failed",
                    "title": "ETag does not match the ICE session",
                    "detail": "another ICE operation completed first",
                    "status": 412,
                }
                await route.fulfill(
                    status=412, content_type="application/problem+json", body=json.dumps(problem)
                )
            else:
                await route.continue_()

        await page.route(re.compile(r"/v1/realtime/sessions/rs_[^/]+$"), lose_the_first_race)
        await page.goto(server.url + "/")
        await enter_key(page, API_KEY)
        await page.fill("#prompt", "black and white")
        await page.click("#start")
        await expect(page.locator("#status")).to_have_text("Live", timeout=WAIT_MS)
        await wait_for_picture(page, "#output-video", lambda p: grey(p) and p.frames > 5)

        # After the 412: GET the session for its ETag, then the same candidates again with it.
        assert stale
        after = sent[sent.index(stale[0]) + 1 :]
        read = next(r for r in after if r.method == "GET" and r.url == stale[0].url)
        retry = next(r for r in after[after.index(read) :] if r.method == "PATCH")
        assert retry.post_data == stale[0].post_data
        current = await read.response()
        assert current is not None
        assert retry.headers["if-match"] == await current.header_value("etag")
        retried = await retry.response()
        assert retried is not None and retried.status == 204
        await expect(page.locator("#error")).to_be_hidden()
        await page.click("#end")
        await expect(page.locator("#status")).to_have_text("Ended", timeout=WAIT_MS)
