"""Codecs: an H.264-only and a VP8-only client both stream at 720p; the answer orders the codecs
the client offered by FRAMEWIRE_VIDEO_CODECS (H.264 first by default, the cheaper to encode)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from aiortc import RTCRtpSender

from framewire.models.base import ModelSpec
from framewire.models.passthrough import Passthrough
from framewire.models.registry import ModelRegistry
from tests.peers import ClientPeer
from tests.servers import framewire
from tests.sessions import SESSIONS
from tests.stamped import stamp_of, stamped_pattern, stamped_peer

STREAM_TIMEOUT = 60.0
HD = ModelSpec("hd", fps=20, width=1280, height=720, accepts_image=False, backend="x")


def hd_registry() -> ModelRegistry:
    registry = ModelRegistry()
    registry.register(HD, Passthrough)
    return registry


def offer_only(peer: ClientPeer, mime_type: str) -> None:
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    peer.pc.getTransceivers()[0].setCodecPreferences(
        [c for c in capabilities if c.mimeType == mime_type]
    )


def video_codecs(sdp: str) -> list[str]:
    """The video m-line's codec names, in the order the SDP lists them (RTX left out)."""
    lines = sdp.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("m=video"))
    payloads = lines[start].split()[3:]
    names = {}
    for line in lines[start:]:
        if line.startswith("a=rtpmap:"):
            payload, name = line[len("a=rtpmap:") :].split(" ", 1)
            names[payload] = name.split("/")[0]
    return [names[p] for p in payloads if names.get(p) != "rtx"]


@pytest.mark.parametrize("codec", ["video/H264", "video/VP8"])
async def test_a_single_codec_offer_streams_end_to_end_at_720p(codec: str) -> None:
    async with framewire(registry=hd_registry()) as server, server.client() as http:
        peer = stamped_peer(fps=20, width=1280, height=720)
        offer_only(peer, codec)
        created = await http.post(
            SESSIONS, json={"model": "hd", "sdp": {"type": "offer", "sdp": await peer.offer()}}
        )
        assert created.status_code == 201, created.text
        assert set(video_codecs(created.json()["sdp"]["sdp"])) == {codec.split("/")[1]}
        await peer.accept(created.json()["sdp"]["sdp"])
        await peer.wait_frames(1, timeout=30)
        # 20 distinct stamped frames back, 10 of them exactly the picture sent with that stamp
        # (a loaded machine may lose a packet: the decoder then shows damage, even old stamps,
        # until the keyframe it asks for).
        seen: set[int] = set()
        matched = 0
        deadline = time.monotonic() + STREAM_TIMEOUT
        while len(seen) < 20:
            assert time.monotonic() < deadline, f"only {len(seen)} stamped frames back"
            await peer.wait_frames(10, timeout=30)
            frames = list(peer.frames)[-10:]
            assert all(frame.shape == (720, 1280, 3) for frame in frames)
            numbers = [(n, f) for f in frames if (n := stamp_of(f)) is not None]
            seen.update(n for n, _ in numbers)
            matched += sum(
                np.abs(f.astype(int) - stamped_pattern(1280, 720, n)).mean() < 10
                for n, f in numbers
            )
        assert matched >= 10
        await peer.close()


async def test_the_answer_orders_offered_codecs_by_the_configured_preference() -> None:
    async with framewire() as server, server.client() as http:
        peer = ClientPeer()  # aiortc offers VP8 first, then H.264
        offer = await peer.offer()
        assert video_codecs(offer)[0] == "VP8"
        created = await http.post(
            SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
        )
        assert created.status_code == 201, created.text
        assert video_codecs(created.json()["sdp"]["sdp"])[0] == "H264"
        await http.delete(f"{SESSIONS}/{created.json()['session_id']}")
        await peer.close()

    async with framewire(video_codecs="vp8") as server, server.client() as http:
        peer = ClientPeer()
        offer = await peer.offer()
        created = await http.post(
            SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
        )
        assert created.status_code == 201, created.text
        assert set(video_codecs(created.json()["sdp"]["sdp"])) == {"VP8"}
        await http.delete(f"{SESSIONS}/{created.json()['session_id']}")
        await peer.close()


async def test_an_offer_without_a_configured_codec_is_refused_naming_the_setting() -> None:
    async with framewire(video_codecs="h264") as server, server.client() as http:
        peer = ClientPeer()
        offer_only(peer, "video/VP8")
        created = await http.post(
            SESSIONS,
            json={"model": "passthrough", "sdp": {"type": "offer", "sdp": await peer.offer()}},
        )
        assert created.status_code == 400, created.text
        assert created.headers["content-type"].startswith("application/problem+json")
        assert "FRAMEWIRE_VIDEO_CODECS" in created.json()["detail"]
        await peer.close()
