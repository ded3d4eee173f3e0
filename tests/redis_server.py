"""A real `redis-server` (Debian's) for tests: loopback, a free port, no persistence, stopped at
the end of the run. Import both fixtures where they are used."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a redis-server on a free loopback port; return it and its URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            "--logfile", str(directory / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    with redis.Redis.from_url(url) as client:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                client.ping()
                return process, url
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)


def stop_redis(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a redis-server running for this test session."""
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        stop_redis(process)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A redis-server of this test's own, which the test may stop."""
    process, url = start_redis(tmp_path)
    try:
        yield process, url
    finally:
        stop_redis(process)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's redis-server, emptied: each test starts from no shared state."""
    with redis.Redis.from_url(redis_server) as client:
        client.flushall()
    return redis_server
