"""The latency path around the model: frames released on their RTP marker bit, a steady encoder
bitrate, and returned video at the model's size and rate whatever the client sends."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from aiortc import RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.media.codecs import BitrateGovernor, BitratePolicy
from framewire.media.probe import count_keyframes
from framewire.models.base import ModelSpec
from framewire.models.passthrough import Passthrough
from framewire.models.registry import ModelRegistry
from framewire.rtc.jitter import HOLE_TIMEOUT, MarkerJitterBuffer
from tests.peers import ClientPeer
from tests.servers import framewire
from tests.sessions import SESSIONS
from tests.stamped import stamp_of, stamped_pattern, stamped_peer

# --- the jitter buffer ------------------------------------------------------------------------


def rtp(sequence: int, timestamp: int, data: bytes, marker: bool = False) -> RtpPacket:
    packet = RtpPacket(
        payload_type=96, marker=int(marker), sequence_number=sequence % 65536, timestamp=timestamp
    )
    packet._data = data  # type: ignore[attr-defined]  # what aiortc's depayloader leaves
    return packet


def frame_of(index: int, size: int, first_sequence: int, marker: bool = True) -> list[RtpPacket]:
    """Frame `index` as `size` packets, the last one marked (as VP8 and H.264 senders do)."""
    return [
        rtp(first_sequence + i, 3000 * index, bytes([index % 256, i]), marker and i == size - 1)
        for i in range(size)
    ]


def feed(buffer: JitterBuffer, packets: list[RtpPacket]) -> list[tuple[bool, JitterFrame | None]]:
    return [buffer.add(packet) for packet in packets]


def test_a_complete_frame_is_released_on_its_marker_packet() -> None:
    first = frame_of(1, 3, 100)
    second = frame_of(2, 2, 103)

    ours = feed(MarkerJitterBuffer(), first)
    stock = feed(JitterBuffer(capacity=512, is_video=True), first)

    released = ours[-1][1]
    assert released is not None and released.data == b"\x01\x00\x01\x01\x01\x02"
    assert released.timestamp == 3000
    assert stock[-1][1] is None  # aiortc holds it until the next frame starts
    assert [frame for _, frame in ours[:-1]] == [None, None]
    assert all(frame is None for _, frame in feed(MarkerJitterBuffer(), second[:1]))


def test_a_frame_missing_a_packet_waits_for_its_retransmission() -> None:
    buffer = MarkerJitterBuffer()
    a, b, c = frame_of(1, 3, 100)

    assert feed(buffer, [a, c]) == [(False, None), (False, None)]
    ((_, released),) = feed(buffer, [b])  # the NACKed packet arrives

    assert released is not None and released.data == b"\x01\x00\x01\x01\x01\x02"


def test_a_jump_past_the_buffer_still_asks_for_a_keyframe() -> None:
    buffer = MarkerJitterBuffer()
    feed(buffer, frame_of(1, 2, 100)[:1])
    pli, _ = buffer.add(rtp(100 + 600, 9000, b"x"))
    assert pli


def traffic(seed: int, markers: bool) -> tuple[list[RtpPacket], dict[int, bytes]]:
    """A stream of frames with local reordering, losses and sequence jumps; with each frame's
    complete data by timestamp."""
    rng = random.Random(seed)
    packets, complete, sequence = [], {}, rng.randrange(65536)
    for index in range(1, rng.randrange(2, 40)):
        frame = frame_of(index, rng.randrange(1, 6), sequence, markers)
        complete[frame[0].timestamp] = b"".join(p._data for p in frame)  # type: ignore[attr-defined]
        packets += frame
        sequence += len(frame) + (rng.choice([3, 200, 600, 40000]) if rng.random() < 0.05 else 0)
    for i in range(len(packets) - 1):
        if rng.random() < 0.1:
            packets[i], packets[i + 1] = packets[i + 1], packets[i]
    return [p for p in packets if rng.random() > 0.05], complete


def released(results: list[tuple[bool, JitterFrame | None]]) -> list[tuple[int, int, bytes]]:
    return [(i, f.timestamp, f.data) for i, (_, f) in enumerate(results) if f is not None]


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=2**32))
def test_without_marker_bits_the_buffer_is_aiortcs(seed: int) -> None:
    packets, _ = traffic(seed, markers=False)
    stock = feed(JitterBuffer(capacity=512, is_video=True), packets)
    ours = feed(MarkerJitterBuffer(), packets)
    assert [(pli, f and (f.timestamp, f.data)) for pli, f in ours] == [
        (pli, f and (f.timestamp, f.data)) for pli, f in stock
    ]


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=2**32))
def test_every_complete_frame_aiortc_delivers_comes_no_later_and_in_order(seed: int) -> None:
    """Until aiortc's buffer first overflows (its PLI: from there it has thrown data away and
    the two buffers' windows differ), with no time passing (so no hole is skipped)."""
    packets, complete = traffic(seed, markers=True)
    stock_results = feed(JitterBuffer(capacity=512, is_video=True), packets)
    overflow = next((i for i, (pli, _) in enumerate(stock_results) if pli), len(packets))
    stock = released(stock_results)
    ours = released(feed(MarkerJitterBuffer(clock=lambda: 0.0), packets))
    when = {(ts, data): i for i, ts, data in ours}
    wanted = [(i, ts, data) for i, ts, data in stock if complete[ts] == data and i < overflow]
    for i, ts, data in wanted:
        assert when.get((ts, data), len(packets)) <= i
    delivered = [(ts, data) for _, ts, data in ours]
    assert sorted(wanted, key=lambda w: delivered.index(w[1:])) == wanted


