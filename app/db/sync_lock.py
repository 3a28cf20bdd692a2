"""One syncing process per SQLite ledger: an OS lock on a file beside the database.

SQLite before 3.51.3 can corrupt a WAL database when two connections write and checkpoint at
once (STYLE.md traps). Each process keeps one connection, but two processes on one file — the
window and `sync --watch`, or two windows — would still be two writers. So only the process that
holds an exclusive lock on `<ledger>.sync-lock` syncs (writes); any other runs as a viewer
(app.ownership) that reads, asks the holder for syncs, and takes the lock over when it is free.

The lock is the operating system's: `fcntl.flock` on POSIX, `msvcrt.locking` on Windows. The OS
drops it when the holder's process ends in any way (kill -9 and a crash included), so what
counts is the lock, not the file: a lock file left behind by a dead process never blocks. The
file is never deleted — deleting a locked file would let a third process lock a new file of the
same name while the first still holds the old one.

The holder writes who it is into the file (one JSON object: pid, command, start time, and the
loopback port and token of its sync endpoint, app.sync.remote). The file is created 0600 like
the database: the token lets the user's own processes, and only them, ask it for a sync.

Within one process the lock is shared: a second Runtime on the same file (the window applying
new connection settings opens the new one before closing the old) holds it too, as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.db.engine import FILE_MODE
from app.db.errors import DatabaseError, DatabaseLockedError

log = logging.getLogger(__name__)

SUFFIX = ".sync-lock"
RECORD_LIMIT = 4096
"""Bytes of the holder's record read back (it is a few hundred)."""
WINDOWS_LOCK_AT = 1 << 20
"""Where the one locked byte sits on Windows: locks there are mandatory (a locked range cannot
be read), so the lock is taken past the record, which viewers must be able to read. Locking
beyond the end of a file is allowed (LockFile)."""


def lock_path(database: Path) -> Path:
    """The lock file beside a SQLite ledger: `ledger.sqlite` → `ledger.sqlite.sync-lock`."""
    return database.with_name(database.name + SUFFIX)


@dataclass(frozen=True, slots=True)
class SyncHolder:
    """Who syncs a ledger, as its lock file says."""

    pid: int
    command: str
    started_at: datetime
    port: int | None = None
    """The loopback port of its sync endpoint (app.sync.remote); None before it listens."""
    token: str | None = None

    def describe(self) -> str:
        """`pid 1234 (position-sync sync --watch)`: how the user is told who syncs."""
        return f"pid {self.pid} ({self.command})"

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "command": self.command,
                "started_at": self.started_at.isoformat(),
                "port": self.port,
                "token": self.token,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SyncHolder | None:
        """The record, or None when it is empty or torn (being rewritten by a new holder)."""
        try:
            raw = json.loads(text)
            return cls(
                pid=int(raw["pid"]),
                command=str(raw["command"]),
                started_at=datetime.fromisoformat(raw["started_at"]),
                port=int(raw["port"]) if raw.get("port") is not None else None,
                token=str(raw["token"]) if raw.get("token") is not None else None,
            )
        except (ValueError, KeyError, TypeError):
            return None


class _Held:
    """The open, locked file of one ledger, shared by this process's users of it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.users = 1


_registry_lock = threading.Lock()
_held: dict[Path, _Held] = {}


class SyncLock:
    """This process's hold on a ledger's sync lock; `release()` (or the process's end) drops it."""

    def __init__(self, held: _Held) -> None:
        self._held: _Held | None = held

    @property
    def path(self) -> Path:
        """The lock file."""
        assert self._held is not None
        return self._held.path

    @classmethod
    def try_acquire(cls, database: Path) -> SyncLock | None:
        """The lock if no other process holds it (never waits); None while another does.

        Raises OSError when the lock file cannot be created or opened (a read-only folder).
        """
        path = lock_path(database)
        with _registry_lock:
            held = _held.get(path)
            if held is not None:
                held.users += 1
                return cls(held)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            try:
                locked = _lock(fd)
            except BaseException:
                os.close(fd)
                raise
            if not locked:
                os.close(fd)
                return None
            held = _Held(path, fd)
            _held[path] = held
        return cls(held)

    @property
    def held(self) -> bool:
        """Whether this handle still holds the lock."""
        return self._held is not None

    def publish(self, holder: SyncHolder) -> None:
        """Write who holds the lock into the file (replacing a dead holder's record)."""
        held = self._held
        if held is None:
            raise RuntimeError("the sync lock was released")
        data = holder.to_json().encode()
        os.lseek(held.fd, 0, os.SEEK_SET)
        os.ftruncate(held.fd, 0)
        os.write(held.fd, data)
        os.fsync(held.fd)

    def release(self) -> None:
        """Drop this handle; the last one in the process empties the record and unlocks."""
        held, self._held = self._held, None
        if held is None:
            return
        with _registry_lock:
            held.users -= 1
            if held.users:
                return
            del _held[held.path]
            try:
                # Emptied while still held: a record left would name a process that is gone.
                os.ftruncate(held.fd, 0)
            except OSError:
                log.debug("could not empty %s", held.path, exc_info=True)
            try:
                _unlock(held.fd)
            finally:
                os.close(held.fd)


def read_holder(database: Path) -> SyncHolder | None:
    """Who the lock file says holds the lock; None when it says nobody (or cannot be read).

    The record alone does not prove the lock is held (a crashed holder leaves its record):
    whoever needs to know tries `SyncLock.try_acquire` first.
    """
    try:
        with lock_path(database).open("rb") as file:
            text = file.read(RECORD_LIMIT)
    except OSError:
        return None
    return SyncHolder.from_json(text.decode(errors="replace")) if text else None


@contextlib.contextmanager
def writing_alone(database: Path | None, command: str) -> Iterator[None]:
    """Hold the ledger's sync lock while a one-off writer (a statement's import from the command
    line) writes, so no second process writes the SQLite file meanwhile; a window or
    `sync --watch` started during it views, and takes over when it ends. PostgreSQL and
    in-memory ledgers (`database` None) take no lock.

    Raises DatabaseLockedError naming the process that syncs the ledger when one does.
    """
    if database is None:
        yield
        return
    try:
        lock = SyncLock.try_acquire(database)
    except OSError as exc:
        raise DatabaseError(
            f"{database}: cannot open its sync lock file ({exc.strerror}); check the folder's "
            "permissions",
            location=database,
        ) from exc
    if lock is None:
        holder = read_holder(database)
        who = holder.describe() if holder is not None else "another process"
        raise DatabaseLockedError(
            f"{database}: {who} syncs this ledger and is its only writer; import the "
            "statement there (File → Import IB statement… in the window), or stop it first",
            location=database,
        )
    try:
        lock.publish(SyncHolder(os.getpid(), command, datetime.now(UTC)))
        yield
    finally:
        lock.release()


if sys.platform == "win32":
    import msvcrt

    def _lock(fd: int) -> bool:
        os.lseek(fd, WINDOWS_LOCK_AT, os.SEEK_SET)
        try:
            # LK_NBLCK: one attempt, no retries (LK_LOCK would retry for ten seconds).
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except PermissionError:
            return False
        except OSError as exc:  # EACCES / EDEADLOCK: another process holds the byte
            if exc.errno in (13, 36):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, WINDOWS_LOCK_AT, os.SEEK_SET)
        with contextlib.suppress(OSError):  # closing the handle releases it anyway
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> bool:
        # flock, not fcntl/lockf: an flock belongs to the open file, so it is dropped only when
        # this descriptor closes (lockf locks vanish when the process closes ANY descriptor of
        # the file), and it conflicts even between two opens in one process.
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
