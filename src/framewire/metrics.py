"""Prometheus metrics of one instance: registered once per app, observed where things happen.

Counters only go up (a closed leg's frames stay counted); gauges read the current load when
scraped. Every series carries the `instance_id` label so a scrape of several instances adds up.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
"""Seconds: per-frame work is a few ms to a few hundred ms."""
BUS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0)


class Metrics:
    """The instance's collectors. Frame-path observations are thread-safe (prometheus-client
    locks each child), so codec and model threads may record directly."""

    def __init__(self, instance_id: str) -> None:
        self.registry = CollectorRegistry()
        self.instance_id = instance_id
        r, i = self.registry, ["instance_id"]
        self.sessions_created = Counter(
            "framewire_sessions_created", "Sessions created", [*i, "model"], registry=r
        )
        self.sessions_ended = Counter(
            "framewire_sessions_ended", "Sessions ended", [*i, "model", "reason"], registry=r
        )
        frames = {
            name: Counter(f"framewire_frames_{name}", doc, i, registry=r).labels(instance_id)
            for name, doc in (
                ("in", "Inbound video frames decoded"),
                ("out", "Model frames handed to the encoder"),
                ("dropped", "Inbound frames dropped by the frame loop (latest-frame-wins)"),
                ("late", "Inbound frames gone stale before the model took them"),
            )
        }
        self.frames_in, self.frames_out = frames["in"], frames["out"]
        self.frames_dropped, self.frames_late = frames["dropped"], frames["late"]
        self.frame_latency = self._histogram(
            "framewire_frame_latency_seconds",
            "Server-added latency per frame: inbound frame decoded -> model -> encoded",
        )
        self.model_seconds = self._histogram(
            "framewire_model_seconds", "Worker-thread time per frame: scale, model, colour, encode"
        )
        self.decode_seconds = self._histogram(
            "framewire_decode_seconds",
            "Per inbound frame: handed to the decoder (its queue included) -> decoded frame",
        )
        self.encode_seconds = self._histogram(
            "framewire_encode_seconds", "Video encoder time per frame"
        )
        self.keyframes = Counter(
            "framewire_keyframes_sent", "Keyframes encoded", i, registry=r
        ).labels(instance_id)
        self.sse_opened = Counter(
            "framewire_sse_connections", "SSE streams opened", i, registry=r
        ).labels(instance_id)
        self.sse_open = Gauge(
            "framewire_sse_connections_open", "SSE streams open now", i, registry=r
        ).labels(instance_id)
        self.bus_round_trip = self._histogram(
            "framewire_bus_round_trip_seconds",
            "Command-bus calls to the owner instance, request to reply",
            BUS_BUCKETS,
        )
        self.webhooks = Counter(
            "framewire_webhook_deliveries",
            "Webhook delivery attempts by outcome",
            [*i, "outcome"],
            registry=r,
        )

    def _histogram(
        self, name: str, doc: str, buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> Histogram:
        """A histogram of this instance (its `instance_id` child)."""
        family = Histogram(name, doc, ["instance_id"], buckets=buckets, registry=self.registry)
        return family.labels(self.instance_id)

    def watch_load(self, readings: dict[str, tuple[str, Callable[[], float]]]) -> None:
        """Gauges read at scrape time (the current load), by name: (doc, read)."""
        for name, (doc, read) in readings.items():
            gauge = Gauge(name, doc, ["instance_id"], registry=self.registry)
            gauge.labels(self.instance_id).set_function(read)

    def session_created(self, model: str) -> None:
        self.sessions_created.labels(self.instance_id, model).inc()

    def session_ended(self, model: str, reason: str) -> None:
        self.sessions_ended.labels(self.instance_id, model, reason).inc()
