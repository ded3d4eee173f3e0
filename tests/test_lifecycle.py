"""Every way a session ends goes through one path: reason, SSE order, summary, ledger."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from framewire.models.base import Frame, ModelSpec, StreamViolation
from framewire.models.registry import ModelRegistry
from framewire.state.memory import MemoryEventLog, MemoryState
from tests.servers import Running, framewire
from tests.sessions import Open, open_session

CREDIT = 100.0


class FailingModel:
    """A backend that works for `good` frames, then raises `error`."""

    def __init__(self, good: int, error: Exception) -> None:
        self.good, self.error, self.seen = good, error, 0

    def set_prompt(self, prompt: str) -> None:
        pass

    def set_image(self, image: Frame | None) -> None:
        pass

    def process(self, frame: Frame) -> Frame:
        self.seen += 1
        if self.seen > self.good:
            raise self.error
        return frame


def registry_with_failures() -> ModelRegistry:
    registry = ModelRegistry.default()
    registry.register(
        ModelSpec("unsafe", 20, 320, 240, False, "unsafe"),
        lambda spec: FailingModel(10, StreamViolation("nsfw frame")),
    )
    registry.register(
        ModelSpec("crashy", 20, 320, 240, False, "crashy"),
        lambda spec: FailingModel(10, RuntimeError("CUDA out of memory")),
    )
    return registry


async def balance(server: Running) -> float | None:
    service = server.app.state.sessions
    key_id = server.app.state.api_keys.identify("payer")
    result: float | None = await service.ports.accounts.balance(key_id)
    return result


async def ended(
    session: Open, server: Running, reason: str, timeout: float = 20.0
) -> dict[str, Any]:
    """Wait for the end; check the SSE order, the summary and the ledger."""
    end = await session.events.wait_for("generation_ended", timeout=timeout)
    await session.events.wait_closed()
    names = session.events.names()
    assert names[-1] == "generation_ended" and names.count("generation_ended") == 1
    if "generation_started" in names:
        assert names.index("generation_started") < names.index("generation_ended")
        ticks = [e.data["seconds"] for e in session.events.events if e.event == "generation_tick"]
        assert ticks == sorted(ticks)
        assert names[names.index("generation_started") :].count("generation_started") == 1
    assert session.events.raw.rstrip("\n").endswith("data:")
    async with server.client("payer") as http:
        summary = (await http.delete(session.url)).json()
    assert summary["reason"] == reason == end.data["reason"]
    assert summary["seconds"] == end.data["seconds"]
    assert summary["credits_charged"] == summary["seconds"]
    assert summary["credits_remaining"] == round(CREDIT - summary["seconds"], 3)
    assert abs(await balance(server) - (CREDIT - summary["seconds"])) < 1e-6  # type: ignore[operator]
    assert session.id not in server.app.state.sessions.live
    assert not server.app.state.legs.all()
    await session.close()
    return summary


def payer(**overrides: Any) -> Any:
    return framewire(api_keys={"payer": CREDIT}, **overrides)


async def test_delete_ends_with_disconnect_and_bills_generation_time() -> None:
    async with payer() as server, server.client("payer") as http:
        session = await open_session(server, http)
        await session.events.wait_for("generation_tick", count=2)
        deleted = await http.delete(session.url)
        assert deleted.status_code == 200
        summary = await ended(session, server, "disconnect")
        assert 2.0 <= summary["seconds"] < 4.0


async def test_client_closing_its_peer_connection_is_a_disconnect() -> None:
    async with payer() as server, server.client("payer") as http:
        session = await open_session(server, http)
        await session.events.wait_for("generation_started")
        await session.peer.pc.close()
        await ended(session, server, "disconnect")


async def test_max_duration_ends_with_timeout_at_expires_at() -> None:
    async with payer(max_duration=2.5) as server, server.client("payer") as http:
        session = await open_session(server, http)
        summary = await ended(session, server, "timeout")
        assert summary["seconds"] <= 2.5


async def test_running_out_of_credit_ends_with_insufficient_credits() -> None:
    async with framewire(api_keys={"payer": 2.0}) as server, server.client("payer") as http:
        session = await open_session(server, http)
        end = await session.events.wait_for("generation_ended", timeout=10)
        assert end.data["reason"] == "insufficient_credits"
        assert 1.9 <= end.data["seconds"] <= 2.3
        summary = (await http.delete(session.url)).json()
        assert summary["credits_remaining"] == 0
        refused = await http.post(
            "/v1/realtime/sessions",
            json={"model": "passthrough", "sdp": {"type": "offer", "sdp": "v=0"}},
        )
        assert refused.status_code == 402
        await session.close()


async def test_no_inbound_media_ends_with_inactivity() -> None:
    async with payer(inactivity_timeout=1.5) as server, server.client("payer") as http:
        session = await open_session(server, http)
        await session.events.wait_for("generation_started")
        session.peer.source.stop()
        await ended(session, server, "inactivity")


async def test_a_client_that_never_completes_ice_is_ended_with_ice_failure() -> None:
    async with payer(ice_connect_timeout=2.0) as server, server.client("payer") as http:
        session = await open_session(server, http, connect=False)
        await session.peer.pc.close()
        summary = await ended(session, server, "ice_failure")
        assert summary["seconds"] == 0 and summary["started_at"] is None


async def test_a_stream_moderation_verdict_ends_with_moderation_violation() -> None:
    async with payer(registry=registry_with_failures()) as server, server.client("payer") as http:
        session = await open_session(server, http, model="unsafe")
        await ended(session, server, "moderation_violation")
        assert session.events.names()[-2] == "error"
        assert session.events.events[-2].data["type"].endswith("/moderation-violation")


async def test_a_fault_in_the_frame_loop_ends_with_error() -> None:
    async with payer(registry=registry_with_failures()) as server, server.client("payer") as http:
        session = await open_session(server, http, model="crashy")
        await ended(session, server, "error")
        names = session.events.names()
        assert names[-2:] == ["error", "generation_ended"]
        problem = session.events.events[-2].data
        assert problem["status"] == 500 and problem["title"] and problem["detail"]


async def test_racing_deletes_and_automatic_end_settle_exactly_once() -> None:
    async with payer(max_duration=1.5) as server, server.client("payer") as http:
        session = await open_session(server, http)
        await session.events.wait_for("generation_started")
        await asyncio.sleep(1.45)
        answers = await asyncio.gather(*(http.delete(session.url) for _ in range(4)))
        summaries = [a.json() for a in answers]
        assert all(a.status_code == 200 for a in answers)
        assert all(s == summaries[0] for s in summaries)
        await ended(session, server, summaries[0]["reason"])


async def test_ended_session_is_readable_for_the_retention_time_then_404() -> None:
    async with payer(session_retention=1.0) as server, server.client("payer") as http:
        session = await open_session(server, http)
        deleted = time.monotonic()  # the session ends after this
        summary = (await http.delete(session.url)).json()
        state = await http.get(session.url)
        assert state.json()["status"] == "ended" and state.json()["summary"] == summary
        deadline = deleted + 15.0
        while (state := await http.get(session.url)).status_code == 200:
            assert state.json()["summary"] == summary
            assert time.monotonic() < deadline, "the ended session was never forgotten"
            await asyncio.sleep(0.05)
        assert state.status_code == 404
        assert time.monotonic() - deleted >= 1.0  # readable for the whole retention time
        assert (await http.delete(session.url)).status_code == 404
        await session.close()


async def test_frames_come_back_while_the_model_runs() -> None:
    async with payer() as server, server.client("payer") as http:
        session = await open_session(server, http)
        frame = await session.peer.wait_frames(5)
        assert frame.shape == (480, 640, 3)
        assert np.abs(frame.astype(int).mean() - session.peer.source_frame().mean()) < 25
        await http.delete(session.url)
        await session.close()


class FlakyEvents(MemoryEventLog):
    """An event store that fails a few appends, as Redis does in a blip."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def append(self, session_id: str, event: str, data: Any, epoch: int | None = None) -> int:
        if self.failures > 0 and event == "generation_started":
            self.failures -= 1
            raise ConnectionError("state store blip")
        return await super().append(session_id, event, data, epoch)


async def test_a_state_store_blip_loses_no_event_and_the_session_still_ends_cleanly() -> None:
    state = MemoryState()
    state.events = FlakyEvents(failures=2)
    async with payer(state=state) as server, server.client("payer") as http:
        session = await open_session(server, http)
        await session.events.wait_for("generation_started")
        await session.events.wait_for("generation_tick")
        assert (await http.delete(session.url)).status_code == 200
        await ended(session, server, "disconnect")
