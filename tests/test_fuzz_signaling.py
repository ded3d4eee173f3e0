"""Property tests over the signalling parsers, through HTTP against a real server: mutated real
offers (Chromium's, aiortc's), truncations, huge attributes, non-UTF-8 bytes, 10,000 candidates,
random candidate strings, RTCIceCandidateInit objects and trickle-ice-sdpfrag bodies. Every answer
is a success for what is still valid or a problem for what is not: never a 5xx, never a hang,
and the server serves a real session afterwards."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.peers import ClientPeer
from tests.servers import API_KEY
from tests.threaded import threaded_framewire

SESSIONS = "/v1/realtime/sessions"
OFFER = "/v1/webrtc/offer"
SDPFRAG = "application/trickle-ice-sdpfrag"
CHROMIUM_OFFER = (Path(__file__).parent / "data" / "chromium_offer.sdp").read_bytes().decode()
"""Recorded from Debian's Chromium (audio + video transceivers); its mDNS host names replaced
by 127.0.0.1 so that no candidate points off this machine."""
SLOW = 10.0
"""Seconds any answer may take: more is a hang."""
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROBLEM = {400, 413, 415, 422}
STALE = {409, 412}
"""A PATCH naming another ICE generation (ufrag) than the session's (412), or new credentials
(an ICE restart) before ICE ever connected (409): problems too."""


async def aiortc_offer() -> str:
    peer = ClientPeer()
    sdp = await peer.offer()
    await peer.close()
    return sdp


@pytest.fixture(scope="module")
def offers() -> list[str]:
    return [CHROMIUM_OFFER, asyncio.run(aiortc_offer())]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with (
        threaded_framewire(
            max_sessions=40,
            key_concurrency=40,
            ice_connect_timeout=600.0,
            inactivity_timeout=600.0,
            ice_restart_timeout=600.0,
        ) as url,
        httpx.Client(base_url=url, headers={"x-api-key": API_KEY}, timeout=SLOW) as client,
    ):
        yield client


def assert_problem(response: httpx.Response, allowed: set[int]) -> None:
    assert response.status_code in allowed, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["status"] == response.status_code and body["detail"]
        assert "Traceback" not in response.text


def assert_leg_error(response: httpx.Response, allowed: set[int]) -> None:
    assert response.status_code in allowed, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "instance_id"} and body["error"], body


def assert_healthy(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


# --- strategies ---------------------------------------------------------------------------

NASTY_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200
) | st.sampled_from(["", " ", "\r\n", "\x00", "a=", "m=", "candidate:", "\ufeff", "é" * 50])


@st.composite
def mutated_sdp(draw: st.DrawFn, base: str) -> str:
    """A real offer after one to three edits of the kinds broken clients and attackers make."""
    lines = base.split("\r\n")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        edit = draw(
            st.sampled_from(
                ["drop", "duplicate", "insert", "huge", "garble", "swap", "truncate", "candidates"]
            )
        )
        if edit == "drop" and lines:
            del lines[at]
        elif edit == "duplicate" and lines:
            lines.insert(at, lines[at])
        elif edit == "insert":
            lines.insert(at, draw(NASTY_TEXT))
        elif edit == "huge":
            size = draw(st.sampled_from([1_000, 20_000, 70_000]))
            lines.insert(
                at, "a=" + draw(st.sampled_from(["fmtp:96 ", "ssrc:1 cname:", "x-"])) + "A" * size
            )
        elif edit == "garble" and lines and lines[at]:
            line = lines[at]
            pos = draw(st.integers(0, len(line) - 1))
            lines[at] = line[:pos] + draw(NASTY_TEXT) + line[pos + 1 :]
        elif edit == "swap" and len(lines) > 1:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif edit == "truncate":
            text = "\r\n".join(lines)
            return text[: draw(st.integers(0, len(text)))]
        elif edit == "candidates":
            count = draw(st.sampled_from([100, 1_000, 10_000]))
            lines[at:at] = [
                f"a=candidate:{i} 1 udp 2122260223 127.0.0.1 {1024 + i % 60000} typ host"
                for i in range(count)
            ]
    return "\r\n".join(lines)


CANDIDATE_WORDS = st.sampled_from(
    [
        "candidate:1",
        "1",
        "2",
        "udp",
        "tcp",
        "UDP",
        "sctp",
        "typ",
        "host",
        "srflx",
        "relay",
        "prflx",
        "raddr",
        "rport",
        "generation",
        "0",
        "tcptype",
        "active",
        "127.0.0.1",
        "::1",
        "300.1.1.1",
        "-5",
        "65536",
        "99999999999999999999",
        "2122260223",
        "x.local",
        "",
    ]
)
CANDIDATE_STRINGS = (
    st.lists(CANDIDATE_WORDS, max_size=14).map(" ".join)
    | NASTY_TEXT
    | st.just("candidate:1 1 udp 2122260223 127.0.0.1 9 typ host")
    | st.integers(0, 70_000).map(lambda n: "candidate:1 1 udp 1 127.0.0.1 9 typ host " + "x" * n)
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | NASTY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NASTY_TEXT, inner, max_size=4),
    max_leaves=8,
)
CANDIDATE_INITS = (
    st.fixed_dictionaries(
        {},
        optional={
            "candidate": CANDIDATE_STRINGS | JSON_VALUES,
            "sdpMid": st.sampled_from(["0", "1", "", "video"]) | JSON_VALUES,
            "sdpMLineIndex": st.integers(-3, 3) | JSON_VALUES,
            "usernameFragment": st.none() | NASTY_TEXT,
        },
    )
    | JSON_VALUES
)
SDPFRAG_LINES = (
    CANDIDATE_STRINGS.map(lambda c: "a=" + c)
    | st.sampled_from(
        [
            "a=ice-ufrag:abcd",
            "a=ice-pwd:" + "p" * 24,
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=mid:0",
            "a=end-of-candidates",
            "a=ice-options:trickle",
        ]
    )
    | NASTY_TEXT
)
SDPFRAG_BODIES = st.lists(SDPFRAG_LINES, max_size=12).map(
    lambda lines: "\r\n".join(lines).encode()
) | st.binary(max_size=2_000)


def non_utf8(text: str, junk: bytes) -> bytes:
    """A JSON create body whose SDP has raw bytes that are not UTF-8 spliced in."""
    body = json.dumps({"model": "passthrough", "sdp": {"type": "offer", "sdp": text}}).encode()
    middle = len(body) // 2
    return body[:middle] + junk + body[middle:]


# --- offers -------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_mutated_offers_never_break_session_create(
    http: httpx.Client, offers: list[str], data: st.DataObject
) -> None:
    sdp = data.draw(mutated_sdp(data.draw(st.sampled_from(offers))))
    response = http.post(
        SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": sdp}}
    )
    assert_problem(response, {201} | PROBLEM)
    if response.status_code == 201:
        assert http.delete(response.headers["location"]).status_code == 200
    assert_healthy(http)


@FUZZ
@given(data=st.data())
def test_mutated_offers_never_break_leg_create(
    http: httpx.Client, offers: list[str], data: st.DataObject
) -> None:
    sdp = data.draw(mutated_sdp(data.draw(st.sampled_from(offers))))
    response = http.post(OFFER, json={"sdp": sdp})
    assert_leg_error(response, {200} | PROBLEM)
    if response.status_code == 200:
        leg = response.json()["leg_id"]
        assert http.delete(f"/v1/legs/{leg}").status_code == 200
    assert_healthy(http)


@FUZZ
@given(junk=st.binary(min_size=1, max_size=64).filter(lambda b: not _utf8(b)))
def test_non_utf8_bodies_are_400(http: httpx.Client, offers: list[str], junk: bytes) -> None:
    for path in (SESSIONS, OFFER):
        response = http.post(
            path, content=non_utf8(offers[1], junk), headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
    assert_healthy(http)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


# --- candidates ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def session(http: httpx.Client, offers: list[str]) -> str:
    """A session (not connected) whose candidates the tests below PATCH."""
    response = http.post(
        SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offers[1]}}
    )
    assert response.status_code == 201, response.text
    return str(response.headers["location"])


@pytest.fixture(scope="module")
def leg(http: httpx.Client, offers: list[str]) -> str:
    response = http.post(OFFER, json={"sdp": offers[1]})
    assert response.status_code == 200, response.text
    return f"/v1/legs/{response.json()['leg_id']}/ice-candidates"


@FUZZ
@given(candidates=st.lists(CANDIDATE_INITS, max_size=6) | JSON_VALUES)
def test_fuzzed_trickle_json_is_a_problem_or_accepted(
    http: httpx.Client, session: str, candidates: Any
) -> None:
    response = http.patch(session, json={"candidates": candidates}, headers={"if-match": "*"})
    assert_problem(response, {204} | STALE | PROBLEM)
    assert http.get(session).json()["status"] == "active"


@FUZZ
@given(body=SDPFRAG_BODIES)
def test_fuzzed_sdpfrag_bodies_are_a_problem_or_accepted(
    http: httpx.Client, session: str, body: bytes
) -> None:
    response = http.patch(session, content=body, headers={"if-match": "*", "content-type": SDPFRAG})
    assert_problem(response, {200, 204} | STALE | PROBLEM)
    assert http.get(session).json()["status"] == "active"


@FUZZ
@given(init=CANDIDATE_INITS)
def test_fuzzed_leg_candidates_are_an_error_or_added(
    http: httpx.Client, leg: str, init: Any
) -> None:
    response = http.post(leg, json=init)
    assert_leg_error(response, {200} | PROBLEM)
    assert_healthy(http)


def test_ten_thousand_candidates_are_refused_at_once(http: httpx.Client, session: str) -> None:
    many = [
        {
            "candidate": f"candidate:{i} 1 udp 2122260223 127.0.0.1 {1024 + i} typ host",
            "sdpMid": "0",
        }
        for i in range(10_000)
    ]
    response = http.patch(session, json={"candidates": many}, headers={"if-match": "*"})
    assert_problem(response, {413})
    frag = "\r\n".join("a=" + c["candidate"] for c in many).encode()
    response = http.patch(session, content=frag, headers={"if-match": "*", "content-type": SDPFRAG})
    assert_problem(response, {413})
    assert http.get(session).json()["status"] == "active"


def test_the_server_still_streams_after_the_fuzzing(http: httpx.Client, offers: list[str]) -> None:
    """Runs last in this module: after everything above, a real peer still gets frames back."""

    async def stream() -> None:
        peer = ClientPeer()
        try:
            async with httpx.AsyncClient(
                base_url=str(http.base_url), headers={"x-api-key": API_KEY}, timeout=SLOW
            ) as client:
                offer = await peer.offer()
                response = await client.post(
                    SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
                )
                assert response.status_code == 201, response.text
                await peer.accept(response.json()["sdp"]["sdp"])
                await peer.wait_frames(10)
                assert (await client.delete(response.headers["location"])).status_code == 200
        finally:
            await peer.close()

    asyncio.run(stream())
    assert_healthy(http)
