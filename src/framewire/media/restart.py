"""ICE restart in place for an aiortc peer connection, in either role.

aiortc accepts a re-offer with a new ufrag/pwd and ignores it: its gatherer gathers once and
its ICE transport starts once. Everything facing signalling reads the transport's aioice
`_connection` at call time, and DTLS reaches ICE only through the transport's recv/send hooks. So a
restart puts a fresh aioice Connection (same role, new ufrag/pwd, fresh TURN credentials)
behind the existing RTCIceGatherer/RTCIceTransport *before* the stock offer/answer round,
which then publishes the new credentials and candidates; the DTLS session above is untouched
(same certificate, no new handshake). Every generation feeds one receive queue, so the DTLS
reader keeps reading whichever path delivers. When the new connection's checks succeed, the
transport sends and receives through it and the old one is retired, its queue detached first
so that closing it cannot end the DTLS reader. Gathering for the new generation goes through
the TrickleGatherer, so the answer (or offer) never waits for STUN/TURN.

The private aiortc/aioice attributes used here are named in internals.py;
tests/test_ice_restart.py covers the behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from aioice import Connection, TransportPolicy
from aiortc import RTCIceServer, RTCIceTransport, RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.rtcicetransport import RTCIceParameters, connection_kwargs

from framewire.media import internals as private
from framewire.media.gathering import TrickleGatherer
from framewire.media.signaling import InvalidOffer

Datagram = tuple[bytes, int] | None
GATHER_POLL = 0.02


class RestartConflict(Exception):
    """The connection is not in a state that can restart (ICE has not connected yet)."""


class InboundQueue(asyncio.Queue[Datagram]):
    """The receive queue every ICE generation of one transport feeds; remembers when data last
    arrived, which is how a dead path shows (consent only expires after ~30 s)."""

    last: float | None = None

    def put_nowait(self, item: Datagram) -> None:
        if item is not None:
            self.last = time.monotonic()
        super().put_nowait(item)


class _Path:
    """The ICE generations behind one RTCIceTransport."""

    def __init__(self, transport: RTCIceTransport, gatherer: TrickleGatherer | None) -> None:
        self.transport = transport
        self.gatherer = gatherer
        self.inbound = InboundQueue()
        self.active: Connection = private.TRANSPORT_CONNECTION.get(transport)
        private.CONN_QUEUE.set(self.active, self.inbound)
        self.pending: Connection | None = None
        self.checks: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    def begin(self, servers: list[RTCIceServer], policy: TransportPolicy | None) -> None:
        """Put a new generation behind the transport; the round that follows publishes it."""
        old = self.active
        new = Connection(
            ice_controlling=old.ice_controlling,
            transport_policy=private.CONN_TRANSPORT_POLICY.get(old) if policy is None else policy,
            use_ipv4=private.CONN_USE_IPV4.get(old),
            use_ipv6=private.CONN_USE_IPV6.get(old),
            **connection_kwargs(servers),
        )
        private.CONN_QUEUE.set(new, self.inbound)
        # The old path may be dead: its consent expiry must not close it (and the DTLS reader
        # with it) while the new one forms. The restart's own timeout bounds this window.
        consent = private.CONN_CONSENT_TASK.get(old)
        if consent is not None:
            consent.cancel()
        abandoned = self.pending
        self.pending = new
        self._watch(new)
        ice_gatherer = self.transport.iceGatherer
        private.GATHERER_REMOTE_END.set(ice_gatherer, False)
        private.set_gatherer_state(ice_gatherer, "new")
        if abandoned is not None:
            self._drop(abandoned)

    def rollback(self) -> None:
        """Undo `begin` after the round failed: the active generation stays."""
        if self.pending is not None:
            abandoned, self.pending = self.pending, None
            self._watch(self.active)
            private.set_gatherer_state(self.transport.iceGatherer, "completed")
            self._drop(abandoned)

    def start_checks(
        self, remote: RTCIceParameters, timeout: float, on_failure: Callable[[], None]
    ) -> None:
        new = self.pending
        assert new is not None
        new.remote_is_lite = remote.iceLite
        new.remote_username = remote.usernameFragment
        new.remote_password = remote.password
        if self.checks is not None:
            self.checks.cancel()
        self.checks = asyncio.get_running_loop().create_task(
            self._connect(new, timeout, on_failure)
        )

    async def _connect(
        self, new: Connection, timeout: float, on_failure: Callable[[], None]
    ) -> None:
        try:
            await asyncio.wait_for(self._connect_when_gathered(new), timeout)
        except (ConnectionError, TimeoutError):
            if self.pending is new:
                on_failure()
            return
        if self.pending is not new:
            return
        private.TRANSPORT_SEND.set(self.transport, new.send)
        private.TRANSPORT_RECV.set(self.transport, new.recv)
        old, self.active, self.pending = self.active, new, None
        await _retire(old)

    async def _connect_when_gathered(self, new: Connection) -> None:
        """Checks need a local candidate (aioice fails an empty check list at once, which is
        why aiortc only starts ICE with one); relay-only candidates come a little later."""
        while not private.CONN_LOCAL_CANDIDATES.get(new):
            if self.transport.iceGatherer.state == "completed":
                raise ConnectionError("no local ICE candidates were gathered")
            await asyncio.sleep(GATHER_POLL)
        await new.connect()

    def _watch(self, conn: Connection) -> None:
        """Point the transport (and its gatherer) at `conn`, with the transport's monitor
        watching it instead of the previous one, so closing the previous one can't fail it."""
        transport = self.transport
        monitor = private.TRANSPORT_MONITOR_TASK.get(transport)
        if monitor is not None:
            monitor.cancel()
        private.CONN_EVENT_WAITER.set(private.TRANSPORT_CONNECTION.get(transport), None)
        private.TRANSPORT_CONNECTION.set(transport, conn)
        private.GATHERER_CONNECTION.set(transport.iceGatherer, conn)
        private.TRANSPORT_MONITOR_TASK.set(
            transport, asyncio.ensure_future(private.TRANSPORT_MONITOR.get(transport)())
        )

    def _drop(self, conn: Connection) -> None:
        task = asyncio.get_running_loop().create_task(_retire(conn))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def close(self) -> None:
        """Close every generation the transport no longer points at (it closes its own)."""
        if self.checks is not None:
            self.checks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.checks
        for conn in (self.active, self.pending):
            if conn is not None and conn is not private.TRANSPORT_CONNECTION.get(self.transport):
                await _retire(conn)
        if self._retiring:
            await asyncio.wait(self._retiring)


