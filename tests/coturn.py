"""Real coturn (Debian's /usr/bin/turnserver) for tests: TURN REST API credentials
(`use-auth-secret`), listening on 127.0.0.1 (and on a test namespace's veth address when asked),
relaying on 127.0.0.1 only, loopback peers allowed (coturn refuses them by default), TLS only
when asked (with a test certificate), no DTLS, no CLI, on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aioice import stun
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TURNSERVER = "/usr/bin/turnserver"
REALM = "framewire.test"
START_TIMEOUT = 15.0


@dataclass
class Coturn:
    port: int
    secret: str
    log: Path
    tls_port: int | None = None
    certificate: Path | None = None
    """The self-signed certificate of the TLS listener (a client must trust it)."""

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def tcp_url(self, host: str = "127.0.0.1") -> str:
        return f"turn:{host}:{self.port}?transport=tcp"

    def tls_url(self, host: str = "127.0.0.1") -> str:
        assert self.tls_port is not None, "coturn was started without TLS"
        return f"turns:{host}:{self.tls_port}?transport=tcp"

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


def self_signed(directory: Path, addresses: list[str]) -> tuple[Path, Path]:
    """A certificate valid for `addresses` (IP SANs) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "framewire test TURN")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "turn.crt", directory / "turn.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextlib.asynccontextmanager
async def coturn(
    secret: str = "turn-test-secret", also_listen: str | None = None, tls: bool = False
) -> AsyncIterator[Coturn]:
    """Run coturn until the block ends; ready (answering STUN) when it is entered. It listens
    on 127.0.0.1 and `also_listen`; with `tls`, also TLS (`turns:`) on a second port."""
    with tempfile.TemporaryDirectory(prefix="coturn-") as tmp:
        port = free_port()
        log = Path(tmp) / "turn.log"
        listen = ["127.0.0.1"] + ([also_listen] if also_listen else [])
        options = [f"--listening-ip={address}" for address in listen]
        tls_port, certificate = None, None
        if tls:
            tls_port = free_port()
            certificate, key = self_signed(Path(tmp), listen)
            options += [
                f"--tls-listening-port={tls_port}",
                f"--cert={certificate}",
                f"--pkey={key}",
            ]
        else:
            options.append("--no-tls")
        process = await asyncio.create_subprocess_exec(
            TURNSERVER,
            "-n",  # no configuration file
            *options,
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            f"--realm={REALM}",
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
            yield Coturn(port, secret, log, tls_port, certificate)
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
