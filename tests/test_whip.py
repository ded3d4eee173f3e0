"""WHIP ingest (RFC 9725): POST an SDP offer, get a realtime session as its resource; trickle,
restart and delete it with RFC 9725's status rules; Bearer auth on every control route."""

from __future__ import annotations

import asyncio
import re
import secrets

import httpx

from framewire.rtc.signaling import parse_sdpfrag
from tests.servers import API_KEY, Running, framewire
from tests.whip import SDP, Publisher, local_offer

SDPFRAG = "application/trickle-ice-sdpfrag"
STUN = "stun:127.0.0.1:3478"
TURN = "turn:127.0.0.1:3479?transport=udp"


def bearer(server: Running, key: str = API_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=20
    )


def links(response: httpx.Response) -> list[str]:
    return response.headers.get_list("link")


async def test_options_advertises_sdp_posts() -> None:
    async with framewire() as server, bearer(server) as http:
        response = await http.options("/v1/whip/passthrough")
        assert response.status_code == 204
        assert response.headers["accept-post"] == SDP


async def test_publish_answers_201_with_the_session_as_resource() -> None:
    async with (
        framewire(
            ice_servers=[{"urls": [STUN]}], turn_urls=[TURN], turn_secret="turn-secret"
        ) as server,
        bearer(server) as http,
    ):
        publisher = Publisher()
        response = await publisher.publish(http, prompt="oil painting", enhance_prompt="false")
        try:
            assert response.status_code == 201, response.text
            assert response.headers["content-type"].startswith(SDP)
            assert response.text.startswith("v=0") and "a=recvonly" in response.text
            session_id = response.headers["location"].rsplit("/", 1)[1]
            assert response.headers["location"] == f"/v1/realtime/sessions/{session_id}"
            assert re.fullmatch(r'"ice-[0-9a-f]+"', response.headers["etag"])
            found = links(response)
            assert f'<{STUN}>; rel="ice-server"' in found
            turn = next(link for link in found if link.startswith(f"<{TURN}>"))
            assert 'rel="ice-server"' in turn and 'credential-type="password"' in turn
            assert re.search(r'username="\d+:' + session_id + '"', turn)
            assert re.search(r'credential="[A-Za-z0-9+/=]+"', turn)
            events = next(link for link in found if "/events?event_token=" in link)
            assert events.startswith(f"</v1/realtime/sessions/{session_id}/events?")

            # An ordinary session: readable through the JSON API, with the query's prompt.
            state = (await http.get(publisher.location)).json()
            assert state["status"] == "active" and state["model"] == "passthrough"
            assert state["prompt"] == state["enhanced_prompt"] == "oil painting"
            assert state["etag"] == publisher.etag
        finally:
            await publisher.close()


async def test_patch_trickles_204_restarts_200_and_enforces_if_match() -> None:
    async with framewire() as server, bearer(server) as http:
        publisher = Publisher()
        await publisher.publish(http)
        try:
            ufrag, _, _ = parse_sdpfrag(publisher.pc.localDescription.sdp)
            trickle = (
                f"a=ice-ufrag:{ufrag}\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
                "a=candidate:1 1 UDP 2130706431 127.0.0.1 9 typ host\r\n"
            )
            url = publisher.location
            missing = await http.patch(url, content=trickle, headers={"Content-Type": SDPFRAG})
            assert missing.status_code == 428
            assert missing.headers["content-type"] == "application/problem+json"
            stale = await http.patch(
                url, content=trickle, headers={"Content-Type": SDPFRAG, "If-Match": '"ice-0"'}
            )
            assert stale.status_code == 412
            ok = await http.patch(
                url,
                content=trickle,
                headers={"Content-Type": SDPFRAG, "If-Match": publisher.etag},
            )
            assert ok.status_code == 204 and ok.headers["etag"] == publisher.etag

            await publisher.wait_connected()
            new_ufrag, new_pwd = secrets.token_hex(4), secrets.token_hex(12)
            restart = (
                f"a=ice-ufrag:{new_ufrag}\r\na=ice-pwd:{new_pwd}\r\n"
                "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
            )
            answered = await http.patch(
                url, content=restart, headers={"Content-Type": SDPFRAG, "If-Match": "*"}
            )
            assert answered.status_code == 200, answered.text
            assert answered.headers["content-type"].startswith(SDPFRAG)
            assert answered.headers["etag"] != publisher.etag
            server_ufrag, server_pwd, _ = parse_sdpfrag(answered.text)
            assert server_ufrag and server_pwd
            assert server_ufrag not in publisher.pc.remoteDescription.sdp
        finally:
            await publisher.close()


