"""WHEP playback: viewers of a session receive its transformed video from one shared encoder;
a stalled viewer slows nobody; viewers end with the session and are counted in its summary."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from aiortc import RTCPeerConnection, RTCRtpSender

from framewire.models.base import ModelSpec
from framewire.models.registry import ModelRegistry
from framewire.rtc.signaling import parse_sdpfrag
from framewire.state.memory import MemoryState
from tests.restart_client import drop_path
from tests.servers import API_KEY, Running, framewire
from tests.sse import EventReader
from tests.test_session_flow import saturation
from tests.whip import SDP, Publisher, Viewer, connected

SDPFRAG = "application/trickle-ice-sdpfrag"


def small_models() -> ModelRegistry:
    registry = ModelRegistry.default()
    registry.register(ModelSpec("small_style", 20, 320, 240, False, "stylizer"))
    return registry


@contextlib.asynccontextmanager
async def published(
    server: Running, model: str = "passthrough", **params: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Publisher]]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=20) as http:
        publisher = Publisher()
        response = await publisher.publish(http, f"/v1/whip/{model}", **params)
        assert response.status_code == 201, response.text
        try:
            yield http, publisher
        finally:
            await publisher.close()


@contextlib.asynccontextmanager
async def viewers(
    http: httpx.AsyncClient, session_url: str, count: int
) -> AsyncIterator[list[Viewer]]:
    watching = [Viewer() for _ in range(count)]
    try:
        for viewer in watching:
            response = await viewer.watch(http, session_url)
            assert response.status_code == 201, response.text
        yield watching
    finally:
        await asyncio.gather(*(viewer.close() for viewer in watching))


async def session_state(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await http.get(url)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_a_whep_viewer_sees_the_whip_stream_transformed_and_follows_the_prompt() -> None:
    async with (
        framewire(registry=small_models()) as server,
        published(server, "small_style", prompt="black and white noir film") as (http, pub),
        viewers(http, pub.location, 1) as (viewer,),
    ):
        events = EventReader(server.client(None), pub.events_url()).start()
        await viewer.wait_frames(10)
        assert viewer.last is not None and viewer.last.shape == (240, 320, 3)
        assert saturation(viewer.last) < 15  # noir: the colour bars came back gray

        changed = await http.post(
            f"{pub.location}/prompt",
            json={"prompt": "vivid neon cyberpunk", "enhance_prompt": False},
        )
        assert changed.status_code == 200
        seen = len(viewer.stamps)
        await viewer.wait_frames(seen + 20)
        assert max(saturation(image) for image in viewer.recent) > 60

        # The session's event stream, found through the WHIP response's Link header.
        await events.wait_for("generation_started")
        await events.wait_for("generation_tick")
        await http.delete(pub.location)
        ended = await events.wait_for("generation_ended")
        assert ended.data["reason"] == "disconnect"
        await events.stop()


async def test_three_viewers_get_the_same_frames_from_one_encode() -> None:
    async with (
        framewire() as server,
        published(server) as (http, pub),
        viewers(http, pub.location, 3) as watching,
    ):
        await asyncio.gather(*(viewer.wait_frames(20) for viewer in watching))
        before = (await session_state(http, pub.location))["stats"]["frames_encoded"]
        counts = [len(viewer.stamps) for viewer in watching]
        await asyncio.gather(
            *(viewer.wait_frames(n + 40) for viewer, n in zip(watching, counts, strict=True))
        )
        state = await session_state(http, pub.location)
        encoded = state["stats"]["frames_encoded"] - before
        delivered = [len(viewer.stamps) - n for viewer, n in zip(watching, counts, strict=True)]
        # One encode per model frame, and the three viewers together got far more frames
        # than were encoded: an encoder per viewer would need at least sum(delivered).
        assert state["stats"]["frames_encoded"] <= state["stats"]["frames_out"]
        assert sum(delivered) > 2 * encoded
        assert len(state["viewers"]) == 3
        assert {v["state"] for v in state["viewers"]} == {"connected"}

        # The same frames: the stamps (publisher frame numbers) agree across viewers.
        windows = [set(viewer.stamps[-30:]) - {None} for viewer in watching]
        common = set.intersection(*windows)
        assert all(len(common) >= 0.8 * len(window) for window in windows), windows
        orders = [[s for s in viewer.stamps if s in common] for viewer in watching]
        assert orders[0] == orders[1] == orders[2]


async def test_a_stalled_viewer_does_not_lower_the_others_fps() -> None:
    async with (
        framewire() as server,
        published(server) as (http, pub),
        viewers(http, pub.location, 2) as watching,
    ):
        await asyncio.gather(*(viewer.wait_frames(20) for viewer in watching))
        start = time.monotonic()
        await asyncio.gather(*(viewer.wait_frames(len(viewer.stamps) + 40) for viewer in watching))
        before = [viewer.fps(start) for viewer in watching]

        async with viewers(http, pub.location, 1) as (stalled,):
            await connected(stalled.pc)
            await stalled.wait_frames(5)
            drop_path(stalled.pc)  # connected, then nothing gets through either way
            never = Viewer()  # and one that never takes its answer: its sender never starts
            assert (await never.watch(http, pub.location, answer=False)).status_code == 201
            middle = time.monotonic()
            await asyncio.gather(
                *(viewer.wait_frames(len(viewer.stamps) + 40) for viewer in watching)
            )
            after = [viewer.fps(middle) for viewer in watching]
            received = len(stalled.stamps)
            await never.close()
        assert received < 5 + 40  # the stalled viewer really got nothing meanwhile
        for old, new in zip(before, after, strict=True):
            assert new >= 0.75 * old, (before, after)


async def test_session_end_closes_its_viewers_and_counts_viewer_seconds() -> None:
    async with (
        framewire() as server,
        published(server) as (http, pub),
        viewers(http, pub.location, 2) as watching,
    ):
        await asyncio.gather(*(viewer.wait_frames(10) for viewer in watching))
        summary = (await http.delete(pub.location)).json()
        assert summary["reason"] == "disconnect"
        for viewer in watching:
            await asyncio.wait_for(viewer.ended.wait(), 20)
        assert summary["viewer_seconds"] > 0
        assert summary["viewer_seconds"] <= 2 * (summary["seconds"] + 5)
        gone = await Viewer().watch(http, pub.location)
        assert gone.status_code == 410
        viewer_patch = await http.patch(
            watching[0].location,
            content="a=ice-ufrag:x\r\n",
            headers={"Content-Type": SDPFRAG, "If-Match": "*"},
        )
        assert viewer_patch.status_code == 410
        assert (await session_state(http, pub.location))["viewers"] == []


async def test_a_viewer_resource_takes_patch_and_delete() -> None:
    async with (
        framewire() as server,
        published(server) as (http, pub),
        viewers(http, pub.location, 1) as (viewer,),
    ):
        assert viewer.location.startswith(f"{pub.location}/viewers/vw_")
        trickle = "a=ice-ufrag:zz\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
        missing = await http.patch(
            viewer.location, content=trickle, headers={"Content-Type": SDPFRAG}
        )
        assert missing.status_code == 428
        stale = await http.patch(
            viewer.location, content=trickle, headers={"Content-Type": SDPFRAG, "If-Match": '"x"'}
        )
        assert stale.status_code == 412
        wrong_type = await http.patch(
            viewer.location, json={"candidates": []}, headers={"If-Match": viewer.etag}
        )
        assert wrong_type.status_code == 415
        await viewer.wait_frames(5)
        deleted = await http.delete(viewer.location)
        assert deleted.status_code == 200
        await asyncio.wait_for(viewer.ended.wait(), 20)
        assert (await http.delete(viewer.location)).status_code == 404
        state = await session_state(http, pub.location)
        assert state["viewers"] == [] and state["status"] == "active"
        options = await http.options(f"{pub.location}/whep")
        assert options.status_code == 204 and options.headers["accept-post"] == SDP


async def test_any_instance_adds_and_removes_a_viewer_for_the_owner() -> None:
    shared = MemoryState()
    async with (
        framewire(state=shared) as owner,
        framewire(state=shared) as other,
        published(owner) as (_, pub),
        other.client() as other_http,
        viewers(other_http, pub.location, 1) as (viewer,),
    ):
        await viewer.wait_frames(10)
        assert viewer.location.startswith(f"{pub.location}/viewers/")
        listed = (await session_state(other_http, pub.location))["viewers"]
        assert [v["viewer_id"] for v in listed] == [viewer.location.rsplit("/", 1)[1]]
        deleted = await other_http.delete(viewer.location)
        assert deleted.status_code == 200
        await asyncio.wait_for(viewer.ended.wait(), 20)
        async with owner.client() as owner_http:
            assert (await session_state(owner_http, pub.location))["viewers"] == []


async def test_a_viewer_restarts_ice_with_new_credentials() -> None:
    async with (
        framewire() as server,
        published(server) as (http, pub),
        viewers(http, pub.location, 1) as (viewer,),
    ):
        await connected(viewer.pc)
        ufrag, pwd = secrets.token_hex(4), secrets.token_hex(12)
        fragment = (
            f"a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
        )
        answered = await http.patch(
            viewer.location, content=fragment, headers={"Content-Type": SDPFRAG, "If-Match": "*"}
        )
        assert answered.status_code == 200, answered.text
        assert answered.headers["content-type"].startswith(SDPFRAG)
        assert answered.headers["etag"] != viewer.etag
        server_ufrag, server_pwd, candidates = parse_sdpfrag(answered.text)
        assert server_ufrag and server_pwd and server_ufrag not in viewer.pc.remoteDescription.sdp
        assert any(c is not None and " typ host" in c["candidate"] for c in candidates)
        trickle = f"a=ice-ufrag:{ufrag}\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
        old = await http.patch(
            viewer.location,
            content=trickle,
            headers={"Content-Type": SDPFRAG, "If-Match": viewer.etag},
        )
        assert old.status_code == 412  # the ETag before the restart is stale
        same = await http.patch(
            viewer.location,
            content=trickle,
            headers={"Content-Type": SDPFRAG, "If-Match": answered.headers["etag"]},
        )
        assert same.status_code == 204


async def test_viewers_beyond_the_limit_get_429_and_codecs_must_match() -> None:
    async with (
        framewire(max_viewers=1) as server,
        published(server) as (http, pub),
        viewers(http, pub.location, 1),
    ):
        extra = Viewer()
        try:
            refused = await extra.watch(http, pub.location)
            assert refused.status_code == 429
            assert refused.headers["retry-after"]
            assert refused.json()["type"].endswith("/too-many-viewers")
        finally:
            await extra.close()


async def test_an_h264_session_feeds_h264_viewers_and_refuses_vp8_only_ones() -> None:
    async with framewire() as server:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=20) as http:
            publisher = Publisher()
            only(publisher.pc, "video/H264")
            response = await publisher.publish(http)
            assert response.status_code == 201 and "H264/90000" in response.text
            vp8_only, viewer = Viewer(), Viewer()
            only(vp8_only.pc, "video/VP8")
            try:
                refused = await vp8_only.watch(http, publisher.location)
                assert refused.status_code == 422
                assert refused.json()["type"].endswith("/no-usable-codec")
                watched = await viewer.watch(http, publisher.location)
                assert watched.status_code == 201
                assert "H264/90000" in watched.text and "VP8/90000" not in watched.text
                await viewer.wait_frames(10)
                assert viewer.stamps[-1] is not None
            finally:
                await asyncio.gather(vp8_only.close(), viewer.close(), publisher.close())


def only(pc: RTCPeerConnection, mime_type: str) -> None:
    """Offer `mime_type` alone (with its RTX) on `pc`'s video transceiver."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    wanted = [c for c in codecs if c.mimeType in (mime_type, "video/rtx")]
    pc.getTransceivers()[0].setCodecPreferences(wanted)
