"""A relay-only framewire client, run as a program inside a test's network namespace
(`python -m tests.netclient URL KEY FRAMES`): it gets its ICE servers from
`GET /v1/realtime/ice-servers`, streams a test pattern through a passthrough session until
FRAMES frames came back, and prints what it saw as JSON."""

from __future__ import annotations

import asyncio
import json
import sys

from framewire.client import RealtimeClient
from tests.client.support import pattern_frames
from tests.restart_client import looks_like_pattern

TIMEOUT = 90.0


async def stream(url: str, key: str, wanted: int) -> dict[str, object]:
    async with RealtimeClient(url, key, relay_only=True) as client:
        session = await client.connect(pattern_frames(), model="passthrough", fps=10)
        frames, alike = 0, 0
        async for frame in session.frames():
            frames += 1
            alike += looks_like_pattern(frame)
            if frames >= wanted:
                break
        summary = await session.close()
    return {"frames": frames, "alike": alike, "seconds": summary.seconds}


def main() -> None:
    url, key, wanted = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(asyncio.run(asyncio.wait_for(stream(url, key, wanted), TIMEOUT))))


if __name__ == "__main__":
    main()
