"""Trickle gathering for one aiortc ICE gatherer: answer with host candidates at once, trickle
server-reflexive and relay candidates as they come, end with `None`.

aiortc's `setLocalDescription` awaits the whole gathering (up to 5 s with a silent STUN server)
and gathers on every interface but loopback. We replace `gather` on each gatherer *instance*
(never process-wide) with one that binds only the configured interfaces, returns after the host
candidates, and finishes the rest in a task. It touches private attributes of the pinned
aiortc/aioice versions (`_connection`, `_local_candidates`, `_protocols`); tests cover it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aioice import Candidate
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import (
    StunProtocol,
    TransportPolicy,
    get_host_addresses,
    relayed_candidate,
    server_reflexive_candidate,
)
from aioice.stun import TransactionError
from aiortc import RTCIceGatherer, RTCPeerConnection

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
    ) -> None:
        self._gatherer = gatherer
        self._interfaces = interfaces
        self._announced_ip = announced_ip
        self._on_candidate = on_candidate
        self._task: asyncio.Task[None] | None = None
        # Shadow the bound method on this instance only.
        gatherer.gather = self.gather  # type: ignore[method-assign]

    async def gather(self) -> None:
        gatherer = self._gatherer
        if gatherer.state != "new":
            return
        gatherer._RTCIceGatherer__setState("gathering")  # type: ignore[attr-defined]
        conn = gatherer._connection
        conn._local_candidates_start = True
        addresses: list[str] = []
        if conn._transport_policy == TransportPolicy.ALL:
            addresses = self._interfaces or get_host_addresses(
                use_ipv4=conn._use_ipv4, use_ipv6=conn._use_ipv6
            )
        stun_server, turn_server = conn.stun_server, conn.turn_server
        conn.stun_server = conn.turn_server = None
        try:
            for component in sorted(conn._components):
                conn._local_candidates += await conn.get_component_candidates(
                    component=component, addresses=addresses
                )
        finally:
            conn.stun_server, conn.turn_server = stun_server, turn_server
        if self._announced_ip:
            conn._local_candidates += [
                _announced(c, self._announced_ip)
                for c in list(conn._local_candidates)
                if c.type == "host"
            ]
        # connect() may start now; late candidates are paired as they arrive.
        conn._local_candidates_end = True
        if stun_server is None and turn_server is None:
            gatherer._RTCIceGatherer__setState("completed")  # type: ignore[attr-defined]
            self._task = asyncio.get_running_loop().create_task(self._announce_end())
        else:
            self._task = asyncio.get_running_loop().create_task(self._gather_late())

    async def _announce_end(self) -> None:
        self._on_candidate(self._gatherer, None)

    async def _gather_late(self) -> None:
        conn = self._gatherer._connection
        tasks: list[asyncio.Task[tuple[Candidate, StunProtocol | None]]] = []
        hosts = [p for p in conn._protocols if p.local_candidate.type == "host"]
        if conn.stun_server:
            for protocol in hosts:
                if ":" not in protocol.local_candidate.host:
                    tasks.append(
                        asyncio.create_task(server_reflexive_candidate(protocol, conn.stun_server))
                    )
        if conn.turn_server:
            for component in sorted(conn._components):
                tasks.append(
                    asyncio.create_task(
                        relayed_candidate(
                            component=component,
                            hide_related_address=conn._transport_policy == TransportPolicy.RELAY,
                            protocol_factory=lambda: StunProtocol(conn),
                            turn_server=conn.turn_server,
                            turn_username=conn.turn_username,
                            turn_password=conn.turn_password,
                            turn_ssl=conn.turn_ssl,
                            turn_transport=conn.turn_transport,
                        )
                    )
                )
        try:
            for next_done in asyncio.as_completed(tasks, timeout=LATE_GATHER_TIMEOUT):
                try:
                    candidate, relay = await next_done
                except (TimeoutError, OSError, ConnectionError, ValueError, TransactionError):
                    # A STUN/TURN server that refuses (e.g. 401) or never answers.
                    continue
                if conn._closing:
                    if relay is not None:
                        await relay.close()
                    return
                conn._local_candidates.append(candidate)
                if relay is not None:
                    conn._protocols.append(relay)
                    for remote in conn._remote_candidates:
                        conn._pair_remote_candidate(remote)
                    conn.sort_check_list()
                self._on_candidate(self._gatherer, candidate)
        except TimeoutError:
            pass
        finally:
            for task in tasks:
                task.cancel()
        if self._gatherer.state == "gathering":
            self._gatherer._RTCIceGatherer__setState("completed")  # type: ignore[attr-defined]
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
) -> list[TrickleGatherer]:
    """Wrap every gatherer of `pc` that has not gathered yet. Call after setRemoteDescription
    (answerer) or after adding transceivers (offerer), before setLocalDescription."""
    transports = pc._RTCPeerConnection__iceTransports  # type: ignore[attr-defined]
    return [
        TrickleGatherer(t.iceGatherer, interfaces, announced_ip, on_candidate)
        for t in transports
        if t.iceGatherer.state == "new"
        and not isinstance(getattr(t.iceGatherer.gather, "__self__", None), TrickleGatherer)
    ]
