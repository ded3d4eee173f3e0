"""What the client measures about one session: frames each way and the round trip of frames."""

from __future__ import annotations

from dataclasses import dataclass, field

from framewire.rtc.stamp import MODULUS


@dataclass
class ClientStats:
    """Counted by the client itself, independent of what the server reports.

    `round_trip_ms` holds, for each received frame whose marker could be read, the time from
    handing its source frame to the encoder to having the transformed frame decoded: network,
    both codecs, the server's queueing and the model, all together."""

    frames_sent: int = 0
    first_sent_at: float | None = None
    frames_received: int = 0
    first_received_at: float | None = None
    last_received_at: float | None = None
    round_trip_ms: list[float] = field(default_factory=list, repr=False)
    _sent: list[tuple[int, float] | None] = field(
        default_factory=lambda: [None] * MODULUS, repr=False
    )

    def on_sent(self, index: int, at: float) -> None:
        self.frames_sent += 1
        if self.first_sent_at is None:
            self.first_sent_at = at
        self._sent[index % MODULUS] = (index, at)

    def on_received(self, code: int | None, at: float) -> None:
        self.frames_received += 1
        if self.first_received_at is None:
            self.first_received_at = at
        self.last_received_at = at
        sent = self._sent[code] if code is not None else None
        # Half the stamp period back at most: an older frame with the same code is not it.
        if sent is not None and self.frames_sent - sent[0] <= MODULUS // 2:
            self.round_trip_ms.append((at - sent[1]) * 1000.0)

    @property
    def frames_matched(self) -> int:
        return len(self.round_trip_ms)

    def round_trip_percentile(self, p: float) -> float | None:
        """The p-th fraction (0..1) of the measured round trips, in ms; None before any."""
        if not self.round_trip_ms:
            return None
        ordered = sorted(self.round_trip_ms)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    @property
    def received_fps(self) -> float | None:
        """Frames per second over the span from the first to the last received frame."""
        if self.first_received_at is None or self.last_received_at is None:
            return None
        span = self.last_received_at - self.first_received_at
        return (self.frames_received - 1) / span if span > 0 else None
