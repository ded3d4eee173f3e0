"""One UDP port for every leg (`FRAMEWIRE_ICE_UDP_PORT`): one socket per interface, shared by the
host candidates of every leg and every ICE generation, with incoming datagrams demultiplexed to
the right leg.

aioice gives each host candidate its own socket (a `StunProtocol` on a datagram endpoint). Here
each leg's protocol instead gets a `MuxedTransport`, a virtual datagram transport that sends
through the interface's shared socket, and the socket's `UdpMux` hands it what is its:

- a STUN request goes to the protocol whose local ufrag is the first half of its USERNAME and
  whose password verifies its MESSAGE-INTEGRITY; the sender's address is then that protocol's
  (this is also how an ICE restart, a new ufrag from the same address, moves the address over);
- a STUN response goes to the protocol that has its transaction open;
- anything else (DTLS, SRTP, SRTCP) goes by the sender's address, learnt from verified checks
  or from the leg's own sends to a remote candidate.

Datagrams that match nothing are counted and dropped: they never reach a leg. This is the design
of Pion's UDP mux and LiveKit's single-port mode, in aioice's terms.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, cast

from aioice import Connection, stun
from aioice.ice import StunProtocol

from framewire.media.sockets import HostSockets

Address = tuple[str, int]
STUN_FIRST_BYTE_MAX = 3
"""RFC 7983: a datagram whose first byte is 0..3 is STUN; 20..63 DTLS; 128..191 RTP/RTCP."""


class MuxedTransport(asyncio.DatagramTransport):
    """What one leg's StunProtocol sees as its socket: sends go out of the shared socket."""

    def __init__(self, mux: UdpMux, protocol: StunProtocol) -> None:
        super().__init__()
        self._mux = mux
        self._protocol = protocol
        self._closing = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not self._closing:
            self._mux.send(self._protocol, bytes(data), (addr[0], addr[1]))

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._mux.detach(self._protocol)
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self._closing

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return self._mux.sockname
        return default


class UdpMux(asyncio.DatagramProtocol):
    """The shared socket of one interface and the legs' protocols behind it."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.sockname: Address = ("", 0)
        self._by_ufrag: dict[str, list[StunProtocol]] = {}
        self._by_address: dict[Address, StunProtocol] = {}
        self._protocols: set[StunProtocol] = set()
        self.dropped = 0
        """Datagrams that matched no leg."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.sockname = self.transport.get_extra_info("sockname")[:2]

    def attach(self, conn: Connection) -> StunProtocol:
        """A protocol for `conn` on this socket, found by `conn`'s local ufrag."""
        protocol = StunProtocol(conn)
        protocol.connection_made(MuxedTransport(self, protocol))
        self._by_ufrag.setdefault(conn.local_username, []).append(protocol)
        self._protocols.add(protocol)
        return protocol

    def detach(self, protocol: StunProtocol) -> None:
        self._protocols.discard(protocol)
        ufrag = protocol.receiver.local_username
        same = self._by_ufrag.get(ufrag, [])
        if protocol in same:
            same.remove(protocol)
            if not same:
                del self._by_ufrag[ufrag]
        for address in [a for a, p in self._by_address.items() if p is protocol]:
            del self._by_address[address]

    def send(self, protocol: StunProtocol, data: bytes, addr: Address) -> None:
        # Sending to a remote candidate makes the answer from there this leg's, unless a
        # verified check already gave that address to a leg.
        self._by_address.setdefault(addr, protocol)
        if self.transport is not None:
            self.transport.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        addr = (addr[0], addr[1])
        if data and data[0] <= STUN_FIRST_BYTE_MAX:
            protocol = self._stun_owner(data, addr)
        else:
            protocol = self._by_address.get(addr)
        if protocol is None:
            self.dropped += 1
        else:
            protocol.datagram_received(data, addr)

    def _stun_owner(self, data: bytes, addr: Address) -> StunProtocol | None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return None
        if message.message_class == stun.Class.REQUEST:
            owner = self._verified(message)
            if owner is not None:
                self._by_address[addr] = owner
            return owner
        owner = self._by_address.get(addr)
        if owner is not None and message.transaction_id in owner.transactions:
            return owner
        for protocol in self._protocols:
            if message.transaction_id in protocol.transactions:
                return protocol
        return None

    def _verified(self, message: stun.Message) -> StunProtocol | None:
        """The protocol a connectivity check is for: its local ufrag leads the USERNAME and its
        password verifies the MESSAGE-INTEGRITY."""
        username = message.attributes.get("USERNAME")
        if not isinstance(username, str):
            return None
        for protocol in self._by_ufrag.get(username.partition(":")[0], []):
            if message.check_message_integrity(protocol.receiver.local_password.encode()):
                return protocol
        return None

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for one remote address: aioice's checks time out on their own."""


def bind_udp(address: str, port: int) -> socket.socket:
    """A bound, non-blocking UDP socket on `address:port` (raises OSError)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class SharedPort(HostSockets):
    """`port` on each of `interfaces`, shared by every leg. The sockets are bound at once (so a
    taken port fails at startup) and served once `start` runs in the event loop."""

    def __init__(self, port: int, interfaces: list[str]) -> None:
        self.port = port
        self._sockets: dict[str, socket.socket] = {}
        try:
            for address in interfaces:
                self._sockets[address] = bind_udp(address, port)
        except OSError:
            self._close_sockets()
            raise
        self.muxes: dict[str, UdpMux] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for address, sock in self._sockets.items():
            _, mux = await loop.create_datagram_endpoint(UdpMux, sock=sock)
            self.muxes[address] = mux

    async def bind(self, conn: Connection, address: str) -> StunProtocol:
        mux = self.muxes.get(address)
        if mux is None:
            raise OSError(f"{address} is not an interface of the shared port {self.port}")
        return mux.attach(conn)

    async def close(self) -> None:
        for mux in self.muxes.values():
            if mux.transport is not None:
                mux.transport.close()
        self.muxes = {}
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets = {}

    @property
    def dropped(self) -> int:
        return sum(m.dropped for m in self.muxes.values())