def test_a_lost_packet_stalls_frames_only_until_the_hole_timeout_then_asks_for_a_keyframe() -> None:
    now = [0.0]
    buffer = MarkerJitterBuffer(clock=lambda: now[0])
    first, second, third, fourth = (frame_of(i, 3, 100 + 3 * (i - 1)) for i in range(1, 5))
    assert feed(buffer, first)[-1][1] is not None
    lost = second[1]  # never retransmitted
    assert all(f is None for _, f in feed(buffer, [p for p in second if p is not lost]))
    assert all(f is None for _, f in feed(buffer, third))  # stock aiortc: stuck ~512 packets
    now[0] += HOLE_TIMEOUT
    results = feed(buffer, fourth)
    pli, frame = results[-1]
    assert pli and frame is not None
    assert frame.data == b"".join(p._data for p in third)  # type: ignore[attr-defined]
    pli, frame = buffer.add(rtp(112, 15000, b"\x05\x00", True))
    assert frame is not None and frame.timestamp == fourth[0].timestamp


# --- the bitrate policy -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def estimates(
    governor: BitrateGovernor, clock: Clock, bps: int, seconds: float, sending: int | None = None
) -> int:
    """Offer `bps` every 0.5 s (aiortc's REMB cadence) for `seconds` while the encoder sends
    `sending` bps (default: the applied rate); the last applied rate."""
    applied = governor.applied
    for _ in range(round(seconds / 0.5)):
        clock.now += 0.5
        governor.sent(round((governor.applied if sending is None else sending) * 0.5 / 8))
        applied = governor.offer(bps)
    return applied


def test_the_rate_starts_at_a_target_for_the_model_size() -> None:
    policy = BitratePolicy.for_video(1280, 720, 20)
    assert 1_000_000 <= policy.target <= 2_000_000
    assert BitratePolicy.for_video(640, 360, 20).target < policy.target
    assert BitrateGovernor(policy).applied == policy.target


