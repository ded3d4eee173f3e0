"""Real coturn (Debian's /usr/bin/turnserver) on loopback for tests: TURN REST API credentials
(`use-auth-secret`), listening and relaying on 127.0.0.1 only, loopback peers allowed (coturn
refuses them by default), no TLS/DTLS listeners, no CLI, on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aioice import stun

TURNSERVER = "/usr/bin/turnserver"
REALM = "framewire.test"
START_TIMEOUT = 15.0


@dataclass
class Coturn:
    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


async def answers_stun(address: tuple[str, int]) -> bool:
    """Whether a STUN Binding request to `address` gets a response within 0.3 s."""
    loop = asyncio.get_running_loop()
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    answered = loop.create_future()

    class Probe(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if not answered.done():
                answered.set_result(True)

    transport, _ = await loop.create_datagram_endpoint(Probe, remote_addr=address)
    try:
        transport.sendto(bytes(request))
        with contextlib.suppress(TimeoutError):
            return bool(await asyncio.wait_for(answered, 0.3))
        return False
    finally:
        transport.close()


@contextlib.asynccontextmanager
async def coturn(secret: str = "turn-test-secret") -> AsyncIterator[Coturn]:
    """Run coturn until the block ends; ready (answering STUN) when it is entered."""
    with tempfile.TemporaryDirectory(prefix="coturn-") as tmp:
        port = free_port()
        log = Path(tmp) / "turn.log"
        process = await asyncio.create_subprocess_exec(
            TURNSERVER,
            "-n",  # no configuration file
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            f"--realm={REALM}",
            "--no-tls",
            "--no-dtls",
            "--allow-loopback-peers",
            "--no-cli",
            f"--userdb={tmp}/turndb",
            f"--pidfile={tmp}/turnserver.pid",
            f"--log-file={log}",
            "--simple-log",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not await answers_stun(("127.0.0.1", port)):
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"coturn did not start on port {port}")
            yield Coturn(port, secret, log)
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
