"""Send path: an explicit, per-leg bitrate policy for aiortc's video encoders.

aiortc sets its encoder's `target_bitrate` from every REMB the receiver sends, and its VP8 and
H.264 encoders rebuild the codec, forcing a keyframe (30-60 ms at 720p), whenever the target
moves more than 10% from the running codec's rate. Stock, REMB ramps in ~4% steps every 0.5 s:
16 rebuilds in the first 30 s of a 720p20 stream on loopback, ~9 a minute after. Each leg instead
gets a `BitratePolicy` sized for the model's output: start at a target for that resolution and
rate, follow the receiver's estimate only within [minimum, maximum], and only once it has stayed
outside a hysteresis band for a while, so each applied change is one deliberate rebuild
(measured: none in 60 s at 720p20 on loopback, bench/latency.py).

`install_bitrate_policy` puts a governed encoder on each video sender of one peer connection
(its private `__encoder`, created lazily by the stock sender otherwise); aiortc's module
constants are never touched.

Encoder settings are realtime ones, chosen from numbers (1280x720, one thread, CPU per
frame): libx264 with aiortc's settings runs its default `medium` preset (18 ms); `ultrafast`
with `zerolatency` takes 2.5 ms. libvpx with aiortc's `cpu-used -6` and its denoiser
(`noise-sensitivity 4`) takes 8.7-9.4 ms; without the denoiser (the model's output is clean)
and at `cpu-used -12`, 5.2 ms (in the same run as 9.4). Each encoder runs one thread: a
server's cores are better spent on more sessions than on splitting one frame.

`prefer_codecs` orders the negotiated video codecs by `FRAMEWIRE_VIDEO_CODECS`, so the answer
(whose first codec both sides send) picks the cheapest codec the client offered.
"""

from __future__ import annotations

import fractions
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
from aiortc import RTCPeerConnection
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, convert_timebase
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame
from av.video.codeccontext import VideoCodecContext

from framewire.media.probe import is_keyframe
from framewire.rtc import internals as private

MIN_KEYFRAME_INTERVAL = 0.5
"""Seconds between keyframes forced by the receiver's requests."""
VIDEO_CODECS = {"h264": "video/h264", "vp8": "video/vp8"}
"""The video codecs framewire sends and receives: `FRAMEWIRE_VIDEO_CODECS` names -> MIME types."""
H264_PRESET = "ultrafast"
VP8_CPU_USED = "-12"
ENCODER_THREADS = 1

