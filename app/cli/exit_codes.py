"""Process exit codes (DESIGN.md "Command line")."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What `position-sync` returns to the shell."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    BROKER = 3  # broker unreachable or snapshot incomplete; nothing changed
    DATABASE = 4  # database error; nothing changed
