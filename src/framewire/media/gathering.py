"""Trickle gathering for one aiortc ICE gatherer: answer with host candidates at once, trickle
server-reflexive and relay candidates as they come, end with `None`.

aiortc's `setLocalDescription` awaits the whole gathering (up to 5 s with a silent STUN server)
and gathers on every interface but loopback. We replace `gather` on each gatherer *instance*
(never process-wide) with one that binds only the configured interfaces, returns after the host
candidates, and finishes the rest in a task. Host sockets come from a `HostSockets`
(sockets.py): a fresh ephemeral port each, a port from a configured range, or the one shared UDP
port. The private aiortc/aioice attributes it needs are named in internals.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aioice import Candidate
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import StunProtocol, TransportPolicy, get_host_addresses
from aioice.stun import TransactionError
from aiortc import RTCIceGatherer, RTCPeerConnection

from framewire.media import internals as private
from framewire.media.sockets import EPHEMERAL, HostSockets

CandidateCallback = Callable[[RTCIceGatherer, Candidate | None], None]
"""Called with each candidate found after the description, then `None` once at the end."""

LATE_GATHER_TIMEOUT = 5.0


class TrickleGatherer:
    """Drives one RTCIceGatherer in place of its own `gather`."""

    def __init__(
        self,
        gatherer: RTCIceGatherer,
        interfaces: list[str],
        announced_ip: str | None,
        on_candidate: CandidateCallback,
        sockets: HostSockets = EPHEMERAL,
    ) -> None:
        self._gatherer = gatherer
        self._interfaces = interfaces
        self._announced_ip = announced_ip
        self._on_candidate = on_candidate
        self._sockets = sockets
        self._task: asyncio.Task[None] | None = None
        # Shadow the bound method on this instance only.
        gatherer.gather = self.gather  # type: ignore[method-assign]

    async def gather(self) -> None:
        gatherer = self._gatherer
        if gatherer.state != "new":
            return
        private.set_gatherer_state(gatherer, "gathering")
        conn = private.GATHERER_CONNECTION.get(gatherer)
        private.CONN_LOCAL_START.set(conn, True)
        addresses: list[str] = []
        if private.CONN_TRANSPORT_POLICY.get(conn) == TransportPolicy.ALL:
            addresses = self._interfaces or get_host_addresses(
                use_ipv4=private.CONN_USE_IPV4.get(conn), use_ipv6=private.CONN_USE_IPV6.get(conn)
            )
        local = private.CONN_LOCAL_CANDIDATES.get(conn)
        for component in sorted(private.CONN_COMPONENTS.get(conn)):
            local += await self._sockets.host_candidates(conn, component, addresses)
        if self._announced_ip:
            local += [_announced(c, self._announced_ip) for c in list(local) if c.type == "host"]
        # connect() may start now; late candidates are paired as they arrive.
        private.CONN_LOCAL_END.set(conn, True)
        if conn.stun_server is None and conn.turn_server is None:
            private.set_gatherer_state(gatherer, "completed")
            self._task = asyncio.get_running_loop().create_task(self._announce_end())
        else:
            self._task = asyncio.get_running_loop().create_task(self._gather_late())

    async def _announce_end(self) -> None:
        self._on_candidate(self._gatherer, None)

    def _late_tasks(self) -> list[asyncio.Task[tuple[Candidate, StunProtocol | None]]]:
        conn = private.GATHERER_CONNECTION.get(self._gatherer)
        tasks: list[asyncio.Task[tuple[Candidate, StunProtocol | None]]] = []
        if conn.stun_server:
            for protocol in private.CONN_PROTOCOLS.get(conn):
                candidate = protocol.local_candidate
                if candidate.type == "host" and ":" not in candidate.host:
                    tasks.append(
                        asyncio.create_task(
                            self._sockets.reflexive_candidate(protocol, conn.stun_server)
                        )
                    )
        if conn.turn_server:
            for component in sorted(private.CONN_COMPONENTS.get(conn)):
                tasks.append(asyncio.create_task(self._sockets.relayed_candidate(conn, component)))
        return tasks

    async def _gather_late(self) -> None:
        conn = private.GATHERER_CONNECTION.get(self._gatherer)
        tasks = self._late_tasks()
        try:
            for next_done in asyncio.as_completed(tasks, timeout=LATE_GATHER_TIMEOUT):
                try:
                    candidate, relay = await next_done
                except (TimeoutError, OSError, ConnectionError, ValueError, TransactionError):
                    # A STUN/TURN server that refuses (e.g. 401) or never answers.
                    continue
                if private.CONN_CLOSING.get(conn):
                    if relay is not None:
                        await relay.close()
                    return
                private.CONN_LOCAL_CANDIDATES.get(conn).append(candidate)
                if relay is not None:
                    private.CONN_PROTOCOLS.get(conn).append(relay)
                    pair = private.CONN_PAIR_REMOTE.get(conn)
                    for remote in private.CONN_REMOTE_CANDIDATES.get(conn):
                        pair(remote)
                    conn.sort_check_list()
                self._on_candidate(self._gatherer, candidate)
        except TimeoutError:
            pass
        finally:
            for task in tasks:
                task.cancel()
        if self._gatherer.state == "gathering":
            private.set_gatherer_state(self._gatherer, "completed")
        self._on_candidate(self._gatherer, None)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _announced(host: Candidate, address: str) -> Candidate:
    """A server-reflexive twin of a host candidate, for a server behind 1:1 NAT."""
    return Candidate(
        foundation=candidate_foundation("srflx", "udp", host.host),
        component=host.component,
        transport=host.transport,
        priority=candidate_priority(host.component, "srflx"),
        host=address,
        port=host.port,
        type="srflx",
        related_address=host.host,
        related_port=host.port,
    )


def install_trickle(
    pc: RTCPeerConnection,
    interfaces: list[str],
    announced_ip: str | None,
    on_candidate: CandidateCallback,
    sockets: HostSockets = EPHEMERAL,
) -> list[TrickleGatherer]:
    """Wrap every gatherer of `pc` that has not gathered yet. Call after setRemoteDescription
    (answerer) or after adding transceivers (offerer), before setLocalDescription."""
    return [
        TrickleGatherer(t.iceGatherer, interfaces, announced_ip, on_candidate, sockets)
        for t in private.ice_transports(pc)
        if t.iceGatherer.state == "new"
        and not isinstance(getattr(t.iceGatherer.gather, "__self__", None), TrickleGatherer)
    ]
