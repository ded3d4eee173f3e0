"""Every private aiortc/aioice attribute the media layer and the client use, named once.

aiortc 1.16 / aioice 0.13 are pinned (pyproject.toml, constraints.txt) because framewire reaches
past their public API in a few places: trickle gathering and the shared UDP port (gathering.py),
ICE restart in place (restart.py), marker release in the jitter buffer (jitter.py), governed
encoders (media/codecs.py), keyframe counting (media/probe.py), the selected candidate pair and
negotiated codec in a leg's stats (media/rtcstats.py), one encoder for many senders
(media/fanout.py), viewers' codecs (media/viewer.py), the DTLS role of answers (media/dtls.py),
decoding in the model's worker thread (media/inbound.py).
Nothing else in `framewire` names a private attribute of theirs; everything goes through a
`Private` below, which

- checks class-level attributes (methods) when this module is imported,
- reads an instance attribute before it writes it, so a renamed attribute raises
  `InternalsChanged` instead of silently creating a new one that nothing reads,
- raises `InternalsChanged`, naming the attribute and the pinned versions, on first use of a
  missing one.

tests/test_internals.py holds one canary per attribute against real aiortc objects.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar, cast

from aioice import Candidate, Connection
from aioice.ice import CandidatePair, StunProtocol, TransportPolicy
from aioice.turn import TurnTransport
from aiortc import (
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

PINNED = "aiortc 1.16.0 / aioice 0.13.0"
T = TypeVar("T")


class InternalsChanged(RuntimeError):
    """A private aiortc/aioice attribute framewire relies on is missing: the installed version
    is not the pinned one."""


class Private(Generic[T]):
    """One private attribute `name` of objects of class `owner`."""

    registry: list[Private[Any]] = []

    def __init__(self, owner: type, name: str, *, on_class: bool = False) -> None:
        self.owner = owner
        self.name = name
        self.on_class = on_class
        if on_class and not hasattr(owner, name):
            raise self.missing()
        Private.registry.append(self)

    @property
    def label(self) -> str:
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"

    def missing(self) -> InternalsChanged:
        return InternalsChanged(
            f"{self.label} is missing: framewire's media layer needs {PINNED} "
            "(install with `make install`, which applies constraints.txt)"
        )

    def get(self, obj: object) -> T:
        try:
            return cast(T, getattr(obj, self.name))
        except AttributeError:
            raise self.missing() from None

    def set(self, obj: object, value: T) -> None:
        """Write after reading: never creates an attribute the library does not have."""
        self.get(obj)
        setattr(obj, self.name, value)


def require(obj: object, *attributes: Private[Any]) -> None:
    """First-use check for attributes a subclass reads directly on its hot path."""
    for attribute in attributes:
        attribute.get(obj)


# RTCPeerConnection
PC_ICE_TRANSPORTS: Private[set[RTCIceTransport]] = Private(
    RTCPeerConnection, "_RTCPeerConnection__iceTransports"
)

# RTCIceGatherer / RTCIceTransport
GATHERER_SET_STATE: Private[Callable[[str], None]] = Private(
    RTCIceGatherer, "_RTCIceGatherer__setState", on_class=True
)
GATHERER_CONNECTION: Private[Connection] = Private(RTCIceGatherer, "_connection")
GATHERER_REMOTE_END: Private[bool] = Private(RTCIceGatherer, "_remote_candidates_end")
TRANSPORT_CONNECTION: Private[Connection] = Private(RTCIceTransport, "_connection")
TRANSPORT_MONITOR_TASK: Private[asyncio.Future[None] | None] = Private(
    RTCIceTransport, "_RTCIceTransport__monitor_task"
)
TRANSPORT_MONITOR: Private[Callable[[], Coroutine[Any, Any, None]]] = Private(
    RTCIceTransport, "_monitor", on_class=True
)
TRANSPORT_SEND: Private[Callable[[bytes], Coroutine[Any, Any, None]]] = Private(
    RTCIceTransport, "_send"
)
TRANSPORT_RECV: Private[Callable[[], Coroutine[Any, Any, bytes]]] = Private(
    RTCIceTransport, "_recv"
)

# aioice Connection
CONN_LOCAL_CANDIDATES: Private[list[Candidate]] = Private(Connection, "_local_candidates")
CONN_LOCAL_START: Private[bool] = Private(Connection, "_local_candidates_start")
CONN_LOCAL_END: Private[bool] = Private(Connection, "_local_candidates_end")
CONN_REMOTE_CANDIDATES: Private[list[Candidate]] = Private(Connection, "_remote_candidates")
CONN_NOMINATED: Private[dict[int, CandidatePair]] = Private(Connection, "_nominated")
CONN_TRANSPORT_POLICY: Private[TransportPolicy] = Private(Connection, "_transport_policy")
CONN_USE_IPV4: Private[bool] = Private(Connection, "_use_ipv4")
CONN_USE_IPV6: Private[bool] = Private(Connection, "_use_ipv6")
CONN_COMPONENTS: Private[set[int]] = Private(Connection, "_components")
CONN_PROTOCOLS: Private[list[StunProtocol]] = Private(Connection, "_protocols")
CONN_CLOSING: Private[bool] = Private(Connection, "_closing")
CONN_QUEUE: Private[asyncio.Queue[Any]] = Private(Connection, "_queue")
CONN_CONSENT_TASK: Private[asyncio.Task[None] | None] = Private(Connection, "_query_consent_task")
CONN_EVENT_WAITER: Private[asyncio.Future[Any] | None] = Private(Connection, "_event_waiter")
CONN_PAIR_REMOTE: Private[Callable[[Candidate], None]] = Private(
    Connection, "_pair_remote_candidate", on_class=True
)

# RTP receive path (jitter.py, probe.py)
RECEIVER_JITTER_BUFFER: Private[JitterBuffer] = Private(
    RTCRtpReceiver, "_RTCRtpReceiver__jitter_buffer"
)
RECEIVER_DECODER_QUEUE: Private[Any] = Private(RTCRtpReceiver, "_RTCRtpReceiver__decoder_queue")
"""Where a receiver puts complete encoded frames for its decoder thread (media/inbound.py takes
them instead)."""
RECEIVER_DECODER_ERROR: Private[threading.Event] = Private(
    RTCRtpReceiver, "_RTCRtpReceiver__decoder_error"
)
"""Set by a decoder that failed: the receiver asks the sender for a keyframe (PLI)."""
JITTER_ORIGIN: Private[int | None] = Private(JitterBuffer, "_origin")
JITTER_PACKETS: Private[list[RtpPacket | None]] = Private(JitterBuffer, "_packets")
JITTER_CAPACITY: Private[int] = Private(JitterBuffer, "_capacity")
JITTER_REMOVE_FRAME: Private[Callable[[int], Any]] = Private(
    JitterBuffer, "_remove_frame", on_class=True
)
PACKET_DATA: Private[bytes] = Private(RtpPacket, "_data")
"""The depayloaded bytes the receiver puts on each packet before the jitter buffer sees it."""

# RTP send path (codecs.py)
TRANSCEIVER_CODECS: Private[list[RTCRtpCodecParameters]] = Private(RTCRtpTransceiver, "_codecs")
SENDER_ENCODER: Private[Encoder | None] = Private(RTCRtpSender, "_RTCRtpSender__encoder")
VP8_TARGET_BITRATE: Private[int] = Private(Vp8Encoder, "_Vp8Encoder__target_bitrate")
SENDER_SEND_KEYFRAME: Private[Callable[[], None]] = Private(
    RTCRtpSender, "_send_keyframe", on_class=True
)
"""What a sender runs on a PLI/FIR (fanout.py routes it to the shared encoder)."""

# DTLS (dtls.py)
DTLS_ROLE: Private[str] = Private(RTCDtlsTransport, "_role")

# RTP send path, continued (codecs.py)
H264_ENCODE_FRAME: Private[Callable[..., Any]] = Private(
    H264Encoder, "_encode_frame", on_class=True
)
"""Overridden by the governed H.264 encoder to build its codec with realtime settings."""

# TURN (sockets.py: a relay allocation from a socket bound in the port range)
TURN_CONNECT: Private[Callable[[asyncio.DatagramProtocol], Coroutine[Any, Any, None]]] = Private(
    TurnTransport, "_connect", on_class=True
)


def ice_transports(pc: RTCPeerConnection) -> list[RTCIceTransport]:
    return list(PC_ICE_TRANSPORTS.get(pc))


def set_gatherer_state(gatherer: RTCIceGatherer, state: str) -> None:
    GATHERER_SET_STATE.get(gatherer)(state)