async def _retire(conn: Connection) -> None:
    """Close an old generation without its close reaching the shared queue."""
    private.CONN_QUEUE.set(conn, asyncio.Queue())
    await conn.close()


def _fingerprints(media: aiortc_sdp.MediaDescription) -> set[tuple[str, str]]:
    if media.dtls is None:
        return set()
    return {(f.algorithm.lower(), f.value.upper()) for f in media.dtls.fingerprints}


def _trickle_gatherer_of(transport: RTCIceTransport) -> TrickleGatherer | None:
    owner = getattr(transport.iceGatherer.gather, "__self__", None)
    return owner if isinstance(owner, TrickleGatherer) else None


class IceRestarter:
    """In-place ICE restarts of one peer connection. Create it right after the first
    offer/answer round (before ICE connects); gatherers wrapped by `install_trickle` gather
    each new generation without blocking the round."""

    def __init__(
        self, pc: RTCPeerConnection, timeout: float, on_failure: Callable[[], None]
    ) -> None:
        self._pc = pc
        self._timeout = timeout
        self._on_failure = on_failure
        self._paths = [_Path(t, _trickle_gatherer_of(t)) for t in private.ice_transports(pc)]

    @property
    def restarting(self) -> bool:
        """A restart's new path has not connected yet."""
        return any(p.pending is not None for p in self._paths)

    def seconds_since_inbound(self) -> float | None:
        """Seconds the quietest transport has gone without data from the peer; None until
        every transport has received some."""
        stamps = [p.inbound.last for p in self._paths]
        if any(s is None for s in stamps):
            return None
        return time.monotonic() - min(s for s in stamps if s is not None)

    async def answer(self, offer_sdp: str, servers: list[RTCIceServer]) -> str:
        """Answerer: apply a re-offer carrying new ICE credentials; return the answer SDP
        (new ufrag/pwd, same DTLS fingerprint) without waiting for gathering to end."""
        remote = self._check_offer(offer_sdp)
        await self._begin(servers, None)
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        except BaseException:
            self._rollback()
            raise
        self._start_checks(remote)
        return str(self._pc.localDescription.sdp)

    async def offer(
        self, servers: list[RTCIceServer], policy: TransportPolicy | None = None
    ) -> str:
        """Offerer: a restart offer (new ufrag/pwd), optionally under another transport policy
        (as `setConfiguration` + `restartIce()` in a browser); follow with `accept(answer)`."""
        await self._begin(servers, policy)
        try:
            await self._pc.setLocalDescription(await self._pc.createOffer())
        except BaseException:
            self._rollback()
            raise
        return str(self._pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        """Offerer: apply the answer to `offer()` and start checks on the new path."""
        remote = self._remote_ice(aiortc_sdp.SessionDescription.parse(answer_sdp))
        await self._pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        self._start_checks(remote)

    def _check_offer(self, offer_sdp: str) -> dict[RTCIceTransport, RTCIceParameters]:
        """A re-offer must keep the media sections and the DTLS certificate (no new handshake
        happens) and change the ICE credentials."""
        try:
            offer = aiortc_sdp.SessionDescription.parse(offer_sdp)
        except (ValueError, KeyError, IndexError) as exc:
            raise InvalidOffer(f"invalid SDP offer: {exc}") from exc
        current = self._pc.remoteDescription
        assert current is not None
        before = aiortc_sdp.SessionDescription.parse(current.sdp)
        if [(m.kind, m.rtp.muxId) for m in offer.media] != [
            (m.kind, m.rtp.muxId) for m in before.media
        ]:
            raise InvalidOffer("an ICE restart offer must keep the session's media sections")
        for old, new in zip(before.media, offer.media, strict=True):
            if new.ice is None or not new.ice.usernameFragment or not new.ice.password:
                raise InvalidOffer("Missing ice-ufrag attribute in the SDP offer")
            if old.ice is not None and new.ice.usernameFragment == old.ice.usernameFragment:
                raise InvalidOffer("an ICE restart offer needs a new ice-ufrag and ice-pwd")
            if _fingerprints(new) != _fingerprints(old):
                raise InvalidOffer("an ICE restart offer must keep the DTLS fingerprint")
        return self._remote_ice(offer)

    def _remote_ice(
        self, description: aiortc_sdp.SessionDescription
    ) -> dict[RTCIceTransport, RTCIceParameters]:
        remote: dict[RTCIceTransport, RTCIceParameters] = {}
        for media in description.media:
            transport = self._ice_transport_of(media.rtp.muxId, media.kind)
            if transport is not None and transport not in remote and media.ice is not None:
                remote[transport] = media.ice
        return remote

    def _ice_transport_of(self, mid: str | None, kind: str) -> RTCIceTransport | None:
        if kind == "application":
            sctp = self._pc.sctp
            return None if sctp is None else sctp.transport.transport
        for transceiver in self._pc.getTransceivers():
            if transceiver.mid == mid:
                return transceiver.receiver.transport.transport
        return None

    async def _begin(self, servers: list[RTCIceServer], policy: TransportPolicy | None) -> None:
        for path in self._paths:
            if path.transport.state != "completed":
                raise RestartConflict("ICE has not connected yet: trickle candidates instead")
        for path in self._paths:
            if path.gatherer is not None:
                await path.gatherer.close()  # stop the previous generation's late gathering
            path.begin(servers, policy)

    def _rollback(self) -> None:
        for path in self._paths:
            path.rollback()

    def _start_checks(self, remote: dict[RTCIceTransport, RTCIceParameters]) -> None:
        for path in self._paths:
            params = remote.get(path.transport)
            if params is None:
                raise InvalidOffer("the description has no ICE credentials for a transport")
            path.start_checks(params, self._timeout, self._on_failure)

    async def close(self) -> None:
        """Before the peer connection closes: stop checks, close superseded generations."""
        for path in self._paths:
            await path.close()


def with_ice_credentials(description: str, ufrag: str, pwd: str) -> str:
    """`description` with new ICE credentials and none of its candidates: the re-offer an
    RFC 8840 restart fragment stands for (WHIP, RFC 9725 §4.3.2), or the answer a fragment
    answer stands for on the client's side."""
    lines: list[str] = []
    for line in description.replace("\r\n", "\n").split("\n"):
        if line.startswith("a=ice-ufrag:"):
            line = f"a=ice-ufrag:{ufrag}"
        elif line.startswith("a=ice-pwd:"):
            line = f"a=ice-pwd:{pwd}"
        elif line.startswith(("a=candidate:", "a=end-of-candidates")):
            continue
        lines.append(line)
    return "\r\n".join(lines)


def answer_fragment(answer_sdp: str) -> str:
    """An answer as the `application/trickle-ice-sdpfrag` body of a WHIP restart response:
    ICE credentials, the BUNDLE group, and the first m-section's mid and candidates."""
    out: list[str] = []
    media: list[str] = []
    sections = 0
    for line in answer_sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            sections += 1
            if sections == 1:
                media.append(line)
        elif line.startswith(("a=ice-ufrag:", "a=ice-pwd:")):
            if line not in out:
                out.append(line)
        elif line.startswith("a=group:BUNDLE") and sections == 0:
            out.append(line)
        elif sections == 1 and line.startswith(("a=mid:", "a=candidate:", "a=end-of-candidates")):
            media.append(line)
    return "\r\n".join(out + media) + "\r\n"
