"""Server-initiated ICE restart: when nothing has come from the client for a
grace period, ask it once to restart ICE; if it does not re-offer, or the new path does not
carry its packets, within a bounded time, the session ends with `ice_failure`."""

from __future__ import annotations

from collections.abc import Callable

from framewire.media.leg import Leg


class IceWatch:
    """Watches one leg's ICE path for its session's supervisor (times are `time.time()`)."""

    def __init__(
        self, leg: Leg, grace: float, timeout: float, ask_restart: Callable[[], None]
    ) -> None:
        self._leg = leg
        self._grace = grace
        self._timeout = timeout
        self._ask_restart = ask_restart
        self._asked = False
        self.deadline: float | None = None
        """When the session ends with `ice_failure` unless packets flow again."""

    def check(self, now: float) -> float:
        """Ask for a restart when the path went quiet (once per degradation); forget the
        degradation once packets flow again. Returns when to check next; the caller ends the
        session when `now` passes `deadline`."""
        silence = self._leg.seconds_since_ice_inbound()
        if silence is None or self._leg.ice_restarting:
            return now + self._grace if self.deadline is None else self.deadline
        if silence < self._grace:
            self._asked, self.deadline = False, None
            return now + self._grace - silence
        if not self._asked:
            self._asked = True
            self.deadline = now + self._timeout
            self._ask_restart()
        return now + self._grace if self.deadline is None else self.deadline

    def restarted(self, now: float) -> None:
        """The client re-offered: its new path has `timeout` to carry packets."""
        self.deadline = now + self._timeout

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline
