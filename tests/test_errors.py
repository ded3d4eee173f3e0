"""Every error row of seed 000's table, provoked: each answers RFC 7807 problem+json."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.peers import ClientPeer
from tests.servers import OTHER_KEY, Running, framewire

SESSIONS = "/v1/realtime/sessions"


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= {"type", "title", "detail", "status"}
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in response.text
    if slug is not None:
        assert body["type"].endswith("/" + slug), body["type"]
    return body


def png(colour: tuple[int, int, int] = (0, 0, 255), size: int = 64) -> str:
    image = np.full((size, size, 3), colour, np.uint8)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


async def an_offer() -> str:
    peer = ClientPeer()
    sdp = await peer.offer()
    await peer.close()
    return sdp


@pytest.fixture
async def server() -> AsyncIterator[Running]:
    async with framewire(blocked_terms=["forbiddenword"]) as running:
        yield running


@pytest.fixture
async def http(server: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as client:
        yield client


async def create(http: httpx.AsyncClient, **extra: Any) -> httpx.Response:
    body = {"model": "passthrough", "sdp": {"type": "offer", "sdp": await an_offer()}}
    body.update(extra)
    return await http.post(SESSIONS, json=body)


async def test_401_without_or_with_a_wrong_api_key(server: Running) -> None:
    async with server.client(None) as anonymous, server.client("not-a-key") as wrong:
        assert_problem(await anonymous.post(SESSIONS, json={}), 401, "unauthorized")
        assert_problem(await wrong.get(f"{SESSIONS}/rs_x"), 401, "unauthorized")
        assert_problem(await wrong.delete(f"{SESSIONS}/rs_x"), 401)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "malformed"),
        (b"[1, 2]", "object"),
        (b'{"model": "passthrough"}', "sdp"),
        (b'{"sdp": {"type": "offer", "sdp": "v=0"}}', "model"),
        (b'{"model": 5, "sdp": {"type": "offer", "sdp": "v=0"}}', "model"),
        (b'{"model": "passthrough", "sdp": {"type": "answer", "sdp": "v=0"}}', "offer"),
        (b'{"model": "passthrough", "sdp": {"type": "offer", "sdp": "garbage"}}', "v=0"),
        (b'{"model": "passthrough", "sdp": "v=0"}', "sdp"),
    ],
)
async def test_400_for_malformed_create_bodies(
    http: httpx.AsyncClient, content: bytes, why: str
) -> None:
    response = await http.post(
        SESSIONS, content=content, headers={"content-type": "application/json"}
    )
    assert why in assert_problem(response, 400)["detail"]


@pytest.mark.parametrize(
    ("drop", "detail"),
    [
        ("a=ice-ufrag:", "ice-ufrag"),
        ("a=ice-pwd:", "ice-pwd"),
        ("a=fingerprint:", "fingerprint"),
        ("m=video", "video m-line"),
    ],
)
async def test_400_for_offers_missing_what_webrtc_needs(
    http: httpx.AsyncClient, drop: str, detail: str
) -> None:
    offer = await an_offer()
    if drop == "m=video":
        offer = offer.replace("m=video", "m=audio")
    else:
        offer = "\r\n".join(line for line in offer.split("\r\n") if not line.startswith(drop))
    response = await http.post(
        SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
    )
    assert detail in assert_problem(response, 400, "invalid-sdp")["detail"]


async def test_404_for_unknown_sessions_routes_and_other_keys_sessions(
    server: Running, http: httpx.AsyncClient
) -> None:
    assert_problem(await http.get(f"{SESSIONS}/rs_missing"), 404, "not-found")
    assert_problem(await http.delete(f"{SESSIONS}/rs_missing"), 404)
    assert_problem(await http.post(f"{SESSIONS}/rs_missing/prompt", json={"prompt": "x"}), 404)
    assert_problem(
        await http.patch(
            f"{SESSIONS}/rs_missing", json={"candidates": []}, headers={"If-Match": "*"}
        ),
        404,
    )
    assert_problem(await http.get("/v1/no/such/route"), 404)
    assert_problem(await http.put(SESSIONS), 405)
    created = await create(http)
    session_id = created.json()["session_id"]
    async with server.client(OTHER_KEY) as other:
        assert_problem(await other.get(f"{SESSIONS}/{session_id}"), 404)
        assert_problem(await other.delete(f"{SESSIONS}/{session_id}"), 404)
    assert (await http.get(f"{SESSIONS}/{session_id}")).status_code == 200


async def test_410_for_control_after_the_end(http: httpx.AsyncClient) -> None:
    created = await create(http)
    session_id, etag = created.json()["session_id"], created.headers["etag"]
    assert (await http.delete(f"{SESSIONS}/{session_id}")).status_code == 200
    assert_problem(
        await http.post(f"{SESSIONS}/{session_id}/prompt", json={"prompt": "sepia"}),
        410,
        "session-ended",
    )
    assert_problem(
        await http.post(f"{SESSIONS}/{session_id}/image", json={"image_data": png()}), 410
    )
    assert_problem(
        await http.patch(
            f"{SESSIONS}/{session_id}", json={"candidates": [None]}, headers={"If-Match": etag}
        ),
        410,
    )


async def test_412_428_and_trickle_shape_errors(http: httpx.AsyncClient) -> None:
    created = await create(http)
    url = f"{SESSIONS}/{created.json()['session_id']}"
    etag = created.headers["etag"]
    assert_problem(await http.patch(url, json={"candidates": [None]}), 428)
    stale = await http.patch(url, json={"candidates": [None]}, headers={"If-Match": '"ice-old"'})
    assert_problem(stale, 412, "precondition-failed")
    current = await http.get(url)
    assert current.headers["etag"] == etag
    for bad in (
        {"candidates": "nope"},
        {"candidates": [{"candidate": 7, "sdpMid": "0"}]},
        {"candidates": [{"candidate": "candidate:1 1 UDP 1 127.0.0.1 9 typ host"}]},
        {"candidates": [{"candidate": "candidate:garbage", "sdpMid": "0"}]},
        {"nothing": True},
    ):
        assert_problem(await http.patch(url, json=bad, headers={"If-Match": etag}), 400)
    ok = await http.patch(url, json={"candidates": [None]}, headers={"If-Match": etag})
    assert ok.status_code == 204 and ok.headers["etag"] == etag


async def test_413_for_oversized_images_and_bodies(http: httpx.AsyncClient) -> None:
    created = await create(http)
    url = f"{SESSIONS}/{created.json()['session_id']}"
    huge = "A" * (10 * 1024 * 1024 + 4)
    assert_problem(await http.post(f"{url}/image", json={"image_data": huge}), 413)
    assert_problem(await create(http, image_data=huge), 413, "content-too-large")
    assert_problem(
        await http.post(f"{url}/prompt", content=b"{" + b" " * (2 * 1024 * 1024) + b"}"), 413
    )


async def test_415_for_wrong_content_types(http: httpx.AsyncClient) -> None:
    response = await http.post(
        SESSIONS, content=b"model=x", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_422_for_semantically_invalid_requests(http: httpx.AsyncClient) -> None:
    body = assert_problem(await create(http, model="no_such_model"), 422, "unsupported-model")
    assert "lucy_2_rt" in body["detail"]
    assert_problem(await create(http, prompt="a forbiddenword scene"), 422, "moderation-rejected")
    too_long = assert_problem(await create(http, prompt="x" * 1001), 422, "invalid-request")
    assert too_long["title"] == "Invalid value in the request"  # plain words, no jargon
    assert too_long["detail"] == "'prompt' exceeds 1000 characters"
    assert_problem(
        await create(http, model="lucy_2_rt", image_data=base64.b64encode(b"GIF89a...").decode()),
        422,
        "invalid-image",
    )
    created = await create(http, model="lucy_2_rt")
    url = f"{SESSIONS}/{created.json()['session_id']}"
    assert_problem(
        await http.post(f"{url}/prompt", json={"prompt": "forbiddenword"}),
        422,
        "moderation-rejected",
    )
    assert_problem(await http.post(f"{url}/prompt", json={"prompt": "   "}), 422)
    # Rejected content changed nothing.
    assert (await http.get(url)).json()["prompt"] is None
    ok = await http.post(f"{url}/image", json={"image_data": "data:image/png;base64," + png()})
    assert ok.status_code == 200
    no_image = await create(http, model="mirage")
    mirage = f"{SESSIONS}/{no_image.json()['session_id']}"
    assert_problem(await http.post(f"{mirage}/image", json={"image_data": png()}), 422)


async def test_503_with_retry_after_at_capacity() -> None:
    async with framewire(max_sessions=1) as server, server.client() as http:
        assert (await create(http)).status_code == 201
        full = await create(http)
        assert_problem(full, 503, "service-unavailable")
        assert int(full.headers["retry-after"]) > 0


async def test_402_without_credit_and_429_over_the_key_limit() -> None:
    async with framewire(api_keys={"broke": 0.0, "busy": None}, key_concurrency=1) as server:
        async with server.client("broke") as broke:
            assert_problem(await create(broke), 402, "insufficient-credits")
        async with server.client("busy") as busy:
            assert (await create(busy)).status_code == 201
            limited = await create(busy)
            assert_problem(limited, 429, "too-many-sessions")
            assert int(limited.headers["retry-after"]) > 0


async def test_sse_needs_a_valid_token_for_that_session(
    server: Running, http: httpx.AsyncClient
) -> None:
    first = (await create(http)).json()
    second = (await create(http)).json()
    async with server.client(None) as browser:
        url = first["events"]["url"]
        assert_problem(await browser.get(url), 401)
        assert_problem(await browser.get(url, params={"event_token": "evt_forged.sig"}), 401)
        wrong = second["events"]["event_token"]
        assert_problem(await browser.get(url, params={"event_token": wrong}), 401)
        assert_problem(
            await browser.get(
                url,
                params={"event_token": first["events"]["event_token"]},
                headers={"Last-Event-ID": "abc"},
            ),
            400,
        )


async def test_concurrent_creates_never_overrun_the_instance_capacity() -> None:
    async with framewire(max_sessions=2) as server, server.client() as http:
        answers = await asyncio.gather(*(create(http) for _ in range(5)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201, 201, 503, 503, 503]
        assert len(server.app.state.legs.all()) == 2


async def test_a_non_ascii_digit_in_last_event_id_is_a_400(
    server: Running, http: httpx.AsyncClient
) -> None:
    body = (await create(http)).json()
    async with server.client(None) as browser:
        response = await browser.get(
            body["events"]["url"],
            params={"event_token": body["events"]["event_token"]},
            headers={"Last-Event-ID": "²".encode("latin-1")},
        )
        assert_problem(response, 400)
