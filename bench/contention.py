"""Create latency while sessions stream, on idle cores and with every core saturated by other
processes (a busy loop per core, same priority), alternating runs.

    python bench/contention.py [--runs 3] [--streams 3] [--creates 12]

Prints one table: per run, median / p90 / max seconds of POST /v1/realtime/sessions."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from soak import Peer  # bench/soak.py (this script's folder is on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from framewire.api.app import create_app
from framewire.config import Settings
from framewire.run.embedded import serving

KEY = "bench-key"
SESSIONS = "/v1/realtime/sessions"


@contextlib.contextmanager
def saturated_cores() -> Iterator[None]:
    """A busy loop per core, in processes of their own, at the server's priority."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


async def streaming(http: httpx.AsyncClient) -> Peer:
    peer = Peer()
    offer = await peer.offer()
    response = await http.post(
        SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
    )
    assert response.status_code == 201, response.text
    await peer.accept(response.json()["sdp"]["sdp"])
    await asyncio.wait_for(peer.first_frame.wait(), 20)
    return peer


async def run(streams: int, creates: int, saturate: bool) -> list[float]:
    settings = Settings(
        api_keys={KEY: None}, ice_interfaces=["127.0.0.1"], max_sessions=streams + 2
    )
    async with (
        serving(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, headers={"x-api-key": KEY}, timeout=30) as http,
    ):
        sessions = [await streaming(http) for _ in range(streams)]
        peers = [Peer() for _ in range(creates)]
        offers = [await peer.offer() for peer in peers]
        took = []
        with saturated_cores() if saturate else contextlib.nullcontext():
            await asyncio.sleep(1.0)
            for offer in offers:
                start = time.monotonic()
                response = await http.post(
                    SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
                )
                took.append(time.monotonic() - start)
                await http.delete(response.headers["location"])
        for peer in peers + sessions:
            await peer.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--creates", type=int, default=12)
    args = parser.parse_args()
    print(f"{'cores':<16}{'median s':>10}{'p90 s':>10}{'max s':>10}")
    for _ in range(args.runs):
        for saturate in (False, True):
            took = sorted(asyncio.run(run(args.streams, args.creates, saturate)))
            p90 = took[int(0.9 * (len(took) - 1))]
            label = "saturated" if saturate else "as they are"
            print(f"{label:<16}{statistics.median(took):>10.3f}{p90:>10.3f}{took[-1]:>10.3f}")


if __name__ == "__main__":
    main()
