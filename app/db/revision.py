"""The ledger's status with its revision, read in one transaction on the database thread."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.repository import queries
from app.domain.records import LedgerStatus
from app.domain.values import CostBasis


def stamped_revision(session: Session) -> str | None:
    """The Alembic revision stamped in the database (what `migrate.current` reads from outside)."""
    # Imported here: the window imports the ledger reader before its first paint, and Alembic
    # is not needed until a status is asked for (tests/ui/test_startup).
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(session.connection()).get_current_revision()


def ledger_status_now(
    session: Session, database: str, cost_basis: CostBasis = CostBasis.AVERAGE
) -> LedgerStatus:
    """`queries.ledger_status` with the stamped revision, for a process that holds the ledger
    open (the local API): no second connection, and the same numbers `status` prints (realized
    totals by `cost_basis`, the setting in force)."""
    return queries.ledger_status(session, database, stamped_revision(session), cost_basis)
