"""Slow and stuck HTTP clients are bounded by the connection timeouts (FRAMEWIRE_HTTP_*): a
slowloris sending headers a byte at a time, a body that never finishes and a connection that
sends nothing get a 408 problem and are closed; an SSE reader that never reads is cut off. None of
them stalls the event loop: a session keeps streaming and health checks answer meanwhile."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from urllib.parse import urlsplit

import pytest

from tests.servers import Running, framewire
from tests.sessions import open_session

TIMEOUT = 1.0
"""Each of the three HTTP timeouts, in these tests."""
MARGIN = 3.0
"""Allowed lateness of a timeout on a loaded machine."""


@pytest.fixture
async def server() -> AsyncIterator[Running]:
    async with framewire(
        http_header_timeout=TIMEOUT, http_body_timeout=TIMEOUT, http_write_timeout=TIMEOUT
    ) as running:
        yield running


async def connect(
    server: Running, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(server.url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    return await asyncio.open_connection(sock=sock)


async def answer_then_close(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed."""
    data = b""
    async with asyncio.timeout(TIMEOUT + MARGIN):
        try:
            while chunk := await reader.read(65536):
                data += chunk
        except ConnectionError:
            pass
    return data, time.monotonic()


async def while_serving(server: Running, slow: Awaitable[None]) -> float:
    """Run `slow` while a session streams; return the slowest health check meanwhile."""
    async with server.client() as http:
        session = await open_session(server, http)
        await session.peer.wait_frames(5)
        task = asyncio.ensure_future(slow)
        worst = 0.0
        while not task.done():
            start = time.monotonic()
            assert (await http.get("/healthz")).status_code == 200
            worst = max(worst, time.monotonic() - start)
            await asyncio.sleep(0.1)
        await task
        await session.peer.wait_frames(10, timeout=5.0)
        await session.close()
    return worst


def assert_408(data: bytes) -> None:
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"application/problem+json" in head and b'"status": 408' in body


async def test_slowloris_headers_are_cut_off_with_408(server: Running) -> None:
    async def one() -> None:
        reader, writer = await connect(server)
        request = b"POST /v1/realtime/sessions HTTP/1.1\r\nHost: x\r\nx-api-key: "
        start = time.monotonic()
        answer = asyncio.ensure_future(answer_then_close(reader))
        for byte in request:
            if answer.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.25)
        data, closed = await answer
        assert_408(data)
        assert closed - start < TIMEOUT + MARGIN
        writer.close()

    async def twenty() -> None:
        await asyncio.gather(*(one() for _ in range(20)))

    assert await while_serving(server, twenty()) < 1.0


async def test_a_body_that_never_finishes_is_cut_off_with_408(server: Running) -> None:
    async def one() -> None:
        reader, writer = await connect(server)
        writer.write(
            b"POST /v1/realtime/sessions HTTP/1.1\r\nHost: x\r\nx-api-key: test-key-1\r\n"
            b'content-type: application/json\r\ncontent-length: 100000\r\n\r\n{"model": '
        )
        start = time.monotonic()
        data, closed = await answer_then_close(reader)
        assert_408(data)
        assert closed - start < TIMEOUT + MARGIN
        writer.close()

    assert await while_serving(server, one()) < 1.0


async def test_a_connection_that_sends_nothing_is_closed(server: Running) -> None:
    reader, writer = await connect(server)
    start = time.monotonic()
    data, closed = await answer_then_close(reader)
    assert_408(data)
    assert closed - start < TIMEOUT + MARGIN
    writer.close()


async def test_an_sse_reader_that_never_reads_is_dropped_and_the_session_goes_on(
    server: Running,
) -> None:
    async with server.client() as http:
        session = await open_session(server, http)
        await session.peer.wait_frames(5)
        token = session.body["events"]["event_token"]
        reader, writer = await connect(server, rcvbuf=4096)
        writer.write(
            f"GET {session.url}/events?event_token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        streams = server.app.state.sse_streams
        deadline = time.monotonic() + 10
        while streams[session.id] < 2:  # the stuck reader's stream started (and ours)
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        # a long session's worth of events (4 MB), appended where every stream reads them
        log = server.app.state.sessions.ports.events
        for _ in range(1000):
            await log.append(session.id, "generation_tick", {"seconds": 0, "pad": "x" * 4000})
        deadline = time.monotonic() + TIMEOUT + MARGIN + 5
        while streams.get(session.id, 0) > 1:
            assert time.monotonic() < deadline, "the stuck reader's stream is still open"
            await asyncio.sleep(0.1)
        # the connection was cut: reading now reaches its end
        try:
            while await asyncio.wait_for(reader.read(1 << 20), 5.0):
                pass
        except ConnectionResetError:
            pass
        writer.close()
        # the session and its good reader are unaffected
        assert (await http.get(session.url)).json()["status"] == "active"
        await session.peer.wait_frames(10)
        tick = await session.events.wait_for("generation_tick", count=1001)
        assert tick.data.get("pad") == "x" * 4000 or len(session.events.events) > 1000
        await session.close()
