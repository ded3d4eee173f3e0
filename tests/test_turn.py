"""TURN relay with ephemeral credentials, against a real coturn on loopback: sessions hand out
TURN REST API credentials that coturn accepts and that expire with the session; a relay-only
client gets its media through coturn; the server relays its own candidates too; an ICE
restart moves a client onto the relay with the credentials of the `ice-restart` event."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from datetime import datetime
from typing import Any

import pytest
from aioice import TransportPolicy, stun, turn
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

from framewire.media.turn import TURN_TTL_MARGIN, TurnServer
from tests.coturn import Coturn, coturn
from tests.restart_client import looks_like_pattern, restart_client
from tests.servers import OTHER_KEY, Running, framewire


def settings_for(relay: Coturn, **extra: Any) -> dict[str, Any]:
    return {"turn_urls": [relay.url], "turn_secret": relay.secret, **extra}


async def allocate(relay: Coturn, username: str, password: str) -> tuple[str, int]:
    """A TURN allocation on coturn (RFC 8656); its relayed transport address."""
    transport, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol, server_addr=relay.address, username=username, password=password
    )
    try:
        address: tuple[str, int] = transport.get_extra_info("sockname")
        return address
    finally:
        transport.close()


async def refused(relay: Coturn, username: str, password: str) -> int:
    """The error code coturn answers an allocation with."""
    with pytest.raises(stun.TransactionFailed) as failure:
        await allocate(relay, username, password)
    code: int = failure.value.response.attributes["ERROR-CODE"][0]
    return code


def leg_connection(server: Running, session_id: str) -> Any:
    leg = server.app.state.sessions.live[session_id].leg
    return leg._pc.getTransceivers()[0].receiver.transport.transport._connection


async def test_coturn_refuses_wrong_and_expired_credentials() -> None:
    async with coturn() as relay:
        good = TurnServer([relay.url], relay.secret, ttl=60).ice_server("rs_test")
        host, port = await allocate(relay, good["username"], good["credential"])
        assert host == "127.0.0.1" and port != relay.port

        assert await refused(relay, good["username"], good["credential"][:-4] + "AAA=") == 401
        other = TurnServer([relay.url], "not-the-secret", ttl=60).ice_server("rs_test")
        assert await refused(relay, other["username"], other["credential"]) == 401
        expired = TurnServer([relay.url], relay.secret, ttl=60).ice_server(
            "rs_test", time.time() - 60
        )
        assert await refused(relay, expired["username"], expired["credential"]) == 401


async def test_sessions_hand_out_turn_credentials_that_expire_with_them() -> None:
    async with (
        coturn() as relay,
        framewire(**settings_for(relay, max_duration=120)) as server,
        server.client() as http,
        restart_client(server, http) as client,
    ):
        assert client.events is not None
        [server_entry] = client.body["ice_servers"]
        expires_at = datetime.fromisoformat(client.body["expires_at"]).timestamp()
        expiry, _, name = server_entry["username"].partition(":")
        assert server_entry["urls"] == [relay.url] and name == client.id
        assert abs(int(expiry) - expires_at) <= 1
        digest = hmac.new(relay.secret.encode(), server_entry["username"].encode(), hashlib.sha1)
        assert server_entry["credential"] == base64.b64encode(digest.digest()).decode()
        assert await allocate(relay, server_entry["username"], server_entry["credential"])
        assert (await http.get(client.url)).json()["ice_servers"] == [server_entry]

        # The server relays its own candidates too: one trickles as an event, then the end.
        candidates: list[str | None] = []
        while not candidates or candidates[-1] is not None:
            event = await client.events.wait_for("ice-candidate", count=len(candidates) + 1)
            candidates.append(event.data["candidate"])
        assert any(" typ relay " in (c or "") for c in candidates[:-1])
        assert looks_like_pattern(await client.peer.wait_frames(10))


async def test_a_relay_only_client_gets_its_media_through_coturn() -> None:
    async with (
        coturn() as relay,
        framewire(**settings_for(relay)) as server,
        server.client() as http,
    ):
        # The TURN secret's holder (a provider backend, like framewire itself) mints the
        # client's credentials: a relay-only client needs them before its first offer.
        minted = TurnServer([relay.url], relay.secret, ttl=60).ice_server("client")
        configuration = RTCConfiguration(
            iceServers=[RTCIceServer(**minted)], iceTransportPolicy=RTCIceTransportPolicy.RELAY
        )
        async with restart_client(server, http, configuration=configuration) as client:
            assert "a=candidate" not in client.peer.pc.localDescription.sdp
            assert looks_like_pattern(await client.peer.wait_frames(20))
            local = client.connection().local_candidates
            assert local and {c.type for c in local} == {"relay"}
            pair = client.selected_pair()
            assert pair.local_candidate.type == "relay"
            relayed = (pair.local_candidate.host, pair.local_candidate.port)
            # The server hears the client from coturn's relayed address, not the client's socket.
            heard_from = leg_connection(server, client.id)._nominated[1].remote_candidate
            assert (heard_from.host, heard_from.port) == relayed
            assert 204 in client.patches  # the relay candidate was trickled over PATCH


async def test_a_restart_moves_the_client_onto_the_relay_with_the_event_credentials() -> None:
    async with (
        coturn() as relay,
        framewire(**settings_for(relay, ice_disconnect_grace=1.5)) as server,
        server.client() as http,
        restart_client(server, http, restart_policy=TransportPolicy.RELAY) as client,
    ):
        assert client.events is not None
        assert looks_like_pattern(await client.peer.wait_frames(20))
        assert client.selected_pair().local_candidate.type == "host"

        client.drop_path()
        asked = await client.events.wait_for("ice-restart", timeout=15)
        [entry] = asked.data["ice_servers"]
        assert entry["username"].endswith(":" + client.id) and entry["urls"] == [relay.url]
        await client.wait_restarted()
        assert looks_like_pattern(await client.peer.wait_frames(20))
        assert client.selected_pair().local_candidate.type == "relay"
        assert {c.type for c in client.connection().local_candidates} == {"relay"}
        names = client.events.names()
        assert names.count("generation_started") == 1 and "generation_ended" not in names


async def test_session_turn_credentials_stop_working_when_the_session_expires() -> None:
    async with (
        coturn() as relay,
        framewire(**settings_for(relay, max_duration=2.0)) as server,
        server.client() as http,
        restart_client(server, http) as client,
    ):
        assert client.events is not None
        [entry] = client.body["ice_servers"]
        assert await allocate(relay, entry["username"], entry["credential"])
        ended = await client.events.wait_for("generation_ended", timeout=15)
        assert ended.data["reason"] == "timeout"
        expiry = int(entry["username"].partition(":")[0])
        await asyncio.sleep(max(0.0, expiry + 1.1 - time.time()))
        assert await refused(relay, entry["username"], entry["credential"]) == 401


async def test_ice_servers_before_the_offer_carry_fresh_credentials_scoped_to_the_key() -> None:
    async with (
        coturn() as relay,
        framewire(**settings_for(relay, max_duration=120)) as server,
        server.client() as http,
        server.client(OTHER_KEY) as other,
        server.client(None) as anonymous,
    ):
        refused_without_key = await anonymous.get("/v1/realtime/ice-servers")
        assert refused_without_key.status_code == 401
        assert refused_without_key.headers["content-type"].startswith("application/problem+json")

        asked_at = time.time()
        response = await http.get("/v1/realtime/ice-servers")
        assert response.status_code == 200, response.text
        [entry] = response.json()["ice_servers"]
        assert entry["urls"] == [relay.url]
        expiry, _, name = entry["username"].partition(":")
        # Valid for as long as a session made now may last (120 s), plus the TURN margin.
        assert (
            asked_at + 120 + TURN_TTL_MARGIN <= int(expiry) <= time.time() + 121 + TURN_TTL_MARGIN
        )
        [theirs] = (await other.get("/v1/realtime/ice-servers")).json()["ice_servers"]
        assert name.startswith("key_") and theirs["username"].partition(":")[2] != name
        assert await allocate(relay, entry["username"], entry["credential"])
