"""`framewire serve --workers N`: N processes behind one port act as one service through Redis;
a killed worker's sessions end with `error`, billed once; SIGTERM stops them all; bad
arguments and settings fail at start, naming what is wrong."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.peers import ClientPeer
from tests.redis_server import free_port, redis_server, redis_url
from tests.sessions import SESSIONS
from tests.sse import EventReader
from tests.test_scale_out import CREDIT, PROCESS_START, assert_billed_once, charged
from tests.test_session_flow import saturation

__all__ = ["redis_server", "redis_url"]

FRAMEWIRE = str(Path(sys.executable).with_name("framewire"))
ATTEMPTS = 200
"""Fresh connections tried to reach one particular worker (the kernel picks, by hash)."""


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]

    def workers(self, variable: str = "FRAMEWIRE_INSTANCE_ID") -> dict[str, int]:
        """Instance id -> pid of each running worker (from /proc: the parent's children)."""
        return {env[variable]: pid for pid, env in self.environments().items() if variable in env}

    def environments(self) -> dict[int, dict[str, str]]:
        """Each running worker's environment, by pid."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        found = {}
        for child in children:
            with contextlib.suppress(OSError):
                raw = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                pairs = (item.decode().split("=", 1) for item in raw if b"=" in item)
                found[int(child)] = {name: value for name, value in pairs}
        return found


@contextlib.contextmanager
def serve_workers(redis: str, count: int = 2, *extra: str) -> Iterator[Served]:
    """`framewire serve --workers count` on a free loopback port (quiet logs), with `extra`
    arguments; SIGTERM at the end."""
    port = free_port()
    env = {
        **os.environ,
        "FRAMEWIRE_REDIS_URL": redis,
        "FRAMEWIRE_INSTANCE_ID": "fw-w",
        "FRAMEWIRE_SECRET": "workers-secret",
        "FRAMEWIRE_API_KEYS": f"payer={CREDIT}",
        "FRAMEWIRE_ICE_INTERFACES": "127.0.0.1",
        "FRAMEWIRE_TICK_INTERVAL": "2",
    }
    command = [FRAMEWIRE, "serve", "--workers", str(count), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--log-level", "error", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield Served(f"http://127.0.0.1:{port}", process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (the parent reaps its workers)."""
    try:
        return b"zombie" not in Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return False


@contextlib.asynccontextmanager
async def on_worker(base: str, instance: str, key: str | None = "payer") -> AsyncIterator[Any]:
    """A client whose (kept-alive, just used) connection is served by worker `instance`."""
    headers = {"x-api-key": key} if key else {}
    deadline = time.monotonic() + PROCESS_START
    for _ in range(ATTEMPTS):
        http = httpx.AsyncClient(base_url=base, headers=headers, timeout=20)
        with contextlib.suppress(httpx.TransportError):
            if (await http.get("/healthz")).json()["instance_id"] == instance:
                try:
                    yield http
                finally:
                    await http.aclose()
                return
        await http.aclose()
        assert time.monotonic() < deadline, f"no connection reached {instance}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"{ATTEMPTS} connections and none reached {instance}")


async def all_up(served: Served, instances: set[str]) -> None:
    """Wait until each worker in `instances` answers through the shared port."""
    for instance in instances:
        async with on_worker(served.url, instance):
            pass


async def test_two_workers_behind_one_port_act_as_one_service(redis_url: str) -> None:
    """Create through worker 0; trickle, prompt and delete through worker 1; SIGTERM to the
    parent stops both workers."""
    with serve_workers(redis_url) as served:
        await all_up(served, {"fw-w-0", "fw-w-1"})
        pids = served.workers()
        assert set(pids) == {"fw-w-0", "fw-w-1"}
        peer = ClientPeer()
        offer = await peer.offer(trickle=True)
        async with on_worker(served.url, "fw-w-0") as http:
            created = await http.post(
                SESSIONS,
                json={
                    "model": "lucy_2_rt",
                    "sdp": {"type": "offer", "sdp": offer},
                    "prompt": "black and white noir film",
                },
            )
        assert created.status_code == 201, created.text
        body, etag = created.json(), created.headers["etag"]
        url = f"{SESSIONS}/{body['session_id']}"
        await peer.accept(body["sdp"]["sdp"])

        async with on_worker(served.url, "fw-w-1") as http:
            state = (await http.get(url)).json()
            assert state["instance_id"] == "fw-w-0" and state["status"] == "active"
            for candidate in peer.local_candidates:
                patched = await http.patch(
                    url, json={"candidates": [candidate]}, headers={"If-Match": etag}
                )
                assert patched.status_code == 204, patched.text
        assert saturation(await peer.wait_frames(10)) < 15  # noir, through the other worker

        async with on_worker(served.url, "fw-w-1") as http:
            changed = await http.post(
                f"{url}/prompt", json={"prompt": "vivid neon cyberpunk", "enhance_prompt": False}
            )
            assert changed.status_code == 200, changed.text
        await peer.wait_frames(10)
        assert saturation(peer.frames[-1]) > 60

        async with on_worker(served.url, "fw-w-1") as http:
            ended = await http.delete(url)
        assert ended.status_code == 200, ended.text
        assert ended.json()["reason"] == "disconnect" and ended.json()["status"] == "ended"
        await peer.close()

        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=30) == 0
        assert not [pid for pid in pids.values() if alive(pid)]


