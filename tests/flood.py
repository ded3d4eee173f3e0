"""A flood of creates with wrong API keys, from its own process and source address:
`python -m tests.flood URL --rate 500 --seconds 5 --source 127.0.0.2` prints, as JSON, how many
requests it sent, the statuses it got back and how many 429s carried Retry-After. The first
429 it gets is announced on stderr (`turned away`), so a test knows the flood is being refused.

Raw HTTP/1.1 over keep-alive connections, the request encoded once: the flood must cost the
client little, so that what a test measures is the server."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

CONNECTIONS = 16
TURNED_AWAY = "turned away"
BODY = json.dumps(
    {"model": "passthrough", "sdp": {"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 300}}
).encode()


def request(host: str, key: int) -> bytes:
    head = (
        f"POST /v1/realtime/sessions HTTP/1.1\r\nHost: {host}\r\nx-api-key: wrong-{key}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


async def response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    status = int(head.split(" ", 2)[1])
    length = 0
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    await reader.readexactly(length)
    return status, "\r\nretry-after:" in head


async def worker(
    url: str, source: str, due: list[float], statuses: Counter[str], retry_after: list[int]
) -> None:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(
        parts.hostname, parts.port, local_addr=(source, 0)
    )
    try:
        for n, at in enumerate(due):
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request(parts.netloc, n))
            status, has_retry_after = await response(reader)
            statuses[str(status)] += 1
            retry_after[0] += status == 429 and has_retry_after
            if status == 429 and statuses["429"] == 1:
                print(TURNED_AWAY, file=sys.stderr, flush=True)
    finally:
        writer.close()


async def flood(url: str, rate: float, seconds: float, source: str) -> dict[str, object]:
    start = time.monotonic() + 0.2
    total = int(rate * seconds)
    schedule = [start + i / rate for i in range(total)]
    statuses: Counter[str] = Counter()
    retry_after = [0]
    await asyncio.gather(
        *(
            worker(url, source, schedule[i::CONNECTIONS], statuses, retry_after)
            for i in range(CONNECTIONS)
        )
    )
    return {
        "sent": sum(statuses.values()),
        "seconds": round(time.monotonic() - start, 3),
        "statuses": dict(statuses),
        "retry_after": retry_after[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--source", default="127.0.0.2")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(flood(args.url, args.rate, args.seconds, args.source))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
