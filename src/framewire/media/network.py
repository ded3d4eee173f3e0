"""The media sockets a deployment asked for, checked before the server starts: a taken
`FRAMEWIRE_ICE_UDP_PORT` or a `FRAMEWIRE_ICE_PORT_RANGE` too small for the session limit is a
`SettingError` naming the setting, not a failure on the first session."""

from __future__ import annotations

from aioice.ice import get_host_addresses

from framewire.config import SettingError, Settings
from framewire.media.sockets import EPHEMERAL, HostSockets, PortRange
from framewire.media.udpmux import SharedPort


def interfaces_of(settings: Settings) -> list[str]:
    """The addresses host candidates are gathered on."""
    return settings.ice_interfaces or get_host_addresses(use_ipv4=True, use_ipv6=True)


def host_sockets(settings: Settings) -> HostSockets:
    """Ephemeral ports by default, else the range or the shared port, checked now."""
    if settings.ice_udp_port is not None:
        try:
            return SharedPort(settings.ice_udp_port, interfaces_of(settings))
        except OSError as exc:
            raise SettingError(
                "FRAMEWIRE_ICE_UDP_PORT",
                f"cannot bind UDP port {settings.ice_udp_port}: {exc.strerror or exc}",
            ) from None
    if settings.ice_port_range is not None:
        first, last = settings.ice_port_range
        per_leg = len(interfaces_of(settings)) + (1 if settings.turn_urls else 0)
        # Checkable only against a set ceiling; a measured capacity meets a full range at run
        # time, answered 503 + Retry-After like any other full instance.
        needed = (settings.max_sessions or 0) * per_leg
        if last - first + 1 < needed:
            raise SettingError(
                "FRAMEWIRE_ICE_PORT_RANGE",
                f"{first}-{last} holds {last - first + 1} ports; FRAMEWIRE_MAX_SESSIONS="
                f"{settings.max_sessions} needs {needed} ({per_leg} per leg)",
            )
        return PortRange(first, last)
    return EPHEMERAL