BITS_PER_PIXEL = 0.08
"""Target bits per pixel per frame: ~1.5 Mbit/s at 1280x720@20, fine for realtime VP8/H.264."""


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded video frame as RTP payloads, with its 90 kHz timestamp."""

    payloads: list[bytes]
    timestamp: int
    keyframe: bool
    index: int


@dataclass(frozen=True)
class BitratePolicy:
    """Bits per second for one video stream, and how reluctantly to change them."""

    target: int
    minimum: int
    maximum: int
    fps: int
    """The stream's frame rate: the encoders' rate control sizes each frame's bits by it (at
    aiortc's nominal 30 for a 20 fps stream, libx264 sent 63 % of the target, libvpx 133 %)."""
    hysteresis: float = 0.25
    """Relative distance from the applied rate an estimate must keep before it counts."""
    hold_down: float = 2.0
    """Seconds an estimate must stay below the band before the rate drops (congestion)."""
    hold_up: float = 5.0
    """Seconds an estimate must stay above the band before the rate rises (after a drop)."""

    @classmethod
    def for_video(cls, width: int, height: int, fps: int) -> BitratePolicy:
        """A policy for a stream of this size and rate: the target (from bits per pixel) is also
        the ceiling, since more does not look better in realtime and every step up is a rebuild;
        under congestion the rate may fall to a quarter of it."""
        target = max(100_000, round(width * height * fps * BITS_PER_PIXEL))
        return cls(target=target, minimum=target // 4, maximum=target, fps=fps)


class BitrateGovernor:
    """Turns a stream of receiver estimates into rare, deliberate rate changes.

    An estimate below the band lowers the rate only while it is also below what the encoder is
    actually sending: aiortc's REMB follows the throughput it sees, so a sender that undershoots
    its target (a simple picture) would otherwise be talked down for nothing."""

    def __init__(self, policy: BitratePolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.applied = policy.target
        self.changes = 0
        self._clock = clock
        self._outside_since: float | None = None
        self._outside_above = False
        self._sent_bytes = 0
        self._measured: tuple[float, int] | None = None

    def sent(self, size: int) -> None:
        """The encoder produced `size` bytes (called from its worker thread)."""
        self._sent_bytes += size

    def _sending_rate(self, now: float) -> float | None:
        """Bits per second sent since the previous estimate."""
        previous, self._measured = self._measured, (now, self._sent_bytes)
        if previous is None or now <= previous[0]:
            return None
        return (self._sent_bytes - previous[1]) * 8 / (now - previous[0])

    def offer(self, estimate: int) -> int:
        """Take one receiver estimate (bps); return the rate the encoder should use."""
        policy = self.policy
        now = self._clock()
        sending = self._sending_rate(now)
        wanted = max(policy.minimum, min(estimate, policy.maximum))
        above = wanted > self.applied * (1 + policy.hysteresis)
        below = wanted < self.applied * (1 - policy.hysteresis)
        if not above and not (below and sending is not None and estimate < sending):
            self._outside_since = None
            return self.applied
        if self._outside_since is None or above != self._outside_above:
            self._outside_since, self._outside_above = now, above
        if now - self._outside_since >= (policy.hold_up if above else policy.hold_down):
            self.applied = wanted
            self.changes += 1
            self._outside_since = None
        return self.applied


class GovernedEncoder(Encoder):
    """Mixin for aiortc's encoders: the target bitrate is the governor's, not the last REMB's,
    and every encoded frame's size is reported to it. Keyframes the receiver asks for (PLI/FIR)
    are made at most every MIN_KEYFRAME_INTERVAL: a PLI storm costs no more than that."""

    governor: BitrateGovernor
    mime: str
    on_encoded: Callable[[float, bool], None] | None = None
    """Told each frame's encode time (seconds) and whether it was a keyframe (codec thread)."""
    _forced_at = float("-inf")
    _slot = -1

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """The frame's RTP payloads and its RTP timestamp: its own pts on the 90 kHz clock.
        (The codec rebases the frame to its time base of one frame interval, and aiortc's VP8
        encoder read the timestamp after that: two frames closer than an interval, as a loaded
        machine makes them, went out with the same timestamp, and receivers that group
        packets by timestamp decoded the pair as one broken frame until the next keyframe.)"""
        started = time.perf_counter()
        assert isinstance(frame, av.VideoFrame) and frame.pts is not None and frame.time_base
        timestamp = convert_timebase(frame.pts, frame.time_base, VIDEO_TIME_BASE)
        self._to_codec_clock(frame, timestamp)
        if force_keyframe:
            now = time.monotonic()
            force_keyframe = now - self._forced_at >= MIN_KEYFRAME_INTERVAL
            self._forced_at = now if force_keyframe else self._forced_at
        # The mixin always precedes a concrete aiortc encoder in the MRO.
        payloads, _ = super().encode(frame, force_keyframe)  # type: ignore[safe-super]
        self.governor.sent(sum(len(p) for p in payloads))
        if self.on_encoded is not None:
            self.on_encoded(time.perf_counter() - started, self._keyframe(payloads))
        return payloads, timestamp

    def _to_codec_clock(self, frame: av.VideoFrame, timestamp: int) -> None:
        """Put `frame` on the codec's clock, in frame intervals of the stream's rate (its rate
        control sizes each frame by that rate): the interval of its capture time, strictly
        after the previous frame's, so the codec never sees a pts twice."""
        fps = self.governor.policy.fps
        self._slot = max(self._slot + 1, round(timestamp * fps / VIDEO_CLOCK_RATE))
        frame.pts, frame.time_base = self._slot, fractions.Fraction(1, fps)

    def _keyframe(self, payloads: list[bytes]) -> bool:
        """Whether the frame just encoded is a keyframe (its packets, depayloaded)."""
        if self.mime == "video/vp8":
            return bool(payloads) and is_keyframe(self.mime, vp8_depayload(payloads[0]))
        nal_starts = (d for d in map(h264_depayload, payloads) if d.startswith(b"\0\0\0\1"))
        return any(is_keyframe(self.mime, d) for d in nal_starts)  # FU-A middles have no start

    @property
    def target_bitrate(self) -> int:
        return self.governor.applied

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self.governor.offer(bitrate)
        self._rate_settled()

    def _rate_settled(self) -> None:
        """Called after each estimate, when the governor's rate may have changed."""


def needs_codec(codec: VideoCodecContext | None, frame: av.VideoFrame, bitrate: int) -> bool:
    """Whether an encoder must (re)build its codec for this frame: none yet, another size, or a
    rate more than 10% off (aiortc's own rule, so its check then finds nothing to rebuild)."""
    return (
        codec is None
        or frame.width != codec.width
        or frame.height != codec.height
        or not codec.bit_rate
        or abs(bitrate - codec.bit_rate) / codec.bit_rate > 0.1
    )


def _codec(name: str, frame: av.VideoFrame, bitrate: int, fps: int) -> VideoCodecContext:
    codec = av.CodecContext.create(name, "w")
    assert isinstance(codec, VideoCodecContext)
    codec.width, codec.height = frame.width, frame.height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.framerate = fractions.Fraction(fps, 1)
    codec.time_base = fractions.Fraction(1, fps)
    codec.thread_count = ENCODER_THREADS
    return codec


def realtime_vp8(frame: av.VideoFrame, bitrate: int, fps: int) -> VideoCodecContext:
    """aiortc's libvpx settings (CBR, no lag, one partition), faster: no denoiser, and
    `cpu-used` VP8_CPU_USED; rate control at the stream's real `fps`."""
    codec = _codec("libvpx", frame, bitrate, fps)
    codec.gop_size = 3000
    codec.qmin, codec.qmax = 2, 56
    codec.options = {
        "bufsize": str(bitrate),
        "cpu-used": VP8_CPU_USED,
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "noise-sensitivity": "0",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
    }
    return codec


def realtime_h264(frame: av.VideoFrame, bitrate: int, fps: int) -> VideoCodecContext:
    """aiortc's libx264 settings (baseline, level 3.1, `zerolatency`) at preset H264_PRESET;
    rate control at the stream's real `fps`."""
    codec = _codec("libx264", frame, bitrate, fps)
    codec.options = {"level": "31", "tune": "zerolatency", "preset": H264_PRESET}
    codec.profile = "Baseline"
    return codec


class GovernedVp8Encoder(GovernedEncoder, Vp8Encoder):
    mime = "video/vp8"

    def __init__(self, governor: BitrateGovernor) -> None:
        super().__init__()
        self.governor = governor
        self._rate_settled()

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, av.VideoFrame)
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        if needs_codec(self.codec, frame, self.target_bitrate):
            self.codec = realtime_vp8(frame, self.target_bitrate, self.governor.policy.fps)
        return super().encode(frame, force_keyframe)

    def _rate_settled(self) -> None:
        # The stock encoder also reads its private copy (the rate-control buffer size).
        private.VP8_TARGET_BITRATE.set(self, self.governor.applied)


class GovernedH264Encoder(GovernedEncoder, H264Encoder):
    mime = "video/h264"

    def __init__(self, governor: BitrateGovernor) -> None:
        super().__init__()
        self.governor = governor

    def _encode_frame(self, frame: av.VideoFrame, force_keyframe: bool) -> Iterator[bytes]:
        if needs_codec(self.codec, frame, self.target_bitrate):
            self.buffer_data, self.buffer_pts = b"", None
            self.codec = realtime_h264(frame, self.target_bitrate, self.governor.policy.fps)
        return super()._encode_frame(frame, force_keyframe)


_ENCODERS: dict[str, Callable[[BitrateGovernor], GovernedEncoder]] = {
    "video/vp8": GovernedVp8Encoder,
    "video/h264": GovernedH264Encoder,
}


def governed_encoder(
    mime_type: str,
    policy: BitratePolicy,
    on_encoded: Callable[[float, bool], None] | None = None,
) -> GovernedEncoder | None:
    """An aiortc encoder for `mime_type` (`video/VP8`, `video/H264`) governed by `policy`;
    `on_encoded` is told each frame's encode time and whether it was a keyframe."""
    make = _ENCODERS.get(mime_type.lower())
    if make is None:
        return None
    encoder = make(BitrateGovernor(policy))
    encoder.on_encoded = on_encoded
    return encoder


def install_bitrate_policy(
    pc: RTCPeerConnection,
    policy: BitratePolicy,
    on_encoded: Callable[[float, bool], None] | None = None,
) -> list[BitrateGovernor]:
    """Give each video sender of `pc` an encoder governed by `policy`, for the codec the
    negotiation chose. Call after the local description is set, before media flows."""
    governors = []
    for transceiver in pc.getTransceivers():
        sender = transceiver.sender
        codecs = private.TRANSCEIVER_CODECS.get(transceiver)
        if transceiver.kind != "video" or sender.track is None or not codecs:
            continue
        encoder = governed_encoder(codecs[0].mimeType, policy, on_encoded)
        if encoder is None:
            continue
        private.SENDER_ENCODER.set(sender, encoder)
        governors.append(encoder.governor)
    return governors


def _rank(codec: RTCRtpCodecParameters, order: list[str], payload_types: dict[int, str]) -> float:
    """A codec's place in `order` (MIME types); RTX sorts right behind the codec it repairs."""
    mime = codec.mimeType.lower()
    if mime == "video/rtx":
        apt = codec.parameters.get("apt")
        mime = payload_types.get(apt, "") if isinstance(apt, int) else ""
        return (order.index(mime) if mime in order else len(order)) + 0.5
    return order.index(mime) if mime in order else len(order)


def prefer_codecs(pc: RTCPeerConnection, names: list[str]) -> bool:
    """Order each video transceiver's negotiated codecs by `names` (`FRAMEWIRE_VIDEO_CODECS`),
    keeping only codecs named there (and their RTX). Call after the remote offer is set, before
    the answer is created; a codec the client did not offer cannot be chosen. False when a video
    transceiver is left with none."""
    order = [VIDEO_CODECS[name] for name in names]
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "video":
            continue
        codecs = private.TRANSCEIVER_CODECS.get(transceiver)
        types = {c.payloadType: c.mimeType.lower() for c in codecs if c.payloadType is not None}
        ranked = sorted(codecs, key=lambda c: _rank(c, order, types))
        kept = [c for c in ranked if _rank(c, order, types) < len(order)]
        if not kept:
            return False
        private.TRANSCEIVER_CODECS.set(transceiver, kept)
    return True
