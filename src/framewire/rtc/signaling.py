"""Checks and conversions at the media layer's signalling edge: offers and ICE candidates."""

from __future__ import annotations

import re
from typing import Any

from aioice import Candidate
from aiortc import RTCIceCandidate, RTCIceServer
from aiortc.rtcicetransport import candidate_from_aioice
from aiortc.sdp import SessionDescription, candidate_from_sdp, candidate_to_sdp

MAX_SDP_BYTES = 64 * 1024
MAX_OFFER_CANDIDATES = 100
"""Candidates one offer may carry: each becomes checks the server sends; browsers send a few."""
MAX_TRICKLE_CANDIDATES = 100
"""Candidates one trickle request may carry (a JSON PATCH, an SDP fragment)."""
MAX_LEG_CANDIDATES = 500
"""Trickled candidates one leg takes over its life (restarts included); more are ignored."""
SDP_LINE = re.compile(r"^[a-z]=")
PARSE_FAULTS = (
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    TypeError,
    StopIteration,
    AssertionError,
)
"""What aiortc's SDP parser raises on input it cannot read (found by fuzzing offers)."""


class InvalidOffer(ValueError):
    """The SDP offer can't be used; the message says why in words a client developer can act on."""


class InvalidCandidate(ValueError):
    """An ICE candidate of the wrong shape."""


def check_offer(sdp: str) -> None:
    """Reject what aiortc would choke on or silently mishandle, before any resource exists."""
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise InvalidOffer(f"SDP offer exceeds {MAX_SDP_BYTES} bytes")
    lines = [line.strip() for line in sdp.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or not lines[0].startswith("v=0"):
        raise InvalidOffer("SDP offer must start with 'v=0'")
    check_lines(lines)
    media = [line for line in lines if line.startswith("m=")]
    if not any(line.startswith("m=video ") for line in media):
        raise InvalidOffer("SDP offer has no video m-line")
    for attribute in ("ice-ufrag", "ice-pwd", "fingerprint"):
        if not any(line.startswith(f"a={attribute}:") for line in lines):
            raise InvalidOffer(f"Missing {attribute} attribute in the SDP offer")
    try:
        SessionDescription.parse(sdp)
    except PARSE_FAULTS as exc:
        raise InvalidOffer(f"invalid SDP offer: {exc!r}") from exc


def check_lines(lines: list[str]) -> None:
    """The shape aiortc's parser assumes but does not check: `<type>=<value>` lines, one
    session, distinct m-section ids, a bounded number of candidates."""
    for number, line in enumerate(lines, 1):
        if not SDP_LINE.match(line):
            raise InvalidOffer(f"SDP line {number} is not '<type>=<value>': {line[:80]!r}")
    if sum(line.startswith("v=") for line in lines) != 1:
        raise InvalidOffer("an SDP offer holds exactly one session ('v=' line)")
    mids = [line[len("a=mid:") :] for line in lines if line.startswith("a=mid:")]
    if len(mids) != len(set(mids)):
        raise InvalidOffer("the SDP offer repeats an 'a=mid' value")
    for line in lines:
        if line.startswith("a=group:BUNDLE") and not set(line.split()[1:]) <= set(mids):
            raise InvalidOffer("the SDP offer bundles an 'a=mid' it does not have")
    if sum(line.startswith("a=candidate:") for line in lines) > MAX_OFFER_CANDIDATES:
        raise InvalidOffer(f"the SDP offer has more than {MAX_OFFER_CANDIDATES} candidates")


VIDEO_CODECS = ("VP8", "H264")
"""Video codecs the server encodes and decodes."""


def video_codecs(sdp: str) -> list[str]:
    """The encoding names (upper case) an SDP's video m-sections list, in their order."""
    names: list[str] = []
    in_video = False
    for raw in sdp.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if line.startswith("m="):
            in_video = line.startswith("m=video ")
        elif in_video and line.startswith("a=rtpmap:"):
            _, _, encoding = line.partition(" ")
            names.append(encoding.split("/")[0].upper())
    return names


def has_usable_video(sdp: str) -> bool:
    """Whether an offer lists a video codec the server can use (VP8 or H.264)."""
    return any(name in VIDEO_CODECS for name in video_codecs(sdp))


def parse_candidate(init: Any) -> RTCIceCandidate:
    """An RTCIceCandidateInit (as `RTCIceCandidate.toJSON()` gives it) -> aiortc candidate."""
    if not isinstance(init, dict):
        raise InvalidCandidate("a candidate must be an object or null")
    text = init.get("candidate")
    mid = init.get("sdpMid")
    index = init.get("sdpMLineIndex")
    if not isinstance(text, str) or not text.strip():
        raise InvalidCandidate("'candidate' must be a non-empty string")
    if mid is not None and not isinstance(mid, str):
        raise InvalidCandidate("'sdpMid' must be a string")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise InvalidCandidate("'sdpMLineIndex' must be a non-negative integer")
    if mid is None and index is None:
        raise InvalidCandidate("a candidate needs 'sdpMid' or 'sdpMLineIndex'")
    text = text.strip()
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    bits = text.split()
    if len(bits) < 8 or bits[6] != "typ" or not bits[1].isdigit() or not bits[5].isdigit():
        raise InvalidCandidate(f"unparseable candidate: {init.get('candidate')!r}")
    try:
        candidate = candidate_from_sdp(text)
    except (ValueError, IndexError) as exc:
        raise InvalidCandidate(f"unparseable candidate: {init.get('candidate')!r}") from exc
    if candidate.protocol.lower() not in ("udp", "tcp"):
        raise InvalidCandidate(f"unsupported candidate transport {candidate.protocol!r}")
    candidate.sdpMid = mid
    candidate.sdpMLineIndex = index
    return candidate


def candidate_json(candidate: Candidate, mid: str | None, index: int) -> dict[str, Any]:
    """An aioice candidate as RTCIceCandidateInit, ready for `addIceCandidate`."""
    return {
        "candidate": "candidate:" + candidate_to_sdp(candidate_from_aioice(candidate)),
        "sdpMid": mid,
        "sdpMLineIndex": index,
    }


def parse_sdpfrag(text: str) -> tuple[str | None, str | None, list[dict[str, Any] | None]]:
    """An RFC 8840 `application/trickle-ice-sdpfrag` body, as WHIP clients PATCH it:
    (ice-ufrag, ice-pwd, candidates as RTCIceCandidateInit, `None` for end-of-candidates)."""
    ufrag = pwd = None
    mid: str | None = None
    index = -1
    candidates: list[dict[str, Any] | None] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("m="):
            index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        elif line.startswith("a=ice-ufrag:"):
            ufrag = line[len("a=ice-ufrag:") :]
        elif line.startswith("a=ice-pwd:"):
            pwd = line[len("a=ice-pwd:") :]
        elif line.startswith("a=candidate:"):
            candidates.append(
                {"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": max(index, 0)}
            )
        elif line == "a=end-of-candidates":
            candidates.append(None)
        elif not line[1:2] == "=":
            raise InvalidCandidate(f"not an SDP fragment line: {line[:80]!r}")
    return ufrag, pwd, candidates


def rtc_ice_servers(servers: list[dict[str, Any]]) -> list[RTCIceServer]:
    """aiortc's ICE servers from their JSON form (`urls`, `username`, `credential`)."""
    return [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in servers
    ]
