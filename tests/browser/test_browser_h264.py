"""Chromium preferring H.264 (setCodecPreferences) streams both ways in H.264: the server's
answer keeps the browser's preference, and the browser's own stats show H.264 sent and
received while the returned video plays."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Route

from tests.browser.pixels import wait_for_picture
from tests.servers import API_KEY, framewire
from tests.sessions import SESSIONS

PAGE = """<!doctype html>
<html><body><video id="out" autoplay muted playsinline></video>
<script type="module">
  const pc = new RTCPeerConnection();
  const stream = await navigator.mediaDevices.getUserMedia({ video: true });
  const transceiver = pc.addTransceiver(stream.getVideoTracks()[0], {
    direction: "sendrecv", streams: [stream],
  });
  const codecs = RTCRtpReceiver.getCapabilities("video").codecs;
  const h264 = codecs.filter((c) => c.mimeType === "video/H264");
  transceiver.setCodecPreferences([...h264, ...codecs.filter((c) => c.mimeType !== "video/H264")]);
  pc.ontrack = (event) => {
    document.getElementById("out").srcObject = new MediaStream([event.track]);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
  });
  const created = await fetch("/v1/realtime/sessions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      model: "passthrough", sdp: { type: "offer", sdp: pc.localDescription.sdp },
    }),
  });
  const session = await created.json();
  await pc.setRemoteDescription(session.sdp);
  window.pc = pc;
</script></body></html>"""

CODECS_IN_USE = """async () => {
  const stats = await window.pc.getStats();
  const used = [];
  stats.forEach((s) => {
    if ((s.type === "outbound-rtp" || s.type === "inbound-rtp") && s.kind === "video") {
      used.push([s.type, stats.get(s.codecId)?.mimeType, s.framesEncoded ?? s.framesDecoded]);
    }
  });
  return used;
}"""


def first_video_codec(sdp: str) -> str:
    lines = sdp.splitlines()
    mline = next(line for line in lines if line.startswith("m=video"))
    payload = mline.split()[3]
    rtpmap = next(line for line in lines if line.startswith(f"a=rtpmap:{payload} "))
    return rtpmap.split()[1].split("/")[0]


async def test_chromium_streams_in_h264_when_it_prefers_it(browser: Browser) -> None:
    async with framewire() as server:
        page = await browser.new_page()
        await page.set_extra_http_headers({"x-api-key": API_KEY})

        async def serve_page(route: Route) -> None:
            await route.fulfill(body=PAGE, content_type="text/html")

        await page.route(f"{server.url}/h264.html", serve_page)
        async with page.expect_response(f"{server.url}{SESSIONS}") as creating:
            await page.goto(f"{server.url}/h264.html")
        created = await creating.value
        assert created.status == 201, await created.text()
        body: dict[str, Any] = await created.json()
        assert first_video_codec(body["sdp"]["sdp"]) == "H264"

        await wait_for_picture(page, "#out", lambda p: p.frames > 20 and p.chroma > 40)
        used = await page.evaluate(CODECS_IN_USE)
        assert {kind for kind, _, _ in used} == {"outbound-rtp", "inbound-rtp"}, used
        assert all(mime == "video/H264" and frames > 0 for _, mime, frames in used), used
