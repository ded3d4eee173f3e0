"""Media ports a firewall can be told about: `FRAMEWIRE_ICE_PORT_RANGE` keeps every media socket
(host candidates and the server's TURN allocations) in the range, a full range answers create
with 503 + Retry-After and frees up again; settings that cannot work stop `framewire serve` at
start with an error naming the setting; an ICE restart that finds the range full is a 503 too,
and the session goes on over its current path."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from tests.coturn import coturn
from tests.legs import OFFER, drain_until_done
from tests.peers import ClientPeer
from tests.restart_client import restart_client
from tests.servers import API_KEY, framewire
from tests.sessions import SESSIONS, open_session

HOST_PORT = re.compile(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host")
RELAY_RPORT = re.compile(r"typ relay raddr \S+ rport (\d+)")


@contextmanager
def free_range(size: int) -> Iterator[tuple[int, int]]:
    """`size` consecutive UDP ports free on 127.0.0.1 (probed, then released for the server)."""
    for _ in range(200):
        first = random.randrange(20000, 30000)
        with ExitStack() as probes:
            try:
                for port in range(first, first + size):
                    sock = probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        yield first, first + size - 1
        return
    raise RuntimeError("no free port range")


async def test_host_and_relay_sockets_bind_in_the_range() -> None:
    async with coturn() as relay:
        with free_range(4) as (first, last):
            async with (
                framewire(
                    ice_port_range=(first, last),
                    max_sessions=2,
                    turn_urls=[relay.url],
                    turn_secret=relay.secret,
                ) as server,
                server.client() as http,
            ):
                peer = ClientPeer()
                try:
                    offer = await peer.offer(trickle=True)
                    response = await http.post(OFFER, json={"sdp": offer})
                    assert response.status_code == 200, response.text
                    body = response.json()
                    [host] = [int(p) for p in HOST_PORT.findall(body["sdp"])]
                    late = await drain_until_done(http, body["leg_id"])
                    relays = [
                        int(m) for c in late for m in RELAY_RPORT.findall(str(c["candidate"]))
                    ]
                    assert relays, f"the server got no relay candidate: {late}"
                    assert first <= host <= last
                    assert all(first <= port <= last for port in relays), (relays, first)
                finally:
                    await peer.close()


async def test_a_full_range_answers_503_with_retry_after_and_frees_up_again() -> None:
    with free_range(2) as (first, last):
        async with (
            framewire(ice_port_range=(first, last), max_sessions=2) as server,
            server.client() as http,
        ):
            squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            squatter.bind(("127.0.0.1", last))  # another program took one port of the range
            opened = await open_session(server, http)
            try:
                assert HOST_PORT.findall(opened.body["sdp"]["sdp"]) == [str(first)]
                peer = ClientPeer()
                response = await http.post(
                    SESSIONS,
                    json={
                        "model": "passthrough",
                        "sdp": {"type": "offer", "sdp": await peer.offer()},
                    },
                )
                await peer.close()
                assert response.status_code == 503, response.text
                assert response.headers["content-type"].startswith("application/problem+json")
                assert int(response.headers["retry-after"]) > 0
                assert f"{first}-{last}" in response.json()["detail"]
                assert (await http.get(opened.url)).json()["status"] == "active"
            finally:
                await opened.close()
            squatter.close()
            await http.delete(opened.url)
            again = await open_session(server, http)
            try:
                assert len(HOST_PORT.findall(again.body["sdp"]["sdp"])) == 1
            finally:
                await again.close()


def serve(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framewire.cli", "serve", "--port", "0"],
        env={**os.environ, "FRAMEWIRE_API_KEYS": API_KEY, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FRAMEWIRE_ICE_UDP_PORT": "70000"}, "FRAMEWIRE_ICE_UDP_PORT"),
        ({"FRAMEWIRE_ICE_PORT_RANGE": "40000"}, "FRAMEWIRE_ICE_PORT_RANGE"),
        ({"FRAMEWIRE_ICE_PORT_RANGE": "41000-40000"}, "FRAMEWIRE_ICE_PORT_RANGE"),
        (
            {
                "FRAMEWIRE_ICE_PORT_RANGE": "40000-40003",
                "FRAMEWIRE_MAX_SESSIONS": "8",
                "FRAMEWIRE_ICE_INTERFACES": "127.0.0.1",
            },
            "FRAMEWIRE_ICE_PORT_RANGE",
        ),
        (
            {"FRAMEWIRE_ICE_UDP_PORT": "40000", "FRAMEWIRE_ICE_PORT_RANGE": "40000-40999"},
            "FRAMEWIRE_ICE_UDP_PORT or FRAMEWIRE_ICE_PORT_RANGE",
        ),
    ],
)
def test_settings_that_cannot_work_stop_the_server_at_start(
    env: dict[str, str], named: str
) -> None:
    result = serve(**env)
    assert result.returncode != 0
    assert named in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_taken_udp_port_stops_the_server_at_start() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = serve(FRAMEWIRE_ICE_UDP_PORT=str(port), FRAMEWIRE_ICE_INTERFACES="127.0.0.1")
    assert result.returncode != 0
    assert f"FRAMEWIRE_ICE_UDP_PORT: cannot bind UDP port {port}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


async def test_a_restart_that_finds_the_range_full_is_503_and_the_session_goes_on() -> None:
    with free_range(2) as (first, last):
        async with (
            framewire(ice_port_range=(first, last), max_sessions=2) as server,
            server.client() as http,
            restart_client(server, http) as client,
        ):
            assert client.restarter is not None
            await client.peer.wait_frames(5)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
                squatter.bind(("127.0.0.1", last))  # the session holds `first`: none is left
                offer = await client.restarter.offer([])
                response = await http.patch(
                    client.url,
                    json={"sdp": {"type": "offer", "sdp": offer}},
                    headers={"If-Match": '"*"'},
                )
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) > 0
            assert f"{first}-{last}" in response.json()["detail"]
            assert (await http.get(client.url)).json()["status"] == "active"
            await client.peer.wait_frames(10)  # the current path carries on
