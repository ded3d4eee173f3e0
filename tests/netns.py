"""Network namespaces the tests make themselves (iproute2 + nftables, as root): a namespace
joined to the test's own by a veth pair on a private /30, with a firewall ruleset inside it.
Nothing leaves the machine: the only addresses are the pair's two ends."""

from __future__ import annotations

import contextlib
import random
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Namespace:
    name: str
    inside: str
    """The namespace's address on the veth pair."""
    outside: str
    """The test's (root namespace) address on the veth pair."""

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def firewall(self, ruleset: str) -> None:
        """Load an nftables ruleset inside the namespace."""
        subprocess.run(self.command("nft", "-f", "-"), input=ruleset, text=True, check=True)


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def namespace() -> Iterator[Namespace]:
    """A fresh namespace with loopback up and a veth pair to the test's namespace."""
    tag = secrets.token_hex(3)
    name, outer, inner = f"fw-{tag}", f"fwo{tag}", f"fwi{tag}"
    subnet = random.randrange(0, 256)
    block = random.randrange(0, 64) * 4
    outside, inside = f"10.231.{subnet}.{block + 1}", f"10.231.{subnet}.{block + 2}"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", name)
        _ip("addr", "add", f"{outside}/30", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("-n", name, "addr", "add", f"{inside}/30", "dev", inner)
        _ip("-n", name, "link", "set", inner, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield Namespace(name, inside, outside)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", outer)
        _ip("netns", "del", name)
