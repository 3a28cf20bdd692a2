"""The window's process keeps at most two glibc malloc arenas (app.ui.arenas, run_window).

Each case runs in a fresh interpreter: an arena a thread already has stays, so only a process
that limits them before its threads start shows the limit.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Starts six threads that each allocate (glibc gives each its own arena, up to its limit) and
# counts the arenas glibc then reports (malloc_info's <heap> elements).
SCRIPT = """
import ctypes, sys, tempfile, threading
from app.ui.arenas import limit_malloc_arenas
print(limit_malloc_arenas() if sys.argv[1] == "limit" else "none", flush=True)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
held, started, done = [], threading.Barrier(7), threading.Event()
def work():
    held.append(libc.malloc(4096))
    started.wait()
    done.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads:
    t.start()
started.wait()
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(open(out.name).read().count("<heap nr="), flush=True)
done.set()
for t in threads:
    t.join()
"""

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="glibc's malloc arenas only",
)


def _arenas(mode: str, **env: str) -> tuple[str, int]:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return out[0], int(out[1])


@glibc
def test_limited_a_process_keeps_two_arenas() -> None:
    """What run_window does first; without it each allocating thread gets an arena."""
    assert _arenas("limit") == ("True", 2)
    assert _arenas("none")[1] > 2


@glibc
def test_a_users_malloc_arena_max_is_left_alone() -> None:
    assert _arenas("limit", MALLOC_ARENA_MAX="4") == ("False", 4)
