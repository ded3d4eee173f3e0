"""Canaries for every private aiortc/aioice attribute framewire's media layer uses (they are all
named in framewire.rtc.internals): each one is read from a real object of the installed
aiortc/aioice, taken from two peers that connected and exchanged video. If an upgrade renames
one, its canary fails here, and the media layer raises InternalsChanged instead of silently
creating a new attribute nothing reads."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from aioice import Connection
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from framewire.rtc import internals
from framewire.rtc.internals import InternalsChanged, Private
from tests.peers import ClientPeer, PatternTrack


class RecordingJitterBuffer(JitterBuffer):
    """aiortc's video buffer, keeping the last packet the receiver put into it."""

    last: RtpPacket | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        RecordingJitterBuffer.last = packet
        return super().add(packet)


async def connected_world() -> dict[type, Any]:
    """Real objects of every class that owns a private attribute we use, after a connection
    that carried video both ways."""
    caller, callee = ClientPeer(), RTCPeerConnection()

    @callee.on("track")
    def echo(track: Any) -> None:
        callee.addTrack(PatternTrack())

    try:
        offer = await caller.offer()
        await callee.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        receiver = callee.getTransceivers()[0].receiver
        internals.RECEIVER_JITTER_BUFFER.set(
            receiver, RecordingJitterBuffer(capacity=512, is_video=True)
        )
        await callee.setLocalDescription(await callee.createAnswer())
        await caller.accept(callee.localDescription.sdp)
        await caller.wait_frames(3)
        transceiver = caller.pc.getTransceivers()[0]
        transport = transceiver.receiver.transport.transport
        assert RecordingJitterBuffer.last is not None
        return {
            RTCPeerConnection: caller.pc,
            type(transport.iceGatherer): transport.iceGatherer,
            type(transport): transport,
            Connection: transport._connection,
            RTCRtpReceiver: transceiver.receiver,
            type(transceiver.sender): transceiver.sender,
            type(transceiver): transceiver,
            type(transceiver.receiver.transport): transceiver.receiver.transport,
            JitterBuffer: JitterBuffer(capacity=16),
            RtpPacket: RecordingJitterBuffer.last,
            Vp8Encoder: Vp8Encoder(),
        }
    finally:
        await caller.close()
        await callee.close()


@pytest.fixture(scope="module")
def world() -> dict[type, Any]:
    return asyncio.run(connected_world())


@pytest.mark.parametrize("attribute", Private.registry, ids=lambda a: a.label)
def test_canary(attribute: Private[Any], world: dict[type, Any]) -> None:
    if attribute.on_class:
        assert hasattr(attribute.owner, attribute.name)
    else:
        attribute.get(world[attribute.owner])


def test_no_other_module_names_a_private_aiortc_attribute() -> None:
    labels = [a.label for a in Private.registry]
    assert len(set(labels)) == len(labels), "an attribute is named twice"
    # A subclass's own reads (`self._origin`, `super()._remove_frame` in the jitter buffer) are
    # checked at construction and import.
    source = Path(internals.__file__).parent.parent
    names = {a.name for a in Private.registry}
    offenders = [
        f"{path.relative_to(source)}: {name}"
        for path in source.rglob("*.py")
        if path.name != "internals.py"
        for name in names
        if re.search(
            rf"""(?<!self)(?<!super\(\))\.{re.escape(name)}\b|['"]{re.escape(name)}['"]""",
            path.read_text(),
        )
    ]
    assert not offenders


def test_a_missing_attribute_is_a_clear_error_and_is_never_created() -> None:
    class Renamed:
        """An encoder whose private attribute has another name."""

    encoder = Renamed()
    with pytest.raises(InternalsChanged, match=r"Vp8Encoder\._Vp8Encoder__target_bitrate"):
        internals.VP8_TARGET_BITRATE.set(encoder, 1_000_000)
    assert not hasattr(encoder, "_Vp8Encoder__target_bitrate")
    with pytest.raises(InternalsChanged, match=r"aiortc 1\.16\.0"):
        Private(Vp8Encoder, "_no_such_method", on_class=True)
    assert all(a.name != "_no_such_method" for a in Private.registry)
