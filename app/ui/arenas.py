"""glibc's malloc arenas: at most two in the window's process.

glibc gives each thread that allocates its own arena (up to eight per core), and each arena
keeps the pages it once used. The window's threads — the GUI thread, the database thread,
asyncio's and Qt's workers — each left a partly used arena behind after a 20,000-position sync:
~14 MB of the connected window's resident memory (tests/bench window figures, two runs each:
278 MB with glibc's default, 264 MB with two arenas; no figure of the Qt stall or the updates
moved). Python's objects live in its own allocator's arenas; what reaches malloc is mostly Qt's
and SQLite's, and those threads seldom allocate at once (the GIL serialises the Python ones),
so sharing two arenas costs no measurable waiting.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's <malloc.h>
WINDOW_ARENAS = 2


def limit_malloc_arenas(count: int = WINDOW_ARENAS) -> bool:
    """Allow at most `count` malloc arenas from now on; True when glibc took it.

    Call it before the process starts its threads (an arena a thread already has stays). A
    MALLOC_ARENA_MAX in the environment is the user's choice and is left alone; off Linux, or
    on a C library without glibc's mallopt (musl's ignores it), nothing happens.
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    taken = bool(mallopt(M_ARENA_MAX, count))
    log.debug("malloc arenas limited to %d: %s", count, taken)
    return taken