async def test_a_killed_worker_is_restarted_and_its_sessions_end_with_error_once(
    redis_url: str,
) -> None:
    """Worker i sees accelerator devices[i]; SIGKILL worker 0: it comes back on the same one,
    and its session ends with `error`, billed once."""
    with serve_workers(redis_url, 2, "--devices", "3,5") as served:
        await all_up(served, {"fw-w-0", "fw-w-1"})
        devices = {env["FRAMEWIRE_INSTANCE_ID"]: env["CUDA_VISIBLE_DEVICES"]
                   for env in served.environments().values()}  # fmt: skip
        assert devices == {"fw-w-0": "3", "fw-w-1": "5"}
        peer = ClientPeer()
        offer = await peer.offer()
        async with on_worker(served.url, "fw-w-0") as http:
            created = await http.post(
                SESSIONS, json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}}
            )
        assert created.status_code == 201, created.text
        body = created.json()
        await peer.accept(body["sdp"]["sdp"])
        await peer.wait_frames(5)

        stream = f"{body['events']['url']}?event_token={body['events']['event_token']}"
        async with on_worker(served.url, "fw-w-1", key=None) as sse_http:
            events = EventReader(sse_http, stream).start()
            tick = await events.wait_for("generation_tick")
            await charged(redis_url, tick.data["seconds"])
            killed = served.workers()["fw-w-0"]
            os.kill(killed, signal.SIGKILL)
            end = await events.wait_for("generation_ended", timeout=PROCESS_START)
            await events.wait_closed()
        assert end.data["reason"] == "error"
        assert events.names().count("generation_ended") == 1
        assert events.names()[-2:] == ["error", "generation_ended"]

        # The worker is back under its id, in a new process, and answers.
        await all_up(served, {"fw-w-0"})
        assert served.workers()["fw-w-0"] != killed
        restarted = served.environments()[served.workers()["fw-w-0"]]
        assert restarted["CUDA_VISIBLE_DEVICES"] == "3"  # the same accelerator as before
        async with on_worker(served.url, "fw-w-0") as http:
            state = (await http.get(f"{SESSIONS}/{body['session_id']}")).json()
        assert state["status"] == "ended"
        assert state["summary"]["seconds"] == end.data["seconds"]
        await assert_billed_once(redis_url, state["summary"], tick.data["seconds"])
        await peer.close()


def start_error(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWIRE_")}
    return subprocess.run(
        [FRAMEWIRE, "serve", "--port", str(free_port()), *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--workers", "2"], {}, "FRAMEWIRE_REDIS_URL"),
        (
            ["--workers", "2"],
            {"FRAMEWIRE_REDIS_URL": "redis://127.0.0.1:9/0", "FRAMEWIRE_ICE_UDP_PORT": "40000"},
            "FRAMEWIRE_ICE_UDP_PORT",
        ),
        (["--workers", "0"], {}, "--workers"),
        (["--workers", "-3"], {}, "--workers"),
        (["--workers", "two"], {}, "--workers"),
        ([], {"FRAMEWIRE_VIDEO_CODECS": "h264,av1"}, "FRAMEWIRE_VIDEO_CODECS"),
    ],
)
def test_bad_workers_or_codecs_fail_at_start_naming_the_setting(
    args: list[str], env: dict[str, str], named: str
) -> None:
    result = start_error(*args, **env)
    assert result.returncode != 0
    assert named in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
