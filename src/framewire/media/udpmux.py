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
from typing import Any

from aioice import Connection, stun
from aioice.ice import StunProtocol

from framewire.media.sockets import HostSockets

Address = tuple[str, int]
STUN_FIRST_BYTE_MAX = 3
"""RFC 7983: a datagram whose first byte is 0..3 is STUN; 20..63 DTLS; 128..191 RTP/RTCP."""
READ_BATCH = 256
RECEIVE_SIZE = 65536


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


class UdpMux:
    """The shared socket of one interface and the legs' protocols behind it.

    It reads the socket itself, up to READ_BATCH datagrams per wake-up: asyncio's datagram
    transport reads one per event-loop iteration, which is fine for a socket per leg but would
    make every leg's packets queue behind each other's on a shared one."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.sockname: Address = sock.getsockname()[:2]
        self._buffer = bytearray(RECEIVE_SIZE)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._by_ufrag: dict[str, list[StunProtocol]] = {}
        self._by_address: dict[Address, StunProtocol] = {}
        self._protocols: set[StunProtocol] = set()
        self.dropped = 0
        """Datagrams that matched no leg."""
        self.unsent = 0
        """Datagrams not sent because the socket's send buffer was full."""

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._read_ready)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._loop = None
        self._sock.close()

    def _read_ready(self) -> None:
        view = memoryview(self._buffer)
        for _ in range(READ_BATCH):
            try:
                size, addr = self._sock.recvfrom_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error for an earlier send (Linux reports them here)
            self.datagram_received(bytes(view[:size]), addr)

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
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.unsent += 1  # the socket buffer is full: a lost datagram, as on the wire
        except OSError:
            pass  # unreachable or refused: ICE and DTLS retry or time out on their own

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
    taken port fails at startup) and read once `start` runs in the event loop."""

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
        for address, sock in self._sockets.items():
            self.muxes[address] = mux = UdpMux(sock)
            mux.start()
        self._sockets = {}

    async def bind(self, conn: Connection, address: str) -> StunProtocol:
        mux = self.muxes.get(address)
        if mux is None:
            raise OSError(f"{address} is not an interface of the shared port {self.port}")
        return mux.attach(conn)

    async def close(self) -> None:
        for mux in self.muxes.values():
            mux.close()
        self.muxes = {}
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets = {}

    @property
    def dropped(self) -> int:
        return sum(m.dropped for m in self.muxes.values())
