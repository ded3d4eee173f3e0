"""The SSE stream: ids, keep-alives, Last-Event-ID replay with nothing lost or repeated."""

from __future__ import annotations

import asyncio
import time

from tests.servers import framewire
from tests.sessions import open_session
from tests.sse import EventReader


async def test_reconnect_with_last_event_id_gets_exactly_the_missed_events() -> None:
    async with framewire(tick_interval=0.5) as server, server.client() as http:
        session = await open_session(server, http)
        await session.events.wait_for("generation_tick", count=2)
        await session.events.stop()
        seen = list(session.events.events)
        last_id = seen[-1].id
        assert last_id is not None
        # While disconnected, more ticks happen.
        watcher = EventReader(session.events.client, session.events.url).start()
        await watcher.wait_for("generation_tick", count=5)
        resumed = EventReader(
            session.events.client, session.events.url, last_event_id=last_id
        ).start()
        await resumed.wait_for("generation_tick", count=2)
        assert (await http.delete(session.url)).status_code == 200
        await resumed.wait_closed()
        await watcher.wait_closed()
        # Everything after last_id, in order, once: old + resumed == the full stream.
        combined = [(e.id, e.event, e.data) for e in seen + resumed.events]
        full = [(e.id, e.event, e.data) for e in watcher.events]
        assert combined == full
        ids = [e.id for e in watcher.events]
        assert ids == list(range(1, len(ids) + 1))
        assert resumed.events[0].id == last_id + 1
        await session.close()


async def test_idle_streams_get_comment_keepalives() -> None:
    async with framewire(keepalive_interval=0.3) as server, server.client() as http:
        session = await open_session(server, http, connect=False)
        await session.events.wait_for("ice-candidate")
        before = session.events.raw.count(": keep-alive")
        deadline = time.monotonic() + 20  # 0.3 s apart, however loaded the machine is
        while session.events.raw.count(": keep-alive") < before + 2:
            assert time.monotonic() < deadline, "no keep-alives on an idle stream"
            await asyncio.sleep(0.05)
        await http.delete(session.url)
        await session.close()


async def test_a_session_holds_a_bounded_number_of_event_streams() -> None:
    async with framewire() as server, server.client() as http:
        session = await open_session(server, http, connect=False)
        await session.events.wait_for("ice-candidate")
        extra = [EventReader(session.events.client, session.events.url).start() for _ in range(3)]
        for reader in extra:
            await reader.wait_for("ice-candidate")
        refused = await session.events.client.get(session.events.url)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert refused.json()["type"].endswith("/too-many-streams")
        await extra[0].stop()
        streams = server.app.state.sse_streams
        deadline = time.monotonic() + 20
        while streams[session.id] >= 4:  # the server has noticed the dropped stream
            assert time.monotonic() < deadline, "a dropped stream still counts"
            await asyncio.sleep(0.05)
        again = EventReader(session.events.client, session.events.url).start()
        await again.wait_for("ice-candidate")
        await http.delete(session.url)
        for reader in [*extra[1:], again]:
            await reader.wait_closed()
        await session.close()
