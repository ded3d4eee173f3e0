"""ICE restart in place: the server notices a dead path and asks for a
restart, the client re-offers with `If-Match: "*"`, media resumes on the same session and the
same DTLS session; a client that does not re-offer ends with `ice_failure`; ETag rules hold."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiortc import RTCDtlsTransport

from framewire.rtc.restart import answer_fragment, with_ice_credentials
from framewire.rtc.signaling import parse_candidate, parse_sdpfrag
from framewire.state.memory import MemoryState
from tests.restart_client import RestartClient, looks_like_pattern, restart_client
from tests.servers import Running, framewire
from tests.sessions import open_session
from tests.test_seed_curl import SDP_PLACEHOLDER, run_curl, seed_commands

FAST: dict[str, Any] = {"ice_disconnect_grace": 1.5, "ice_restart_timeout": 8.0}
"""For the tests that kill a path; the others keep the default grace, so that a loaded machine
never makes them restart on their own."""
SDPFRAG = "application/trickle-ice-sdpfrag"


def server_dtls(server: Running, session_id: str) -> RTCDtlsTransport:
    leg = server.app.state.sessions.live[session_id].leg
    dtls: RTCDtlsTransport = leg._pc.getTransceivers()[0].receiver.transport
    return dtls


def attribute(sdp: str, name: str) -> str:
    match = re.search(rf"^a={name}:(.+?)\r?$", sdp, re.MULTILINE)
    assert match, f"no a={name} in SDP"
    return match.group(1)


def ticks(client: RestartClient) -> list[int]:
    assert client.events is not None
    return [e.data["seconds"] for e in client.events.events if e.event == "generation_tick"]


async def test_a_dead_path_is_restarted_in_place_and_media_resumes() -> None:
    async with (
        framewire(**FAST) as server,
        server.client() as http,
        restart_client(server, http) as client,
    ):
        assert client.events is not None
        assert looks_like_pattern(await client.peer.wait_frames(20))
        await client.events.wait_for("generation_tick")
        dtls_server, dtls_client = server_dtls(server, client.id), client.dtls()
        ssl_server, ssl_client = dtls_server._ssl, dtls_client._ssl
        first_answer, first_etag = client.body["sdp"]["sdp"], client.etag

        client.drop_path()
        restart = await client.events.wait_for("ice-restart", timeout=15)
        assert restart.data == {"ice_servers": []}
        await client.wait_restarted()
        frame = await client.peer.wait_frames(20)
        assert looks_like_pattern(frame)

        # Same session, same DTLS session (no new handshake): same objects, same fingerprint.
        restart_answer = client.restart_answers[0]
        assert attribute(restart_answer, "fingerprint") == attribute(first_answer, "fingerprint")
        assert attribute(restart_answer, "ice-ufrag") != attribute(first_answer, "ice-ufrag")
        assert server_dtls(server, client.id) is dtls_server and dtls_server._ssl is ssl_server
        assert client.dtls() is dtls_client and dtls_client._ssl is ssl_client
        assert dtls_server.state == dtls_client.state == "connected"
        state = (await http.get(client.url)).json()
        assert client.etag != first_etag
        assert state["status"] == "active" and state["etag"] == client.etag

        # SSE and billing went on without a gap, across the restart.
        before = len(ticks(client))
        await client.events.wait_for("generation_tick", count=before + 2)
        seconds = ticks(client)
        assert seconds == list(range(seconds[0], seconds[0] + len(seconds)))
        ended = (await http.delete(client.url)).json()
        await client.events.wait_closed()
        names = client.events.names()
        assert names.count("generation_started") == 1 and names.count("ice-restart") == 1
        assert names.index("generation_started") < names.index("ice-restart")
        assert ended["reason"] == "disconnect"
        assert ticks(client)[-1] <= ended["seconds"] < ticks(client)[-1] + 1.0 + 1e-6
        assert ended["credits_charged"] == ended["seconds"]


async def test_a_client_that_never_reoffers_ends_with_ice_failure() -> None:
    async with (
        framewire(**FAST) as server,
        server.client() as http,
        restart_client(server, http, answer_restarts=False) as client,
    ):
        assert client.events is not None
        await client.peer.wait_frames(10)
        await client.events.wait_for("generation_started")

        client.drop_path()
        asked = await client.events.wait_for("ice-restart", timeout=15)
        ended = await client.events.wait_for("generation_ended", timeout=20)
        await client.events.wait_closed()
        assert ended.data["reason"] == "ice_failure"
        names = client.events.names()
        assert names.count("ice-restart") == 1 and names[-1] == "generation_ended"
        assert asked.id is not None and ended.id is not None and asked.id < ended.id
        summary = (await http.delete(client.url)).json()
        assert summary["reason"] == "ice_failure" and summary["seconds"] == ended.data["seconds"]
        assert (await http.get(client.url)).json()["status"] == "ended"
        assert not server.app.state.legs.all()


async def test_a_restart_whose_new_path_never_connects_ends_with_ice_failure() -> None:
    async with (
        framewire(**FAST) as server,
        server.client() as http,
        restart_client(server, http, answer_restarts=False) as client,
    ):
        assert client.events is not None and client.restarter is not None
        await client.peer.wait_frames(10)
        client.drop_path()
        await client.events.wait_for("ice-restart", timeout=15)
        offer = await client.restarter.offer([])
        client.drop_path()  # the new generation's sockets are dead too
        answered = await http.patch(
            client.url, json={"sdp": {"type": "offer", "sdp": offer}}, headers={"If-Match": "*"}
        )
        assert answered.status_code == 200
        await client.accept_restart(answered.json()["sdp"]["sdp"])
        ended = await client.events.wait_for("generation_ended", timeout=25)
        assert ended.data["reason"] == "ice_failure"
        assert client.events.names().count("ice-restart") == 1


async def test_etag_rules_hold_around_restarts() -> None:
    async with (
        framewire() as server,
        server.client() as http,
        restart_client(server, http) as client,
    ):
        assert client.restarter is not None
        await client.peer.wait_frames(5)
        old_etag = client.etag
        old_ufrag = attribute(client.peer.pc.localDescription.sdp, "ice-ufrag")
        offer = await client.restarter.offer([])
        restart = {"sdp": {"type": "offer", "sdp": offer}}

        missing = await http.patch(client.url, json=restart)
        assert missing.status_code == 428
        assert missing.headers["content-type"].startswith("application/problem+json")
        stale = await http.patch(client.url, json=restart, headers={"If-Match": '"ice-0"'})
        assert stale.status_code == 412
        assert (await http.get(client.url)).headers["etag"] == old_etag

        # The current ETag restarts too (not only "*"), and mints a new one.
        done = await http.patch(client.url, json=restart, headers={"If-Match": old_etag})
        assert done.status_code == 200, done.text
        new_etag = done.headers["etag"]
        assert new_etag != old_etag and new_etag.startswith('"ice-')
        assert (await http.get(client.url)).headers["etag"] == new_etag
        client.etag = new_etag
        await client.accept_restart(done.json()["sdp"]["sdp"])
        await client.wait_restarted()
        new_ufrag = attribute(offer, "ice-ufrag")

        candidate: dict[str, Any] = {
            "candidate": "candidate:1 1 UDP 2130706431 127.0.0.1 9 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
        old = await http.patch(
            client.url, json={"candidates": [candidate]}, headers={"If-Match": old_etag}
        )
        assert old.status_code == 412
        older_generation = await http.patch(
            client.url,
            json={"candidates": [{**candidate, "usernameFragment": old_ufrag}]},
            headers={"If-Match": new_etag},
        )
        assert older_generation.status_code == 412
        current = await http.patch(
            client.url,
            json={"candidates": [{**candidate, "usernameFragment": new_ufrag}]},
            headers={"If-Match": new_etag},
        )
        assert current.status_code == 204 and current.headers["etag"] == new_etag
        again = await http.patch(client.url, json=restart, headers={"If-Match": old_etag})
        assert again.status_code == 412
        assert (await http.patch(client.url, json=restart)).status_code == 428

        # Re-offers that are not ICE restarts are refused; the session goes on.
        same_ufrag = client.peer.pc.localDescription.sdp
        not_restart = await http.patch(
            client.url,
            json={"sdp": {"type": "offer", "sdp": same_ufrag}},
            headers={"If-Match": '"*"'},
        )
        assert not_restart.status_code == 400 and "ice-ufrag" in not_restart.json()["detail"]
        other_cert = re.sub(
            r"a=fingerprint:sha-256 \S+",
            "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
            offer,
        ).replace(new_ufrag, "zzzz")
        refused = await http.patch(
            client.url,
            json={"sdp": {"type": "offer", "sdp": other_cert}},
            headers={"If-Match": '"*"'},
        )
        assert refused.status_code == 400 and "fingerprint" in refused.json()["detail"]
        assert (await http.get(client.url)).headers["etag"] == new_etag
        assert looks_like_pattern(await client.peer.wait_frames(10))

        await http.delete(client.url)
        gone = await http.patch(client.url, json=restart, headers={"If-Match": '"*"'})
        assert gone.status_code == 410


async def test_a_whip_sdpfrag_restart_answers_with_a_fragment_and_media_continues() -> None:
    async with (
        framewire() as server,
        server.client() as http,
        restart_client(server, http) as client,
    ):
        assert client.restarter is not None
        await client.peer.wait_frames(5)
        headers = {"Content-Type": SDPFRAG, "If-Match": client.etag}
        ufrag = attribute(client.peer.pc.localDescription.sdp, "ice-ufrag")
        trickle = f"a=ice-ufrag:{ufrag}\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
        same = await http.patch(client.url, content=trickle, headers=headers)
        assert same.status_code == 204 and same.headers["etag"] == client.etag
        unknown = await http.patch(
            client.url, content=trickle.replace(ufrag, "zzzz"), headers=headers
        )
        assert unknown.status_code == 412

        offer = await client.restarter.offer([])
        new_ufrag, new_pwd, candidates = parse_sdpfrag(offer)
        assert new_ufrag and new_pwd and candidates
        fragment = answer_fragment(offer)  # the same shape a WHIP client sends
        assert "a=ice-ufrag:" in fragment and "\r\nm=video " in fragment
        response = await http.patch(
            client.url, content=fragment, headers={"Content-Type": SDPFRAG, "If-Match": "*"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(SDPFRAG)
        assert response.headers["etag"] != client.etag
        server_ufrag, server_pwd, server_candidates = parse_sdpfrag(response.text)
        assert server_ufrag and server_pwd
        assert server_ufrag != attribute(client.body["sdp"]["sdp"], "ice-ufrag")
        assert any(c is not None and " typ host" in c["candidate"] for c in server_candidates)

        previous = client.peer.pc.remoteDescription.sdp
        await client.accept_restart(with_ice_credentials(previous, server_ufrag, server_pwd))
        for init in server_candidates:
            if init is not None:
                await client.peer.pc.addIceCandidate(parse_candidate(init))
        await client.wait_restarted()
        assert looks_like_pattern(await client.peer.wait_frames(20))


async def test_concurrent_trickles_during_a_restart_leave_one_consistent_session() -> None:
    async with (
        framewire() as server,
        server.client() as http,
        restart_client(server, http) as client,
    ):
        assert client.restarter is not None
        await client.peer.wait_frames(5)
        offer = await client.restarter.offer([])
        old_etag = client.etag
        candidate: dict[str, Any] = {
            "candidate": "candidate:1 1 UDP 2130706431 127.0.0.1 9 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }

        async def trickle(port: int) -> Any:
            body = {
                "candidates": [
                    {
                        **candidate,
                        "candidate": candidate["candidate"].replace(" 9 ", f" {port} "),
                    }
                ]
            }
            return await http.patch(client.url, json=body, headers={"If-Match": old_etag})

        restart = http.patch(
            client.url, json={"sdp": {"type": "offer", "sdp": offer}}, headers={"If-Match": "*"}
        )
        results = await asyncio.gather(
            *(trickle(9000 + i) for i in range(4)),
            restart,
            *(trickle(9100 + i) for i in range(4)),
        )
        restarted = results[4]
        assert restarted.status_code == 200, restarted.text
        trickles = results[:4] + results[5:]
        assert {r.status_code for r in trickles} <= {204, 412}
        assert all(r.headers["etag"] == old_etag for r in trickles if r.status_code == 204)
        state = await http.get(client.url)
        assert state.headers["etag"] == restarted.headers["etag"] != old_etag
        client.etag = restarted.headers["etag"]
        await client.accept_restart(restarted.json()["sdp"]["sdp"])
        await client.wait_restarted()
        assert looks_like_pattern(await client.peer.wait_frames(20))
        late = await http.patch(
            client.url, json={"candidates": [None]}, headers={"If-Match": client.etag}
        )
        assert late.status_code == 204


async def test_the_seed_curl_ice_restart_example_works_with_the_base_url_swapped() -> None:
    example = seed_commands()[4]
    assert 'If-Match: "*"' in example and '"type": "offer"' in example
    async with (
        framewire() as server,
        server.client() as http,
        restart_client(server, http) as client,
    ):
        assert client.restarter is not None
        await client.peer.wait_frames(5)
        offer = await client.restarter.offer([])
        command = example.replace("https://api.decart.ai", server.url)
        command = command.replace("rs_abc123", client.id)
        command = SDP_PLACEHOLDER.sub(lambda _: '"sdp": ' + json.dumps(offer), command)
        status, headers, body = await run_curl(command)
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)["sdp"]
        assert answer["type"] == "answer" and headers["etag"] != client.etag
        await client.accept_restart(answer["sdp"])
        await client.wait_restarted()
        assert looks_like_pattern(await client.peer.wait_frames(20))
        assert (await http.get(client.url)).headers["etag"] == headers["etag"]


async def test_any_instance_takes_a_restart_for_the_owner() -> None:
    shared = MemoryState()
    async with (
        framewire(state=shared) as owner,
        framewire(state=shared) as other,
        owner.client() as owner_http,
        other.client() as other_http,
        restart_client(owner, owner_http) as client,
    ):
        await client.peer.wait_frames(5)
        client.http = other_http  # every PATCH now goes to the instance without the leg
        await client.restart([])
        await client.wait_restarted()
        assert looks_like_pattern(await client.peer.wait_frames(20))
        state = (await other_http.get(client.url)).json()
        assert state["instance_id"] == owner.app.state.instance_id != other.app.state.instance_id
        assert state["etag"] == client.etag
        stale = await other_http.patch(
            client.url, json={"candidates": [None]}, headers={"If-Match": '"ice-0"'}
        )
        assert stale.status_code == 412


async def test_a_restart_before_ice_has_connected_is_refused_and_the_session_goes_on() -> None:
    async with framewire() as server, server.client() as http:
        session = await open_session(server, http, connect=False)
        try:
            offer = session.peer.pc.localDescription.sdp
            reoffer = with_ice_credentials(offer, "zzzz", "a" * 22)
            refused = await http.patch(
                session.url,
                json={"sdp": {"type": "offer", "sdp": reoffer}},
                headers={"If-Match": "*"},
            )
            assert refused.status_code == 409, refused.text
            assert "trickle" in refused.json()["detail"]
            assert (await http.get(session.url)).headers["etag"] == session.etag
            await session.peer.accept(session.body["sdp"]["sdp"])
            assert looks_like_pattern(await session.peer.wait_frames(10))
        finally:
            await session.close()
