"""Has another process committed to a SQLite ledger? `PRAGMA data_version` on a read-only
connection of its own.

A viewer (app.ownership) reloads what it shows when the syncing process commits. Asking through
the Database would queue behind the viewer's own reads on its database thread and open a
transaction every second; this connection only reads one counter from the WAL index. It is
opened read-only, so it never writes or checkpoints (the WAL bug of STYLE.md needs two writers).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from app.db.engine import BUSY_TIMEOUT_S

log = logging.getLogger(__name__)


class DataVersion:
    """`version()` moves whenever another connection commits to the file (polled: cheap)."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # called from a worker thread; close() from the loop's

    def version(self) -> int | None:
        """The file's data version as this connection sees it (blocking: microseconds); None
        when the file cannot be read just now (logged; the next poll tries again)."""
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = sqlite3.connect(
                        f"{self._database.as_uri()}?mode=ro",
                        uri=True,
                        timeout=BUSY_TIMEOUT_S,
                        isolation_level=None,
                        check_same_thread=False,
                    )
                return int(self._connection.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as exc:
                log.warning("could not read the data version of %s: %s", self._database, exc)
                return None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
