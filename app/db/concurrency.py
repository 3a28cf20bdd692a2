"""Several syncers on one PostgreSQL ledger: advisory locks and the newest-snapshot guard.

A desk may run several sync services (workstations, a headless syncer) on one database. Each
write transaction that reads the ledger and then writes it (a sync, a Mark closed) first takes a
transaction-level advisory lock per account it touches, in ascending key order (so two writers
never wait on each other in a cycle); a second syncer of the same account waits there until the
first commits, and then reads what it committed (READ COMMITTED, see app.db.engine). Syncs of
other accounts and every reader go on undisturbed: plain reads never wait for advisory locks
and see committed rows only.

Serialising the writes is not enough on its own: a snapshot taken *before* another syncer's
newer one may reach the lock *after* it, and applying it would move positions back (a fill
undone, then re-done at market price — wrong realized P&L). So every committed snapshot stamps
its accounts with the time it finished collecting (`accounts.last_snapshot_at`), and a sync that
started before that moment is superseded: it writes only a `skipped` run row, and the service
takes a fresh snapshot (which starts after the newer one ended). This relies on the desk's clocks
agreeing (NTP); a stamp ahead of this machine's clock is ignored rather than trusted.

The unique indexes (one OPEN row per (account, conId); execId) remain the last line of defence.

On SQLite the locks are a no-op without a round trip: one file has one writer at a time anyway
(BEGIN IMMEDIATE). The newest-snapshot guard applies there too — two instances on one file (the
window and `sync --watch`) race the same way — at the cost of one small read and write per sync.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Connection, Table, func, select, update
from sqlalchemy.orm import Session

from app.db.tables import AccountRow

log = logging.getLogger(__name__)

A = cast(Table, AccountRow.__table__)

# pg_advisory_xact_lock(int4, int4): the first number names what the lock is for, so these
# never collide with locks another application takes on the same server.
ACCOUNT_LOCKS = 0x50534E41  # "PSNA"
MIGRATION_LOCKS = 0x50534E4D  # "PSNM"


def is_shared(session: Session | Connection) -> bool:
    """True on PostgreSQL, where several processes on several machines may write at once."""
    bind = session.get_bind() if isinstance(session, Session) else session
    return bind.dialect.name == "postgresql"


def account_lock_key(code: str) -> int:
    """A stable signed 32-bit key for an account code (a collision only serialises two accounts)."""
    digest = hashlib.blake2b(code.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_accounts(session: Session, codes: Iterable[str]) -> None:
    """Wait for, then hold until commit or rollback, the write lock of each account (PostgreSQL).

    Call it first in the transaction, before any read the writes depend on.
    """
    if not is_shared(session):
        return
    for key in sorted({account_lock_key(code) for code in codes}):
        session.execute(select(func.pg_advisory_xact_lock(ACCOUNT_LOCKS, key)))


def lock_migrations(connection: Connection) -> None:
    """Hold the migration lock until the upgrade transaction ends (PostgreSQL).

    Two workstations starting a new version at once: the second waits, then finds the database
    already at head.
    """
    if connection.dialect.name != "postgresql":
        return
    connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCKS, 0)))


def superseded(session: Session, codes: Iterable[str], started_at: datetime) -> datetime | None:
    """When a newer snapshot of these accounts was committed, its time; else None.

    "Newer" means it finished collecting at or after `started_at`, when this sync began: this
    one's data may then be older than what the ledger already holds. Call it holding the locks.
    """
    wanted = sorted(set(codes))
    if not wanted:
        return None
    newest = session.execute(
        select(func.max(A.c.last_snapshot_at)).where(A.c.code.in_(wanted))
    ).scalar_one()
    if newest is None or newest < started_at:
        return None
    if newest > datetime.now(UTC):
        log.warning(
            "a snapshot committed by another syncer is stamped %s, ahead of this machine's clock;"
            " applying this one anyway (keep the desk's clocks in sync with NTP)",
            newest.isoformat(),
        )
        return None
    return cast(datetime, newest)


def stamp_snapshot(session: Session, codes: Iterable[str], taken_at: datetime) -> None:
    """Record that a snapshot of these accounts, finished at `taken_at`, was committed."""
    wanted = sorted(set(codes))
    if not wanted:
        return
    session.execute(update(A).where(A.c.code.in_(wanted)).values(last_snapshot_at=taken_at))
