"""The leg API, driven by a real aiortc peer over loopback: offer/answer, trickle in both
directions, frames, stats, ownership, lifecycle, and every error code in its `{error,
instance_id}` shape."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import cv2
import httpx
import numpy as np
import pytest

from framewire.models.base import ModelSpec
from framewire.models.registry import ModelRegistry
from tests.legs import LEGS, OFFER, connect_leg, leg_error, wait_gone
from tests.peers import ClientPeer
from tests.servers import OTHER_KEY, Running, framewire
from tests.sessions import SESSIONS, open_session
from tests.test_session_flow import saturation


def instance(server: Running) -> str:
    return str(server.app.state.instance_id)


def square_free(image: np.ndarray) -> np.ndarray:
    """The rows of the test pattern the moving white square never crosses."""
    height = image.shape[0]
    return np.concatenate([image[: height * 2 // 5], image[height * 3 // 5 :]])


async def an_offer() -> str:
    peer = ClientPeer()
    sdp = await peer.offer()
    await peer.close()
    return sdp


async def test_a_passthrough_leg_connects_and_closes_through_the_leg_api_alone() -> None:
    async with framewire() as server, server.client() as http:
        peer = ClientPeer()
        offer = await peer.offer(trickle=True)
        created = await http.post(OFFER, json={"sdp": offer})
        assert created.status_code == 200, created.text
        body = created.json()
        assert body["status"] == "ok" and body["instance_id"] == instance(server)
        assert body["type"] == "answer" and body["leg_id"].startswith("leg_")
        leg_id = body["leg_id"]
        # Without STUN/TURN servers the host candidates are all there is: the answer is complete.
        assert "typ host" in body["sdp"] and "a=end-of-candidates" in body["sdp"]
        await peer.accept(body["sdp"])

        drained = await http.get(f"{LEGS}/{leg_id}/ice-candidates")
        assert drained.status_code == 200
        assert drained.json()["instance_id"] == instance(server)
        assert drained.json()["candidates"] == [] and drained.json()["done"] is True

        for candidate in peer.local_candidates:
            added = await http.post(
                f"{LEGS}/{leg_id}/ice-candidates",
                json=candidate if candidate is not None else {"candidate": None},
            )
            assert added.status_code == 200, added.text
            assert added.json() == {"status": "added", "instance_id": instance(server)}

        # Passthrough: the picture comes back as sent (scaled to the model's 640x480).
        frame = await peer.wait_frames(15)
        assert frame.shape == (480, 640, 3)
        sent = cv2.resize(peer.source_frame(), (640, 480), interpolation=cv2.INTER_AREA)
        error = np.abs(square_free(frame).astype(np.int16) - square_free(sent)).mean()
        assert error < 20, error

        state = await http.get(f"{LEGS}/{leg_id}")
        assert state.status_code == 200
        leg = state.json()
        assert leg["leg_id"] == leg_id and leg["model"] == "passthrough"
        assert leg["state"] == "connected" and leg["session_id"] is None
        assert leg["status"] == "ok" and leg["instance_id"] == instance(server)
        assert leg["created_at"].endswith("Z")
        assert leg["stats"]["frames_in"] > 0 and leg["stats"]["frames_out"] > 0

        listed = await http.get(LEGS)
        assert listed.json()["instance_id"] == instance(server)
        assert [x["leg_id"] for x in listed.json()["legs"]] == [leg_id]

        closed = await http.delete(f"{LEGS}/{leg_id}")
        assert closed.status_code == 200
        final = closed.json()
        assert final["status"] == "closed" and final["state"] == "closed"
        assert final["instance_id"] == instance(server)
        assert final["stats"]["frames_out"] >= leg["stats"]["frames_out"]

        leg_error(await http.get(f"{LEGS}/{leg_id}"), 404, instance(server))
        leg_error(await http.delete(f"{LEGS}/{leg_id}"), 404, instance(server))
        assert (await http.get(LEGS)).json()["legs"] == []
        # The client hears the close (DTLS close_notify) instead of waiting for a timeout.
        deadline = time.monotonic() + 10
        while peer.pc.connectionState != "closed":
            assert time.monotonic() < deadline, peer.pc.connectionState
            await asyncio.sleep(0.1)
        await peer.close()


async def test_a_leg_runs_the_model_and_prompt_it_was_given() -> None:
    async with framewire() as server, server.client() as http:
        peer = ClientPeer()
        # A browser ends its candidates with an empty string.
        body = await connect_leg(
            http, peer, end="", model="lucy_2_rt", prompt="black and white noir film"
        )
        frame = await peer.wait_frames(10)
        assert frame.shape == (720, 1280, 3)
        assert saturation(peer.source_frame()) > 150
        assert saturation(frame) < 15
        leg = (await http.get(f"{LEGS}/{body['leg_id']}")).json()
        assert leg["model"] == "lucy_2_rt" and leg["stats"]["frames_out"] > 0
        assert (await http.delete(f"{LEGS}/{body['leg_id']}")).status_code == 200
        await peer.close()


async def test_a_key_sees_only_its_own_legs() -> None:
    async with (
        framewire() as server,
        server.client() as http,
        server.client(OTHER_KEY) as other,
    ):
        created = await http.post(OFFER, json={"sdp": await an_offer()})
        leg_id = created.json()["leg_id"]
        assert (await other.get(LEGS)).json()["legs"] == []
        url = f"{LEGS}/{leg_id}"
        leg_error(await other.get(url), 404, instance(server))
        leg_error(await other.get(f"{url}/ice-candidates"), 404, instance(server))
        leg_error(
            await other.post(f"{url}/ice-candidates", json={"candidate": None}),
            404,
            instance(server),
        )
        leg_error(await other.delete(url), 404, instance(server))
        # Still there for its owner.
        assert (await http.get(url)).status_code == 200
        assert (await http.delete(url)).status_code == 200


async def test_a_sessions_leg_shows_in_the_leg_api_and_is_ended_through_the_session() -> None:
    async with (
        framewire() as server,
        server.client() as http,
        server.client(OTHER_KEY) as other,
    ):
        session = await open_session(server, http)
        await session.peer.wait_frames(5)
        state = (await http.get(session.url)).json()
        leg_id = state["leg_id"]
        assert leg_id.startswith("leg_") and state["instance_id"] == instance(server)

        listed = (await http.get(LEGS)).json()["legs"]
        assert [(x["leg_id"], x["session_id"]) for x in listed] == [(leg_id, session.id)]
        leg = (await http.get(f"{LEGS}/{leg_id}")).json()
        assert leg["session_id"] == session.id and leg["model"] == "passthrough"
        assert leg["stats"]["frames_out"] > 0
        assert (await other.get(LEGS)).json()["legs"] == []
        leg_error(await other.get(f"{LEGS}/{leg_id}"), 404, instance(server))

        refused = await http.delete(f"{LEGS}/{leg_id}")
        assert f"DELETE {SESSIONS}/{session.id}" in leg_error(refused, 409, instance(server))
        assert (await http.get(session.url)).json()["status"] == "active"

        assert (await http.delete(session.url)).json()["reason"] == "disconnect"
        await wait_gone(http, leg_id)
        await session.close()


async def test_a_bare_leg_closes_itself_when_its_peer_goes_away() -> None:
    async with framewire() as server, server.client() as http:
        peer = ClientPeer()
        body = await connect_leg(http, peer)
        await peer.wait_frames(5)
        await peer.close()
        await wait_gone(http, body["leg_id"])
        assert not server.app.state.legs.all()


async def test_a_bare_leg_that_never_connects_is_closed_after_the_ice_timeout() -> None:
    async with framewire(ice_connect_timeout=1.0) as server, server.client() as http:
        created = await http.post(OFFER, json={"sdp": await an_offer()})
        leg_id = created.json()["leg_id"]
        assert (await http.get(f"{LEGS}/{leg_id}")).json()["state"] in ("new", "connecting")
        await wait_gone(http, leg_id, timeout=10)


async def test_bare_legs_and_sessions_share_the_instance_capacity() -> None:
    async with framewire(max_sessions=1) as server, server.client() as http:
        first = await http.post(OFFER, json={"sdp": await an_offer()})
        assert first.status_code == 200
        full = await http.post(OFFER, json={"sdp": await an_offer()})
        assert "limit of 1" in leg_error(full, 503, instance(server))
        assert int(full.headers["retry-after"]) > 0
        session = await http.post(
            SESSIONS,
            json={"model": "passthrough", "sdp": {"type": "offer", "sdp": await an_offer()}},
        )
        assert session.status_code == 503 and session.headers["retry-after"]
        assert session.headers["content-type"].startswith("application/problem+json")

        assert (await http.delete(f"{LEGS}/{first.json()['leg_id']}")).status_code == 200
        again = await http.post(OFFER, json={"sdp": await an_offer()})
        assert again.status_code == 200, again.text


# errors ---------------------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[Running]:
    registry = ModelRegistry.default()
    registry.register(ModelSpec("gpu_only", 20, 320, 240, False, "not_installed_here"))
    async with framewire(registry=registry, blocked_terms=["forbiddenword"]) as running:
        yield running


@pytest.fixture
async def http(server: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as client:
        yield client


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "object"),
        (b"{}", "'sdp'"),
        (b'{"sdp": 5}', "'sdp'"),
        (b'{"sdp": {"type": "offer", "sdp": "v=0"}}', "'sdp'"),
        (b'{"sdp": "v=0", "model": 7}', "'model'"),
        (b'{"sdp": "v=0", "prompt": ["x"]}', "'prompt'"),
    ],
)
async def test_400_for_invalid_json_offers(
    server: Running, http: httpx.AsyncClient, content: bytes, why: str
) -> None:
    response = await http.post(OFFER, content=content, headers={"content-type": "application/json"})
    assert why in leg_error(response, 400, instance(server))
    assert server.app.state.legs.all() == []


@pytest.mark.parametrize(
    ("spoil", "why"),
    [
        (lambda sdp: "garbage", "v=0"),
        (lambda sdp: sdp.replace("m=video", "m=audio"), "video m-line"),
        (lambda sdp: sdp.replace("a=fingerprint:", "a=x-fingerprint:"), "fingerprint"),
        (
            lambda sdp: sdp.replace("VP8/90000", "AV1/90000").replace("H264/90000", "H265/90000"),
            "no codec in common",
        ),
    ],
)
async def test_400_for_invalid_sdp_offers(
    server: Running, http: httpx.AsyncClient, spoil: Callable[[str], str], why: str
) -> None:
    response = await http.post(OFFER, json={"sdp": spoil(await an_offer())})
    assert why in leg_error(response, 400, instance(server))
    answer_type = await http.post(OFFER, json={"sdp": await an_offer(), "type": "answer"})
    assert "offer" in leg_error(answer_type, 400, instance(server))
    assert server.app.state.legs.all() == []


async def test_400_for_invalid_candidates(server: Running, http: httpx.AsyncClient) -> None:
    leg_id = (await http.post(OFFER, json={"sdp": await an_offer()})).json()["leg_id"]
    url = f"{LEGS}/{leg_id}/ice-candidates"
    host = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"
    for body, why in [
        ({}, "'candidate' is required"),
        ({"candidate": "not a candidate", "sdpMid": "0"}, "unparseable"),
        ({"candidate": host}, "sdpMid"),
        ({"candidate": host, "sdpMLineIndex": -1}, "sdpMLineIndex"),
        ({"candidate": 42, "sdpMid": "0"}, "'candidate'"),
    ]:
        assert why in leg_error(await http.post(url, json=body), 400, instance(server))
    malformed = await http.post(url, content=b"{", headers={"content-type": "application/json"})
    assert "malformed JSON" in leg_error(malformed, 400, instance(server))
    assert (await http.post(url, json={"candidate": host, "sdpMid": "0"})).status_code == 200


async def test_404_for_unknown_legs_and_routes(server: Running, http: httpx.AsyncClient) -> None:
    url = f"{LEGS}/leg_missing"
    for response in [
        await http.get(url),
        await http.delete(url),
        await http.get(f"{url}/ice-candidates"),
        await http.post(f"{url}/ice-candidates", json={"candidate": None}),
        await http.get(f"{url}/no-such-thing"),
    ]:
        leg_error(response, 404, instance(server))


async def test_405_401_415_in_the_leg_error_shape(server: Running, http: httpx.AsyncClient) -> None:
    leg_error(await http.put(f"{LEGS}/leg_x", json={}), 405, instance(server))
    leg_error(await http.get(OFFER), 405, instance(server))
    async with server.client(None) as anonymous, server.client("wrong-key") as wrong:
        leg_error(await anonymous.get(LEGS), 401, instance(server))
        leg_error(await wrong.post(OFFER, json={"sdp": "v=0"}), 401, instance(server))
    text = await http.post(OFFER, content=b"v=0", headers={"content-type": "application/sdp"})
    leg_error(text, 415, instance(server))


async def test_422_for_unknown_models_and_rejected_prompts(
    server: Running, http: httpx.AsyncClient
) -> None:
    offer = await an_offer()
    unknown = await http.post(OFFER, json={"sdp": offer, "model": "nope"})
    assert "passthrough" in leg_error(unknown, 422, instance(server))
    rejected = await http.post(OFFER, json={"sdp": offer, "prompt": "a forbiddenword scene"})
    leg_error(rejected, 422, instance(server))
    empty = await http.post(OFFER, json={"sdp": offer, "prompt": "  "})
    leg_error(empty, 422, instance(server))
    assert server.app.state.legs.count() == 0


async def test_500_when_the_models_track_cannot_be_created(
    server: Running, http: httpx.AsyncClient
) -> None:
    """A model id whose backend plugin is not installed on this instance: the leg API's 500
    ("track creation failed"), and nothing is left behind."""
    response = await http.post(OFFER, json={"sdp": await an_offer(), "model": "gpu_only"})
    assert "not_installed_here" in leg_error(response, 500, instance(server))
    assert server.app.state.legs.count() == 0
    assert (await http.post(OFFER, json={"sdp": await an_offer()})).status_code == 200
