"""A running server's threads carry their names at the OS level (`top -H`, `ps -L`, profilers):
an operator sees which of a busy server's threads are the model workers (which decode, run the
model and encode) and which is the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from framewire.media.threads import name_os_thread
from tests.processes import framewire_process, ready
from tests.servers import Running
from tests.sessions import open_session

WORKING = 20.0
"""Seconds a streaming session's named threads get to show CPU use."""


def cpu_by_os_name(pid: int) -> Counter[str]:
    """CPU ticks (user + system) of each thread of `pid`, summed by the name the OS shows."""
    ticks: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        ticks[name] += int(fields[11]) + int(fields[12])
    return ticks


async def test_model_workers_are_named_for_the_os_and_do_the_media_work() -> None:
    with framewire_process({"FRAMEWIRE_API_KEYS": "test-key-1"}) as served:
        await ready(served.url)
        headers = {"x-api-key": "test-key-1"}
        async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=20) as http:
            session = await open_session(Running(None, served.url), http)  # type: ignore[arg-type]
            try:
                await session.peer.wait_frames(3)
                pid = served.process.pid
                before = cpu_by_os_name(pid)
                assert "model_0" in before, sorted(before)
                # the named threads do the media work: their CPU grows as frames flow
                deadline = time.monotonic() + WORKING
                while True:
                    now = cpu_by_os_name(pid)
                    if now["model_0"] > before["model_0"]:
                        break
                    assert time.monotonic() < deadline, (before, now)
                    await asyncio.sleep(0.2)
            finally:
                await session.close()


def test_a_thread_takes_its_python_name_but_the_main_thread_keeps_the_process_name() -> None:
    process_name = Path("/proc/self/comm").read_text()
    name_os_thread()  # the main thread: the process's name in `ps` must not change
    assert Path("/proc/self/comm").read_text() == process_name

    seen: list[str] = []

    def run() -> None:
        name_os_thread()
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())

    worker = threading.Thread(target=run, name="a-rather-long-thread-name")
    worker.start()
    worker.join(timeout=10)
    assert seen == ["a-rather-long-t"]  # Linux keeps 15 bytes
