"""Where a leg's media sockets live: a fresh ephemeral port each (aioice's own way), a port from
`FRAMEWIRE_ICE_PORT_RANGE`, or the one shared `FRAMEWIRE_ICE_UDP_PORT` (udpmux.py).

The trickle gatherer asks a `HostSockets` for each ICE generation's host candidates and for its
relay allocation, so every socket framewire binds for media goes through one of these."""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
import ssl
from typing import Any

from aioice import Candidate, Connection
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import StunProtocol, TransportPolicy, relayed_candidate, server_reflexive_candidate
from aioice.turn import (
    DEFAULT_ALLOCATION_LIFETIME,
    DEFAULT_CHANNEL_REFRESH_TIME,
    UDP_SOCKET_BUFFER_SIZE,
    TurnClientTcpProtocol,
    TurnClientUdpProtocol,
    TurnTransport,
)

from framewire.media import internals as private


class PortsExhausted(RuntimeError):
    """Every port of the configured range is in use: no socket for another leg (or another ICE
    generation) now. The API answers it as it does a full instance: 503 with Retry-After."""


def host_candidate(component: int, host: str, port: int) -> Candidate:
    return Candidate(
        foundation=candidate_foundation("host", "udp", host),
        component=component,
        transport="udp",
        priority=candidate_priority(component, "host"),
        host=host,
        port=port,
        type="host",
    )


class HostSockets:
    """A fresh ephemeral port for every host socket and relay allocation (the default)."""

    async def host_candidates(
        self, conn: Connection, component: int, addresses: list[str]
    ) -> list[Candidate]:
        """Bind one host socket per address for `component`; add them to `conn`. An address
        that cannot be bound is skipped (as aioice does); a full port range raises."""
        candidates = []
        for address in addresses:
            try:
                protocol = await self.bind(conn, address)
            except OSError:
                continue  # PortsExhausted (a full range) is not an OSError: it goes up
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = host_candidate(component, host, port)
            private.CONN_PROTOCOLS.get(conn).append(protocol)
            candidates.append(protocol.local_candidate)
        return candidates

    async def bind(self, conn: Connection, address: str) -> StunProtocol:
        _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: StunProtocol(conn), local_addr=(address, 0)
        )
        _grow_buffer(protocol.transport)
        return protocol

    async def reflexive_candidate(
        self, protocol: StunProtocol, stun_server: tuple[str, int]
    ) -> tuple[Candidate, StunProtocol | None]:
        return await server_reflexive_candidate(protocol, stun_server)

    async def relayed_candidate(
        self, conn: Connection, component: int
    ) -> tuple[Candidate, StunProtocol | None]:
        assert conn.turn_server is not None
        return await relayed_candidate(
            component=component,
            hide_related_address=private.CONN_TRANSPORT_POLICY.get(conn) == TransportPolicy.RELAY,
            protocol_factory=lambda: StunProtocol(conn),
            turn_server=conn.turn_server,
            turn_username=conn.turn_username,
            turn_password=conn.turn_password,
            turn_ssl=conn.turn_ssl,
            turn_transport=conn.turn_transport,
        )

    async def start(self) -> None:
        """Start serving what the sockets share (nothing for ephemeral ports)."""

    async def close(self) -> None:
        """Release what the sockets share (nothing for ephemeral ports)."""


EPHEMERAL = HostSockets()


def _grow_buffer(transport: Any) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER_SIZE)


class PortRange(HostSockets):
    """Every host socket and every relay allocation's local socket on a port of
    `first..last` (inclusive), tried round-robin from where the last bind succeeded."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self._next = itertools.cycle(range(first, last + 1))

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    async def _in_range(self, bind: Any) -> Any:
        """`await bind(port)` on the first free port; PortsExhausted when none is."""
        for _ in range(self.size):
            port = next(self._next)
            try:
                return await bind(port)
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
        raise PortsExhausted(f"every port of {self.first}-{self.last} is in use")

    async def bind(self, conn: Connection, address: str) -> StunProtocol:
        loop = asyncio.get_running_loop()

        async def at(port: int) -> StunProtocol:
            _, protocol = await loop.create_datagram_endpoint(
                lambda: StunProtocol(conn), local_addr=(address, port)
            )
            return protocol

        protocol: StunProtocol = await self._in_range(at)
        _grow_buffer(protocol.transport)
        return protocol

    async def relayed_candidate(
        self, conn: Connection, component: int
    ) -> tuple[Candidate, StunProtocol | None]:
        """aioice's relay allocation, with the socket to the TURN server bound in range."""
        assert conn.turn_server is not None
        server = conn.turn_server
        loop = asyncio.get_running_loop()
        wildcard = "::" if ":" in server[0] else "0.0.0.0"
        options: dict[str, Any] = {
            "username": conn.turn_username,
            "password": conn.turn_password,
            "lifetime": DEFAULT_ALLOCATION_LIFETIME,
            "channel_refresh_time": DEFAULT_CHANNEL_REFRESH_TIME,
        }

        async def at(port: int) -> tuple[asyncio.BaseTransport, Any]:
            if conn.turn_transport == "tcp":
                context: bool | ssl.SSLContext | None = conn.turn_ssl or None
                return await loop.create_connection(
                    lambda: TurnClientTcpProtocol(server, **options),
                    host=server[0],
                    port=server[1],
                    ssl=context,
                    local_addr=(wildcard, port),
                )
            return await loop.create_datagram_endpoint(
                lambda: TurnClientUdpProtocol(server, **options),
                remote_addr=server,
                local_addr=(wildcard, port),
            )

        inner_transport, inner_protocol = await self._in_range(at)
        protocol = StunProtocol(conn)
        relay = TurnTransport(inner_protocol)
        try:
            await private.TURN_CONNECT.get(relay)(protocol)
        except BaseException:
            inner_transport.close()
            raise
        return _relay_candidate(conn, component, protocol), protocol


def _relay_candidate(conn: Connection, component: int, protocol: StunProtocol) -> Candidate:
    """The relayed candidate of an allocation, its related address hidden under a relay-only
    policy (RFC 9429 §3.5.3) as aioice does."""
    host, port = protocol.transport.get_extra_info("sockname")[:2]
    related = protocol.transport.get_extra_info("related_address")
    if private.CONN_TRANSPORT_POLICY.get(conn) == TransportPolicy.RELAY:
        related = ("::", 9) if ":" in host else ("0.0.0.0", 9)
    protocol.local_candidate = Candidate(
        foundation=candidate_foundation("relay", "udp", host),
        component=component,
        transport="udp",
        priority=candidate_priority(component, "relay"),
        host=host,
        port=port,
        type="relay",
        related_address=related[0],
        related_port=related[1],
    )
    return protocol.local_candidate
