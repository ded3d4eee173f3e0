"""Deployments behind firewalls, in network namespaces the tests make (nftables rules inside):

- a server whose namespace admits only TCP to its HTTP port and UDP to `FRAMEWIRE_ICE_UDP_PORT`
  streams to 20 clients outside at once, and a client that loses its path restarts ICE through
  the same port (the same firewall without the shared port lets nothing through);
- a client whose namespace drops every UDP datagram gets its ICE servers from
  `GET /v1/realtime/ice-servers`, goes relay-only and streams through coturn over TCP or TLS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from framewire.client import IceRestart, RealtimeClient, Session
from tests.client.support import drop_path, pattern_frames, wait_event
from tests.coturn import coturn
from tests.netns import Namespace, namespace
from tests.restart_client import looks_like_pattern
from tests.servers import API_KEY, framewire

ROOT = Path(__file__).resolve().parent.parent
HOST_PORT = re.compile(r"a=candidate:\S+ 1 udp \d+ \S+ (\d+) typ host")
DROP_UDP = """
table inet no_udp {
    chain input { type filter hook input priority 0; policy accept; meta l4proto udp drop; }
    chain output { type filter hook output priority 0; policy accept; meta l4proto udp drop; }
}
"""

SEND_UDP = "import socket, sys; socket.socket(2, 2).sendto(b'x', (sys.argv[1], 3478))"


def only(http_port: int, udp_port: int) -> str:
    """Inbound: loopback, TCP to the HTTP port, UDP to the media port; nothing else."""
    return f"""
table inet only_ports {{
    chain input {{
        type filter hook input priority 0; policy drop;
        iif "lo" accept
        tcp dport {http_port} accept
        udp dport {udp_port} accept
    }}
}}
"""


@contextlib.asynccontextmanager
async def server_in(ns: Namespace, http_port: int, **env: str) -> AsyncIterator[str]:
    """`framewire serve` inside the namespace, on its veth address; its base URL once ready."""
    process = await asyncio.create_subprocess_exec(
        *ns.command(
            sys.executable,
            "-m",
            "framewire.cli",
            "serve",
            "--host",
            ns.inside,
            "--port",
            str(http_port),
            "--log-level",
            "warning",
        ),
        env={
            **os.environ,
            "FRAMEWIRE_API_KEYS": API_KEY,
            "FRAMEWIRE_ICE_INTERFACES": ns.inside,
            **env,
        },
    )
    url = f"http://{ns.inside}:{http_port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                assert process.returncode is None, "the server exited"
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/v1/models")).status_code == 200:
                        break
                assert time.monotonic() < deadline, "the server never answered"
                await asyncio.sleep(0.2)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def frames_back(session: Session, wanted: int, timeout: float) -> int:
    """How many of `wanted` frames that look like the sent pattern came back in time."""
    alike = 0

    async def count() -> None:
        nonlocal alike
        seen = 0
        async for frame in session.frames():
            seen += 1
            alike += looks_like_pattern(frame)
            if seen >= wanted:
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(count(), timeout)
    return alike


async def test_behind_a_firewall_admitting_http_and_one_udp_port_sessions_stream() -> None:
    http_port, udp_port = random.randrange(20000, 30000), random.randrange(40000, 50000)
    with namespace() as ns:
        ns.firewall(only(http_port, udp_port))
        async with (
            server_in(
                ns,
                http_port,
                FRAMEWIRE_ICE_UDP_PORT=str(udp_port),
                FRAMEWIRE_MAX_SESSIONS="20",
                FRAMEWIRE_KEY_CONCURRENCY="20",
                FRAMEWIRE_ICE_DISCONNECT_GRACE="1.5",
                FRAMEWIRE_ICE_RESTART_TIMEOUT="10",
            ) as url,
            RealtimeClient(url, API_KEY, ice_interfaces=[ns.outside]) as client,
        ):
            sessions = await asyncio.gather(
                *(
                    client.connect(pattern_frames(160, 120), model="passthrough", fps=10)
                    for _ in range(20)
                )
            )
            for session in sessions:
                answer = session._pc.remoteDescription.sdp
                assert {int(p) for p in HOST_PORT.findall(answer)} == {udp_port}
            counts = await asyncio.gather(*(frames_back(s, 10, 90) for s in sessions))
            assert all(c >= 8 for c in counts), counts

            # One client loses its path: the server asks for an ICE restart, which connects
            # through the same UDP port (the firewall admits nothing else), and media resumes.
            restarted, first_etag = sessions[0], sessions[0].etag
            drop_path(restarted)
            await wait_event(restarted, IceRestart, timeout=20)
            assert await frames_back(restarted, 30, 60) >= 15
            assert restarted.etag != first_etag
            answer = restarted._pc.remoteDescription.sdp
            assert {int(p) for p in HOST_PORT.findall(answer)} == {udp_port}

        # The control: the same firewall, the server on ephemeral ports, gets nothing through.
        async with (
            server_in(ns, http_port, FRAMEWIRE_ICE_CONNECT_TIMEOUT="30") as url,
            RealtimeClient(url, API_KEY, ice_interfaces=[ns.outside]) as client,
        ):
            session = await client.connect(pattern_frames(), model="passthrough", fps=10)
            assert await frames_back(session, 1, 8) == 0


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_a_client_whose_network_drops_udp_streams_through_turn_over_tcp(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with namespace() as ns:
        ns.firewall(DROP_UDP)
        blocked = await asyncio.create_subprocess_exec(
            *ns.command(sys.executable, "-c", SEND_UDP, ns.outside),
            stderr=asyncio.subprocess.PIPE,
        )
        _, complaint = await blocked.communicate()
        assert b"PermissionError" in complaint, complaint  # no UDP leaves the namespace
        async with coturn(also_listen=ns.outside, tls=transport == "tls") as relay:
            url = relay.tls_url(ns.outside) if transport == "tls" else relay.tcp_url(ns.outside)
            env = dict(os.environ)
            if relay.certificate is not None:
                # Both TURN clients (the server's own and the client's) trust the test's TLS
                # certificate through OpenSSL's default verify paths.
                monkeypatch.setenv("SSL_CERT_FILE", str(relay.certificate))
                env["SSL_CERT_FILE"] = str(relay.certificate)
            async with (
                framewire(
                    http_host=ns.outside, turn_urls=[url], turn_secret=relay.secret
                ) as server,
                server.client() as http,
            ):
                listed = (await http.get("/v1/realtime/ice-servers")).json()["ice_servers"]
                assert [entry["urls"] for entry in listed] == [[url]]
                client = await asyncio.create_subprocess_exec(
                    *ns.command(sys.executable, "-m", "tests.netclient", server.url, API_KEY, "20"),
                    cwd=ROOT,
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                out, err = await client.communicate()
                assert client.returncode == 0, err.decode()[-3000:]
                seen = json.loads(out)
                assert seen["frames"] == 20 and seen["alike"] >= 15, seen
                assert seen["seconds"] > 0
