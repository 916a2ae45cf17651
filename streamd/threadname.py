"""Give the calling thread a name the operating system shows (`top -H`, `ps -L`, /proc/PID/task/*/comm).

Python's thread names stay inside Python; to the system every thread of the service is "streamd" (or
"python"). Named, the CPU of PortAudio's callback thread, a capture supervisor or a file reader can be told
apart from the main loop's (`streamd bench --only mic` splits the service's CPU by them). Linux only;
elsewhere, and if the call fails, nothing happens.
"""

from __future__ import annotations

import ctypes
import sys
import threading

PR_SET_NAME = 15  # prctl option, <linux/prctl.h>
NAME_BYTES = 15  # the kernel keeps 15 bytes (and a NUL)


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def name_this_thread(name: str | None = None) -> None:
    """Set the system's name of the calling thread: name, else its Python name; cut to 15 bytes. Never call
    it on the main thread: its name is the process's name."""
    if _prctl is None:
        return
    name = threading.current_thread().name if name is None else name
    _prctl(PR_SET_NAME, name.encode("utf-8", "replace")[:NAME_BYTES], 0, 0, 0)
