"""`framewire serve --workers N`: N server processes behind one port, so every core serves.

One Python process is one GIL; a machine with more cores than one process can use runs several.
The parent reserves the port (a bound, never-listening socket with SO_REUSEPORT, so `--port 0`
works too) and starts N workers, each a full framewire instance listening on the same port with
SO_REUSEPORT: the kernel spreads connections over them. They share sessions, events, commands
and the ledger through Redis (`FRAMEWIRE_REDIS_URL` is required), so any worker answers any
route. Worker i runs as instance `<FRAMEWIRE_INSTANCE_ID or a random id>-<i>`; with `--devices`
it sees only accelerator `devices[i % len(devices)]` (`CUDA_VISIBLE_DEVICES`).

SIGTERM or SIGINT to the parent stops every worker (each drains as a stopping instance does:
no new sessions, the running ones end with `shutdown` after FRAMEWIRE_DRAIN_TIMEOUT; a second
signal to the parent is passed on and cuts the drain short) and the parent exits. A worker that
dies is started again under the same instance id; the new run settles what the old one left
(`error`, billed once) before serving.
A worker that keeps dying right after its start stops the whole server (exit 1).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("framewire.workers")

POLL = 0.2
STOP_GRACE = 15.0
"""Seconds the workers get, beyond their drain, to settle and exit after SIGTERM before they
are killed."""
QUICK_DEATH = 5.0
"""A worker that dies this soon after its start counts as failing to start."""
MAX_QUICK_DEATHS = 3
WORKER_ENV = "FRAMEWIRE_WORKER_INDEX"
"""Set in each worker's environment: its index (the parent's children only)."""


class StartupError(Exception):
    """Settings or arguments that cannot work; the message names them."""


def parse_workers(value: str) -> int:
    """argparse type of `--workers`: a positive integer."""
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value!r}") from None
    if workers < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value!r}")
    return workers


def parse_devices(value: str) -> list[str]:
    """argparse type of `--devices`: comma-separated accelerator ids, e.g. `0,1`."""
    devices = [d.strip() for d in value.split(",")]
    if not devices or any(not d for d in devices):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated device ids like 0,1, not {value!r}"
        )
    return devices


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A listening TCP socket for one server process (SO_REUSEPORT when it shares the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def reserve_port(host: str, port: int) -> socket.socket:
    """Hold `port` (or a free one for 0) for the workers: bound with SO_REUSEPORT, never
    listening, so the kernel hands it no connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


@dataclass
class Worker:
    index: int
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Starts the workers, restarts the ones that die, stops them all on a signal."""

    def __init__(
        self, argv: list[str], env: dict[str, str], count: int, devices: list[str], drain: float
    ):
        self._argv = argv
        self._grace = drain + STOP_GRACE
        self._env = env
        self._count = count
        self._devices = devices
        self._workers: list[Worker] = []
        self._stopping = False
        self._quick_deaths = 0

    def _spawn(self, index: int) -> Worker:
        env = {**self._env, WORKER_ENV: str(index)}
        env["FRAMEWIRE_INSTANCE_ID"] = f"{self._env['FRAMEWIRE_INSTANCE_ID']}-{index}"
        if self._devices:
            env["CUDA_VISIBLE_DEVICES"] = self._devices[index % len(self._devices)]
        return Worker(index, subprocess.Popen(self._argv, env=env))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:  # a second signal: the workers end their drain at once
            for worker in self._workers:
                if worker.process.poll() is None:
                    worker.process.send_signal(signal.SIGTERM)
        self._stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._workers = [self._spawn(i) for i in range(self._count)]
        status = 0
        while not self._stopping:
            time.sleep(POLL)
            if not self._restart_dead():
                status = 1
                break
        self._stop_all()
        return status

    def _restart_dead(self) -> bool:
        """Start again every worker that died; False when they keep dying at start."""
        for slot, worker in enumerate(self._workers):
            code = worker.process.poll()
            if code is None or self._stopping:
                continue
            quick = time.monotonic() - worker.started < QUICK_DEATH
            self._quick_deaths = self._quick_deaths + 1 if quick else 0
            if self._quick_deaths > MAX_QUICK_DEATHS:
                log.error("workers keep dying at start (exit %s): stopping", code)
                return False
            log.warning("worker %d exited with %s: starting it again", worker.index, code)
            self._workers[slot] = self._spawn(worker.index)
        return True

    def _stop_all(self) -> None:
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        for worker in self._workers:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


def supervise(
    host: str, port: int, count: int, devices: list[str], worker_args: list[str], drain: float
) -> int:
    """Run `count` workers of `framewire serve` on host:port until a signal; the exit status.
    `drain`: FRAMEWIRE_DRAIN_TIMEOUT, how long a stopping worker lets its sessions run."""
    holder = reserve_port(host, port)
    bound = holder.getsockname()[1]
    env = dict(os.environ)
    env.setdefault("FRAMEWIRE_INSTANCE_ID", "fw-" + secrets.token_hex(4))
    argv = [
        sys.executable, "-m", "framewire.cli", "serve",
        "--host", host, "--port", str(bound), "--shared-port", *worker_args,
    ]  # fmt: skip
    log.info("serving on %s:%d with %d workers", host, bound, count)
    try:
        return Supervisor(argv, env, count, devices, drain).run()
    finally:
        holder.close()
