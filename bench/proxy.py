"""The delay `framewire proxy` adds to control requests and to SSE event delivery, against
direct access to the same framewire instance, in one run on loopback.

    /tmp/venv/bin/python bench/proxy.py --requests 300 --events 300

Starts a framewire instance and a proxy in front of it (bearer auth and a rate limit on, so the
proxy's whole layer is measured) with uvicorn on 127.0.0.1, all in one event loop, and creates
one session from an aiortc offer gathered on loopback. Then:
- control: `GET /v1/realtime/sessions/{id}` and `POST .../prompt`, alternating direct and
  proxied requests over kept-alive connections; milliseconds per request;
- SSE: one stream direct and one through the proxy on the same session; events are appended to
  the session's event log (the path every server event takes) at known times, and each reader
  notes when it parses them; milliseconds from append to arrival.
"added" is proxied minus direct: per percentile for requests, per event for SSE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, VideoStreamTrack

from framewire.api.app import create_app
from framewire.config import Settings
from framewire.media.gathering import install_trickle
from framewire.proxy import create_proxy_app
from framewire.run.embedded import serving
from framewire.sessions.service import SessionService

API_KEY = "bench-upstream-key"
TOKEN = "bench-end-user-token"
SESSIONS = "/v1/realtime/sessions"


async def an_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(VideoStreamTrack())
    install_trickle(pc, ["127.0.0.1"], None, lambda gatherer, candidate: None)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, str(pc.localDescription.sdp)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(request: Callable[[], Awaitable[httpx.Response]]) -> float:
    started = time.perf_counter()
    response = await request()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return elapsed


async def control(
    direct: httpx.AsyncClient, proxied: httpx.AsyncClient, path: str, count: int, post: bool
) -> tuple[list[float], list[float]]:
    """Milliseconds per request, direct and proxied, alternating (after a short warm-up)."""
    body = {"prompt": "cinematic teal and orange", "enhance_prompt": False}
    ms: tuple[list[float], list[float]] = ([], [])
    for i in range(count + 10):
        for client, out in ((direct, ms[0]), (proxied, ms[1])):
            value = await timed(
                (lambda c=client: c.post(path, json=body))
                if post
                else (lambda c=client: c.get(path))
            )
            if i >= 10:
                out.append(value)
    return ms


async def read_events(
    client: httpx.AsyncClient, url: str, count: int, arrived: dict[int, float]
) -> None:
    """Note when each of `count` bench events is parsed off the stream."""
    async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data:") and '"bench"' in line:
                arrived[json.loads(line[5:])["bench"]] = time.perf_counter()
                if len(arrived) == count:
                    return


async def events(
    service: SessionService,
    session_id: str,
    urls: tuple[str, str],
    count: int,
    gap: float,
) -> tuple[list[float], list[float], list[float]]:
    """Append `count` events `gap` seconds apart; ms to arrive direct, proxied, and added."""
    sent: dict[int, float] = {}
    arrived: tuple[dict[int, float], dict[int, float]] = ({}, {})
    async with httpx.AsyncClient(timeout=None) as http:
        readers = asyncio.gather(
            *(read_events(http, url, count, seen) for url, seen in zip(urls, arrived, strict=True))
        )
        await asyncio.sleep(0.5)  # both streams connected and past their replay
        for n in range(count):
            sent[n] = time.perf_counter()
            await service.ports.events.append(session_id, "bench", {"bench": n})
            await asyncio.sleep(gap)
        await asyncio.wait_for(readers, 10)
    direct = [(arrived[0][n] - sent[n]) * 1000 for n in sent if n in arrived[0]]
    proxied = [(arrived[1][n] - sent[n]) * 1000 for n in sent if n in arrived[1]]
    added = [
        (arrived[1][n] - arrived[0][n]) * 1000 for n in sent if n in arrived[0] and n in arrived[1]
    ]
    if len(added) < count:
        raise RuntimeError(f"only {len(added)} of {count} events arrived on both streams")
    return direct, proxied, added


HEADER = (
    "measurement",
    "n",
    "direct p50",
    "direct p95",
    "proxy p50",
    "proxy p95",
    "added p50",
    "added p95",
)


def row(
    name: str, direct: list[float], proxied: list[float], added: list[float] | None
) -> list[str]:
    p50 = percentile(direct, 0.5), percentile(proxied, 0.5)
    p95 = percentile(direct, 0.95), percentile(proxied, 0.95)
    extra = (
        (percentile(added, 0.5), percentile(added, 0.95))
        if added is not None
        else (p50[1] - p50[0], p95[1] - p95[0])
    )
    numbers = [p50[0], p95[0], p50[1], p95[1], *extra]
    return [name, str(len(direct)), *(f"{n:.2f}" for n in numbers)]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [list(HEADER), *rows]) for i in range(len(HEADER))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = (
        "|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":") for i, w in enumerate(widths)) + "|"
    )
    return "\n".join([line(list(HEADER)), rule, *(line(r) for r in rows)])


async def main(args: argparse.Namespace) -> None:
    settings = Settings(
        api_keys={API_KEY: None},
        ice_interfaces=["127.0.0.1"],
        inactivity_timeout=3600,
        ice_connect_timeout=3600,
        max_duration=3600,
    )
    upstream_app = create_app(settings)
    async with serving(upstream_app) as upstream:
        front_app = create_proxy_app(upstream, API_KEY, tokens=[TOKEN], rate_limit=1e6)
        async with (
            serving(front_app) as front,
            httpx.AsyncClient(base_url=upstream, headers={"x-api-key": API_KEY}) as direct,
            httpx.AsyncClient(
                base_url=front, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as proxied,
        ):
            pc, offer = await an_offer()
            created = await direct.post(
                SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
            )
            created.raise_for_status()
            body = created.json()
            session = f"{SESSIONS}/{body['session_id']}"
            stream = f"{body['events']['url']}?event_token={body['events']['event_token']}"

            get = await control(direct, proxied, session, args.requests, post=False)
            prompt = await control(direct, proxied, f"{session}/prompt", args.requests, post=True)
            sse = await events(
                upstream_app.state.sessions,
                body["session_id"],
                (upstream + stream, front + stream),
                args.events,
                args.gap,
            )
            await direct.delete(session)
            await pc.close()
    print(
        f"{args.requests} requests per path and side, {args.events} SSE events "
        f"{args.gap * 1000:g} ms apart; milliseconds\n"
    )
    print(
        table(
            [
                row("GET session", *get, None),
                row("POST prompt", *prompt, None),
                row("SSE event delivery", *sse),
            ]
        )
    )
    print(
        f"\nSSE added per event (proxied minus direct arrival): mean {statistics.mean(sse[2]):.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per path and side")
    parser.add_argument("--events", type=int, default=300, help="SSE events to deliver")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between SSE events")
    asyncio.run(main(parser.parse_args()))
