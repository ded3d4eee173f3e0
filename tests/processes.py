"""Real `framewire serve` processes for tests that need a whole process: signals, exit status,
its full log output, or an owner to kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from tests.redis_server import free_port

PROCESS_START = 60.0


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def framewire_process(
    env: dict[str, str], *args: str, output: IO[bytes] | None = None
) -> Iterator[Served]:
    """`framewire serve` on a free loopback port, gathering on loopback only, killed at the end
    if the test has not ended it. With `output`, stdout and stderr both go there."""
    port = free_port()
    command = Path(sys.executable).with_name("framewire")
    process = subprocess.Popen(
        [str(command), "serve", "--port", str(port), *args],
        # A fixed capacity unless a test sets otherwise: measured admission would count the
        # test's own clients (another process on these cores) against the server.
        env={
            **os.environ,
            "FRAMEWIRE_ICE_INTERFACES": "127.0.0.1",
            "FRAMEWIRE_SHED_LOAD": "false",
            **env,
        },
        stdout=output or subprocess.DEVNULL,
        stderr=output,
    )
    try:
        yield Served(f"http://127.0.0.1:{port}", process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def ready(base: str) -> None:
    deadline = time.monotonic() + PROCESS_START
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"{base} did not start"
            await asyncio.sleep(0.2)
