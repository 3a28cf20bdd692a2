"""The one write door for a user's manual change of the ledger: Mark closed.

It runs like a sync's transaction (app.db.store): the accounts' locks first (PostgreSQL; on
SQLite the transaction is BEGIN IMMEDIATE), then the lifecycle and its last event read again,
and the change is written only if they are still what the user saw (app.domain.manual).

How the close is recorded is this module's business alone: today a MARKED_CLOSED change of the
row; once the ledger is a fold of its history, a USER_CLOSE observation and a re-fold of the key.
The signature and the version check stay.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db import concurrency, repository
from app.domain.manual import MarkClosedRequest, decide_mark_closed
from app.domain.values import Lifecycle


def mark_closed(session: Session, request: MarkClosedRequest) -> Lifecycle:
    """Write the user's Mark closed if the lifecycle is still `request.seen`; the closed row.

    Raises app.domain.manual.LifecycleChangedError (nothing written) when a sync or another
    writer changed it since, and MarkClosedError for a close that cannot be (bad price, time).
    """
    seen = request.seen
    # Before any read the decision depends on: a sync of this account waits until we commit.
    concurrency.lock_accounts(session, [seen.account])
    current = repository.position(session, seen.position_id)
    events = repository.events(session, seen.position_id) if current is not None else []
    change = decide_mark_closed(request, current, events[-1] if events else None)
    repository.apply_manual_change(session, change)
    closed = repository.position(session, seen.position_id)
    assert closed is not None
    return closed
