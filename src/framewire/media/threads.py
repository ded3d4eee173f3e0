"""Server threads carry their names at the OS level, so `top -H`, `ps -L`, `/proc/PID/task/*/comm`
and profilers show which thread spends the CPU: `model_N` (a leg's decoder, model, colour
conversions and encoder; a codec's own helper threads, started from it, inherit the name) and
`batch-<model>_N` (a shared model's batch loop). Python keeps a thread's name to itself; Linux
shows its first 15 bytes (`batch-sd-turbo_`)."""

from __future__ import annotations

import ctypes
import sys
import threading

PR_SET_NAME = 15
OS_NAME_BYTES = 15

_prctl = getattr(ctypes.CDLL(None), "prctl", None) if sys.platform == "linux" else None
"""libc's prctl, from the symbols already loaded in this process."""


def name_os_thread() -> None:
    """Give the calling thread its Python name at the OS level. A no-op off Linux, in the main
    thread (whose OS name is the process's own in `ps` and `pgrep`), and in a thread Python did
    not start (its Python name is a placeholder)."""
    thread = threading.current_thread()
    if _prctl is None or thread is threading.main_thread():
        return
    if isinstance(thread, threading._DummyThread):  # a thread Python did not start
        return
    name = thread.name.encode("utf-8", "replace")[:OS_NAME_BYTES]
    _prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
