"""Server threads carry their names at the OS level, so `top -H`, `ps -L`, `/proc/PID/task/*/comm`
and profilers show which thread spends the CPU: `model_N` (a leg's model, colour conversions
and encoder), `batch-<model>_N` (a shared model's batch loop), `video-decoder` (aiortc's decoder
thread of one receiver). Python keeps a thread's name to itself; Linux takes up to 15 bytes."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

PR_SET_NAME = 15
OS_NAME_BYTES = 15

_prctl = None
if sys.platform == "linux":
    _prctl = getattr(ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True), "prctl", None)


def name_os_thread() -> None:
    """Give the calling thread its Python name at the OS level (a no-op off Linux, and in the
    main thread, whose OS name is the process's own in `ps` and `pgrep`)."""
    if _prctl is None or threading.current_thread() is threading.main_thread():
        return
    name = threading.current_thread().name.encode("utf-8", "replace")[:OS_NAME_BYTES]
    _prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
