"""The Python client against a real server: video in, transformed video out, and the signaling
paths a network makes necessary (a dropped event stream, a stale ETag, a full server)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import pytest

from framewire.client import (
    GenerationEnded,
    GenerationStarted,
    GenerationTick,
    IceCandidate,
    IceRestart,
    ProblemError,
    RealtimeClient,
)
from framewire.run import demo
from tests.client.relay import relay
from tests.client.support import drop_path, pattern_frames, read_video, wait_event
from tests.servers import API_KEY, framewire
from tests.test_session_flow import saturation

SESSIONS = "/v1/realtime/sessions"


async def test_a_video_file_comes_back_transformed_in_a_video_file(tmp_path: Path) -> None:
    clip = demo.write_clip(tmp_path / "in.mp4", seconds=2.0, width=640, height=360)
    output = tmp_path / "out.mp4"
    async with framewire() as server, RealtimeClient(server.url, API_KEY) as client:
        session = await client.connect(
            clip, model="lucy_2_rt", prompt="black and white", output=output
        )
        await asyncio.wait_for(session.source_ended(), 20)
        await session.drain()
        summary = await session.close()

    video = read_video(output)
    assert video.codec == "h264"
    assert video.sizes == {(1280, 720)}
    assert len(video.frames) == session.stats.frames_received >= 20
    assert session.stats.frames_sent == 40
    assert min(saturation(f) for f in read_video(clip).frames) > 60
    assert max(saturation(f) for f in video.frames) < 15
    # The file plays at the pace the frames came, not faster: 40 frames at 20 fps.
    assert 1.4 < video.seconds < 2.6
    assert summary.session_id == session.id and summary.model == "lucy_2_rt"
    assert summary.reason == "disconnect" and summary.seconds > 0
    assert summary.credits_charged == summary.seconds


async def test_a_prompt_change_mid_stream_shows_in_the_output(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    async with framewire() as server, RealtimeClient(server.url, API_KEY) as client:
        session = await client.connect(
            pattern_frames(), model="lucy_2_rt", prompt="black and white", output=output
        )
        frames = session.frames()
        before = [await asyncio.wait_for(anext(frames), 20) for _ in range(10)]
        changed = await session.set_prompt("vivid neon cyberpunk", enhance_prompt=False)
        assert changed["prompt"] == "vivid neon cyberpunk"
        received = session.stats.frames_received
        while session.stats.frames_received < received + 15:
            await asyncio.wait_for(anext(frames), 20)
        await session.close()

    assert max(saturation(f) for f in before) < 15
    video = read_video(output)
    colours = [saturation(f) for f in video.frames]
    assert len(colours) == session.stats.frames_received
    assert max(colours[:10]) < 15
    assert min(colours[-5:]) > 60
    # One switch from grey to colour, never back.
    first_colourful = next(i for i, c in enumerate(colours) if c > 60)
    assert min(colours[first_colourful:]) > 30


async def test_a_dropped_event_stream_resumes_without_losing_or_repeating_events() -> None:
    async with (
        framewire(tick_interval=0.5) as server,
        relay(server.url) as network,
        RealtimeClient(network.url, API_KEY) as client,
    ):
        session = await client.connect(pattern_frames(), model="passthrough")
        await wait_event(session, GenerationTick, count=2)
        seen_before_cut = session.history[-1].id
        assert network.cut_event_streams() == 1
        # Ticks keep coming while the stream is down (reconnect waits the server's retry: 1 s).
        await wait_event(session, GenerationTick, count=6)
        summary = await session.close()

    ids = [event.id for event in session.history]
    assert ids == list(range(1, len(ids) + 1))
    assert session.events_reconnects == 1
    assert len(network.event_requests) == 2
    assert "last-event-id" not in network.event_requests[0]
    resumed_after = int(network.event_requests[1]["last-event-id"])
    assert seen_before_cut is not None and resumed_after >= seen_before_cut
    assert resumed_after < len(ids) - 1  # events published during the gap were replayed
    kinds = [type(event) for event in session.history]
    assert kinds.count(GenerationStarted) == 1 and kinds.count(IceCandidate) == 1
    ended = session.history[-1]
    assert isinstance(ended, GenerationEnded)
    assert ended.reason == "disconnect" and ended.seconds == summary.seconds


async def test_a_stale_etag_is_refreshed_with_get_and_the_patch_retried() -> None:
    calls: list[tuple[str, str, int]] = []

    async def stale_etag_on_create(response: httpx.Response) -> None:
        path = urlsplit(str(response.request.url)).path
        calls.append((response.request.method, path, response.status_code))
        if response.request.method == "POST" and path == SESSIONS:
            # As if another ICE operation had completed between our create and our PATCH.
            response.headers["etag"] = '"ice-stale"'

    async with (
        framewire() as server,
        server.client() as http,
        httpx.AsyncClient(event_hooks={"response": [stale_etag_on_create]}) as hooked,
        RealtimeClient(server.url, API_KEY, http=hooked) as client,
    ):
        session = await client.connect(pattern_frames(), model="passthrough")
        await asyncio.wait_for(session.trickle.flushed(), 10)
        current = (await http.get(f"{SESSIONS}/{session.id}")).headers["etag"]
        assert session.trickle.error is None
        assert session.etag == current != '"ice-stale"'
        on_session = [(m, s) for m, p, s in calls if p == f"{SESSIONS}/{session.id}"]
        assert on_session == [("PATCH", 412), ("GET", 200), ("PATCH", 204)]
        frame = await asyncio.wait_for(anext(session.frames()), 20)
        assert frame.shape == (480, 640, 3)
        await session.close()


async def test_a_full_server_is_retried_after_its_retry_after() -> None:
    refusals: list[float] = []

    async def on_response(response: httpx.Response) -> None:
        if response.status_code == 503:
            refusals.append(time.monotonic())

    async with (
        framewire(max_sessions=1) as server,
        httpx.AsyncClient(event_hooks={"response": [on_response]}) as hooked,
    ):
        async with RealtimeClient(server.url, API_KEY, retry_budget=1.0) as impatient:
            async with RealtimeClient(server.url, API_KEY, http=hooked) as client:
                first = await client.connect(pattern_frames(), model="passthrough")
                began = time.monotonic()
                with pytest.raises(ProblemError) as refused:
                    await impatient.connect(pattern_frames(), model="passthrough")
                assert refused.value.status == 503
                # Retry-After 5 s exceeds its 1 s budget: it gave up instead of waiting 5 s.
                assert time.monotonic() - began < 5.0

                second = asyncio.get_running_loop().create_task(
                    client.connect(pattern_frames(), model="passthrough")
                )
                deadline = time.monotonic() + 20
                while not refusals:  # the patient client met the full server, and waits
                    assert time.monotonic() < deadline and not second.done()
                    await asyncio.sleep(0.05)
                await first.close()
                session = await asyncio.wait_for(second, 20)
                assert time.monotonic() - refusals[0] >= 5.0 - 0.1
                frame = await asyncio.wait_for(anext(session.frames()), 20)
                assert frame.shape == (480, 640, 3)
                await session.close()


async def test_an_ice_restart_request_is_answered_and_media_resumes() -> None:
    async with (
        framewire(ice_disconnect_grace=1.0, ice_restart_timeout=8.0) as server,
        RealtimeClient(server.url, API_KEY) as client,
    ):
        session = await client.connect(pattern_frames(), model="passthrough")
        frames = session.frames()
        await asyncio.wait_for(anext(frames), 20)
        first_etag = session.etag

        drop_path(session)
        restart = await wait_event(session, IceRestart, timeout=15)
        assert restart.ice_servers == []
        resumed_at = session.stats.frames_received
        while session.stats.frames_received < resumed_at + 20:
            await asyncio.wait_for(anext(frames), 20)

        state = await session.state()
        assert state["status"] == "active"
        assert session.etag == state["etag"] != first_etag
        summary = await session.close()
    assert summary.reason == "disconnect"
    ended = [e for e in session.history if isinstance(e, GenerationEnded)]
    assert [e.reason for e in ended] == ["disconnect"]


async def test_a_reference_image_set_mid_stream_steers_the_colours() -> None:
    red = np.zeros((64, 64, 3), np.uint8)
    red[:] = (30, 30, 200)
    red[::8] = (20, 20, 120)
    png = cv2.imencode(".png", red)[1].tobytes()
    async with framewire() as server, RealtimeClient(server.url, API_KEY) as client:
        session = await client.connect(pattern_frames(), model="lucy_2_rt")
        frames = session.frames()
        before = [await asyncio.wait_for(anext(frames), 20) for _ in range(5)][-1]
        answer = await session.set_image(png)
        assert answer["image"] == "accepted"
        received = session.stats.frames_received
        while session.stats.frames_received < received + 10:
            after = await asyncio.wait_for(anext(frames), 20)
        await session.close()

    blue, green, red_mean = before.reshape(-1, 3).mean(axis=0)
    assert max(blue, green, red_mean) < 1.3 * min(blue, green, red_mean)
    blue, green, red_mean = after.reshape(-1, 3).mean(axis=0)
    assert red_mean > 2 * max(blue, green)
