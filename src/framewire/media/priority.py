"""Media work yields the CPU to the control plane: threads that run models and encoders lower
their own scheduling priority (Linux nice, per thread), so that when the cores are contended the
event loop thread — HTTP signalling, liveness checks, billing ticks — still gets its share
(bench/contention.py measures create latency on saturated cores with and without it)."""

from __future__ import annotations

import logging
import os
import sys
import threading

MEDIA_NICE = 10
"""Added to a media thread's nice value (19 at most)."""

log = logging.getLogger("framewire.media")
_lowered = threading.local()


def lower_thread_priority() -> None:
    """Lower the calling thread's priority, once per thread; a no-op off Linux."""
    if getattr(_lowered, "done", False) or sys.platform != "linux":
        return
    _lowered.done = True
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + MEDIA_NICE))
    except OSError as exc:  # a sandbox may forbid it: media then runs at normal priority
        log.warning("media threads keep their priority: %s", exc)
