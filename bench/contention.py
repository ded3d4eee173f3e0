"""Create latency while sessions stream, on idle cores and with every core saturated by other
processes (a busy loop per core, same priority), alternating runs.

    python bench/contention.py [--runs 3] [--streams 3] [--creates 12]

Prints one table: per run, median / p90 / max seconds of POST /v1/realtime/sessions."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.peers import ClientPeer
from tests.servers import framewire
from tests.sessions import SESSIONS, open_session
from tests.test_contention import saturated_cores


async def run(streams: int, creates: int, saturate: bool) -> list[float]:
    async with framewire(max_sessions=streams + 2) as server, server.client() as http:
        sessions = [await open_session(server, http) for _ in range(streams)]
        for session in sessions:
            await session.peer.wait_frames(10)
        peers = [ClientPeer() for _ in range(creates)]
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
        for peer in peers:
            await peer.close()
        for session in sessions:
            await session.close()
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
