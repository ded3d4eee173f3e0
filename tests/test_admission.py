"""Admission that protects quality: with a slow model, new sessions are refused (503 +
Retry-After) once one more would push the running ones below their frame rate, and the running
ones keep >= 95 % of it; /readyz and /metrics report the load."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from framewire.models.base import Frame, ModelSpec
from framewire.models.registry import ModelRegistry
from tests.peers import ClientPeer
from tests.servers import framewire
from tests.sessions import SESSIONS

FPS = 20
MODEL_SECONDS = 0.03
"""Each frame holds a model worker 30 ms: a session keeps 0.6 of a worker busy at 20 fps."""
SLOW = ModelSpec("slow", fps=FPS, width=320, height=240, accepts_image=False, backend="slow")
MEASURED = 40.0
"""Bound on a new session streaming through a whole admission window (plus a busy CPU)."""
MOST = 6


class SlowModel:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def set_prompt(self, prompt: str) -> None:
        """Prompts change nothing here."""

    def set_image(self, image: Frame | None) -> None:
        """Images change nothing here."""

    def process(self, frame: Frame) -> Frame:
        time.sleep(MODEL_SECONDS)  # a model busy on its accelerator: holds the worker thread
        return frame


def slow_registry() -> ModelRegistry:
    registry = ModelRegistry()
    registry.register(SLOW, SlowModel)
    return registry


async def measured_with(http: httpx.AsyncClient, streaming: int) -> dict[str, Any]:
    """/readyz once the instance has measured its cost with `streaming` sessions streaming."""
    deadline = time.monotonic() + MEASURED
    while True:
        body: dict[str, Any] = (await http.get("/readyz")).json()
        if body["streaming"] == streaming and body["model_workers_per_session"] > 0:
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.5)


async def fps(peer: ClientPeer, seconds: float = 4.0) -> float:
    before, start = peer.received, time.monotonic()
    await asyncio.sleep(seconds)
    return (peer.received - before) / (time.monotonic() - start)


async def test_a_slow_model_sheds_new_sessions_before_the_running_ones_fall_behind() -> None:
    async with (
        framewire(registry=slow_registry(), model_workers=2) as server,
        server.client() as http,
    ):
        peers: list[ClientPeer] = []
        refused = None
        for _ in range(MOST):
            peer = ClientPeer(fps=FPS)
            created = await http.post(
                SESSIONS,
                json={"model": "slow", "sdp": {"type": "offer", "sdp": await peer.offer()}},
            )
            if created.status_code == 503:
                refused = created
                await peer.close()
                break
            assert created.status_code == 201, created.text
            await peer.accept(created.json()["sdp"]["sdp"])
            await peer.wait_frames(5, timeout=30)
            peers.append(peer)
            await measured_with(http, len(peers))

        assert refused is not None, f"{len(peers)} slow sessions admitted, none refused"
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) > 0
        assert "limit" in refused.json()["detail"] or "overloaded" in refused.json()["detail"]
        # Two workers at 0.6 each: two sessions fit at 80 % load, a third would not.
        assert len(peers) == 2

        ready = await http.get("/readyz")
        assert ready.status_code == 503 and int(ready.headers["retry-after"]) > 0
        load = ready.json()
        assert load["sessions"] == 2 and load["capacity"] == 2
        assert 0.5 <= load["model_workers_per_session"] <= 0.8
        metrics = (await http.get("/metrics")).text
        assert any(
            line.startswith("framewire_capacity_sessions{") and line.endswith(" 2.0")
            for line in metrics.splitlines()
        )

        rates = await asyncio.gather(*(fps(peer) for peer in peers))
        assert all(rate >= 0.95 * FPS for rate in rates), rates

        # A bare leg is refused the same way.
        bare = ClientPeer()
        leg = await http.post("/v1/webrtc/offer", json={"sdp": await bare.offer(), "model": "slow"})
        assert leg.status_code == 503 and int(leg.headers["retry-after"]) > 0
        await bare.close()
        for peer in peers:
            await peer.close()