def test_a_receivers_ramp_and_brief_dips_do_not_touch_the_encoder() -> None:
    clock = Clock()
    governor = BitrateGovernor(BitratePolicy.for_video(1280, 720, 20), clock)
    target = governor.applied
    bps = 1_270_000  # as measured from an aiortc receiver: from the rate it gets, +4% a REMB
    while bps < 2_800_000:
        estimates(governor, clock, bps, 0.5)
        bps = bps * 104 // 100
    estimates(governor, clock, bps, 5)
    bps = 1_060_000  # an overuse detection (0.85 x throughput), then the climb back
    while bps < target:
        estimates(governor, clock, bps, 0.5)
        bps = bps * 104 // 100
    estimates(governor, clock, target // 3, 1.5)  # a dip shorter than hold_down
    estimates(governor, clock, target, 5)
    assert governor.changes == 0 and governor.applied == target


def test_sustained_congestion_lowers_the_rate_once_and_recovery_restores_it() -> None:
    clock = Clock()
    policy = BitratePolicy.for_video(1280, 720, 20)
    governor = BitrateGovernor(policy, clock)

    assert estimates(governor, clock, 600_000, 3) == 600_000
    assert estimates(governor, clock, 580_000, 10) == 600_000  # inside the band: no rebuild
    assert estimates(governor, clock, 10_000, 3) == policy.minimum
    assert estimates(governor, clock, 5_000_000, 6) == policy.target == policy.maximum
    assert governor.changes == 3


def test_an_encoder_sending_below_its_target_is_not_talked_down() -> None:
    clock = Clock()
    governor = BitrateGovernor(BitratePolicy.for_video(320, 240, 20), clock)
    # A simple picture: the encoder makes 25 kbps of its 123, and REMB follows that.
    estimates(governor, clock, 31_000, 10, sending=25_000)
    assert governor.changes == 0
    assert estimates(governor, clock, 20_000, 3, sending=25_000) == governor.policy.minimum


# --- end to end -------------------------------------------------------------------------------

LOOP_SPEC = ModelSpec("loop", fps=20, width=320, height=240, accepts_image=True, backend="x")


def loop_registry() -> ModelRegistry:
    """`passthrough` at the client's own size, so returned pixels compare one to one."""
    registry = ModelRegistry()
    registry.register(LOOP_SPEC, Passthrough)
    return registry


def prefer(peer: ClientPeer, mime_type: str) -> None:
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    peer.pc.getTransceivers()[0].setCodecPreferences(
        [c for c in capabilities if c.mimeType == mime_type]
    )


@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
async def test_the_server_gets_every_frame_intact_and_the_encoder_stays_steady(
    codec: str,
) -> None:
    async with framewire(registry=loop_registry()) as server, server.client() as http:
        peer = stamped_peer()
        prefer(peer, codec)
        keyframes = count_keyframes(peer.pc)
        offer = await peer.offer()
        created = await http.post(
            SESSIONS, json={"model": "loop", "sdp": {"type": "offer", "sdp": offer}}
        )
        assert created.status_code == 201, created.text
        assert codec.split("/")[1] in created.json()["sdp"]["sdp"]
        await peer.accept(created.json()["sdp"]["sdp"])
        await peer.wait_frames(1)
        await peer.wait_frames(100)  # 5 s: stock aiortc has rebuilt its encoder once by then

        frames = list(peer.frames)
        stats = (await http.get(f"{SESSIONS}/{created.json()['session_id']}")).json()["stats"]
        stamps = [stamp_of(frame) for frame in frames]
        numbers = [number for number in stamps if number is not None]
        assert numbers == stamps  # every frame back carries a readable stamp
        assert numbers == sorted(set(numbers))  # no duplicates, no reordering
        # A frame missing from the run back was dropped by the server on purpose (the pacer,
        # or a newer frame replacing it on a busy machine), never lost on the way.
        missing = numbers[-1] - numbers[0] + 1 - len(numbers)
        assert missing <= stats["frames_dropped"], (missing, stats)
        for frame, number in zip(frames, numbers, strict=True):
            sent = stamped_pattern(320, 240, number)
            assert np.abs(frame.astype(int) - sent).mean() < 10
        if codec == "video/VP8":  # (x264 adds IDR frames of its own at scene cuts)
            assert keyframes.keyframes == 1  # no rebuild: the receiver's REMB moved nothing
        await peer.close()


async def test_returned_video_has_the_models_size_and_rate_whatever_the_client_sends() -> None:
    async with framewire() as server, server.client() as http:
        peer = ClientPeer(fps=30, width=320, height=240)
        offer = await peer.offer()
        created = await http.post(
            SESSIONS, json={"model": "lucy_2_rt", "sdp": {"type": "offer", "sdp": offer}}
        )
        assert created.status_code == 201, created.text
        await peer.accept(created.json()["sdp"]["sdp"])
        frame = await peer.wait_frames(5)
        assert frame.shape == (720, 1280, 3)

        start = time.monotonic()
        await peer.wait_frames(60, timeout=15)  # at 4 fps or more
        rate = 60 / (time.monotonic() - start)
        assert rate <= 20 * 1.05 + 1 / 3  # the model's 20 fps, never the client's 30
        await peer.close()
