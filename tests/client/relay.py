"""A TCP relay in front of a test server, so a test can cut a client's connection the way a
network does, without touching the client's code."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

EVENTS_PATH = b"/events?"


@dataclass
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    is_event_stream: bool = False


@dataclass
class Relay:
    """Forwards every connection to `target`; remembers the SSE requests it carried."""

    target: str
    url: str = ""
    event_requests: list[dict[str, str]] = field(default_factory=list)
    """Headers (lower-case names) of each SSE request, in order."""
    _links: list[_Link] = field(default_factory=list)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parts = urlsplit(self.target)
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
        link = _Link(writer, up_writer)
        self._links.append(link)
        await asyncio.gather(
            self._pump(reader, up_writer, link), self._pump(up_reader, writer, None)
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link | None
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                if link is not None and chunk.startswith(b"GET ") and EVENTS_PATH in chunk:
                    link.is_event_stream = True
                    self.event_requests.append(_headers(chunk))
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def cut_event_streams(self) -> int:
        """Abort every connection that carried an SSE request, both ways; how many."""
        cut = [link for link in self._links if link.is_event_stream]
        for link in cut:
            link.client.transport.abort()
            link.upstream.transport.abort()
            self._links.remove(link)
        return len(cut)


def _headers(request: bytes) -> dict[str, str]:
    head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in head)
    }


@contextlib.asynccontextmanager
async def relay(target: str) -> AsyncIterator[Relay]:
    state = Relay(target)
    server = await asyncio.start_server(state._handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        for link in state._links:
            link.client.transport.abort()
            link.upstream.transport.abort()
        server.close()
        await server.wait_closed()
