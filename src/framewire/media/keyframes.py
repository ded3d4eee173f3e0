"""Which encoded frames are keyframes, read from the RTP payloads aiortc's encoders return.

aiortc reports no `keyFramesEncoded`; the first packet of each frame says it: VP8's payload
header P bit (RFC 7741 §4.3) is 0 on a key frame; an H.264 key frame carries an IDR slice (NAL
type 5), alone, in a STAP-A aggregate or as the start of a FU-A (RFC 6184 §5)."""

from __future__ import annotations

H264_IDR = 5
H264_SPS = 7
H264_STAP_A = 24
H264_FU_A = 28


def vp8_keyframe(payload: bytes) -> bool:
    """True when `payload`, a frame's first VP8 RTP payload, starts a key frame."""
    if len(payload) < 2:
        return False
    at = 1
    if payload[0] & 0x80:  # X: an extension byte follows
        ext = payload[1]
        at = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            at += 2 if at < len(payload) and payload[at] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            at += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            at += 1
    start = payload[0] & 0x10 and payload[0] & 0x0F == 0
    return bool(start) and at < len(payload) and payload[at] & 0x01 == 0


def h264_keyframe(payloads: list[bytes]) -> bool:
    """True when the frame's packets carry an IDR slice or a parameter set."""
    for payload in payloads:
        if not payload:
            continue
        kind = payload[0] & 0x1F
        if kind in (H264_IDR, H264_SPS):
            return True
        if kind == H264_FU_A and len(payload) > 1 and payload[1] & 0x80:
            if payload[1] & 0x1F == H264_IDR:
                return True
        if kind == H264_STAP_A and _stap_has_keyframe(payload):
            return True
    return False


def _stap_has_keyframe(payload: bytes) -> bool:
    at = 1
    while at + 2 < len(payload):
        size = int.from_bytes(payload[at : at + 2], "big")
        if payload[at + 2] & 0x1F in (H264_IDR, H264_SPS):
            return True
        at += 2 + size
    return False


def is_keyframe(mime: str, payloads: list[bytes]) -> bool:
    if not payloads:
        return False
    if mime == "video/vp8":
        return vp8_keyframe(payloads[0])
    return h264_keyframe(payloads)