async def test_delete_ends_the_session_with_disconnect() -> None:
    async with framewire() as server, bearer(server) as http:
        publisher = Publisher()
        await publisher.publish(http)
        try:
            response = await http.delete(publisher.location)
            assert response.status_code == 200
            assert response.json()["reason"] == "disconnect"
            assert response.json()["status"] == "ended"
            gone = await http.patch(
                publisher.location,
                content="a=ice-ufrag:x\r\n",
                headers={"Content-Type": SDPFRAG, "If-Match": "*"},
            )
            assert gone.status_code == 410
        finally:
            await publisher.close()


async def test_bad_publishes_are_problems() -> None:
    async with framewire() as server, bearer(server) as http:
        publisher = Publisher()
        offer = await _offer(publisher)
        try:
            path = "/v1/whip/passthrough"
            json_body = await http.post(path, json={"sdp": offer})
            assert json_body.status_code == 415
            garbage = await http.post(path, content="hello", headers={"Content-Type": SDP})
            assert garbage.status_code == 400
            av1 = re.sub(r"a=rtpmap:(\d+) (VP8|H264)/", r"a=rtpmap:\1 AV1/", offer)
            no_codec = await http.post(path, content=av1, headers={"Content-Type": SDP})
            assert no_codec.status_code == 422
            assert no_codec.json()["type"].endswith("/no-usable-codec")
            unknown = await http.post(
                "/v1/whip/no_such_model", content=offer, headers={"Content-Type": SDP}
            )
            assert unknown.status_code == 422
            long_prompt = await http.post(
                path, content=offer, headers={"Content-Type": SDP}, params={"prompt": "x" * 1001}
            )
            assert long_prompt.status_code == 422  # as in the JSON API
            put = await http.put(path, content=offer, headers={"Content-Type": SDP})
            assert put.status_code == 405
            assert put.headers["content-type"] == "application/problem+json"
            for problem in (json_body, garbage, no_codec, unknown):
                assert problem.headers["content-type"] == "application/problem+json"
            async with bearer(server, "not-a-key") as stranger:
                denied = await stranger.post(path, content=offer, headers={"Content-Type": SDP})
                assert denied.status_code == 401
        finally:
            await publisher.close()


async def _offer(publisher: Publisher) -> str:
    return await local_offer(publisher.pc)


async def test_every_control_route_takes_a_bearer_key() -> None:
    async with framewire() as server, bearer(server) as http:
        publisher = Publisher()
        await publisher.publish(http)
        try:
            url = publisher.location
            assert (await http.get(url)).status_code == 200
            prompt = await http.post(f"{url}/prompt", json={"prompt": "watercolor"})
            assert prompt.status_code == 200
            async with server.client() as by_header:  # x-api-key still works
                assert (await by_header.get(url)).json()["prompt"] == "watercolor"
            async with bearer(server, "wrong") as stranger:
                assert (await stranger.get(url)).status_code == 401
        finally:
            await publisher.close()


async def test_cors_exposes_the_whip_headers() -> None:
    async with framewire() as server, bearer(server) as http:
        publisher = Publisher()
        offer = await _offer(publisher)
        try:
            response = await http.post(
                "/v1/whip/passthrough",
                content=offer,
                headers={"Content-Type": SDP, "Origin": "https://player.example"},
            )
            assert response.status_code == 201
            exposed = response.headers["access-control-expose-headers"].lower().split(",")
            assert {"location", "etag", "link"} <= {h.strip() for h in exposed}
        finally:
            await publisher.close()


async def test_whip_follows_the_session_apis_credit_and_capacity_rules() -> None:
    async with framewire(api_keys={"broke": 0.0, API_KEY: None}) as server:
        async with bearer(server, "broke") as http:
            publisher = Publisher()
            try:
                assert (await publisher.publish(http)).status_code == 402
            finally:
                await publisher.close()
    async with framewire(key_concurrency=1) as server, bearer(server) as http:
        first, second = Publisher(), Publisher()
        try:
            assert (await first.publish(http)).status_code == 201
            refused = await second.publish(http)
            assert refused.status_code == 429 and refused.headers["retry-after"]
        finally:
            await asyncio.gather(first.close(), second.close())
    async with framewire(max_sessions=1) as server, bearer(server) as http:
        first, second = Publisher(), Publisher()
        try:
            assert (await first.publish(http)).status_code == 201
            full = await second.publish(http)
            assert full.status_code == 503 and full.headers["retry-after"]
            assert full.headers["content-type"] == "application/problem+json"
        finally:
            await asyncio.gather(first.close(), second.close())
