"""The one write door for a user's manual change of the ledger: Mark closed.

It runs like a sync's transaction (app.db.store): the accounts' locks first (PostgreSQL; on
SQLite the transaction is BEGIN IMMEDIATE), then the lifecycle and its last event read again,
and the change is written only if they are still what the user saw (app.domain.manual).

The close is recorded as a fact of the key's history — a USER_CLOSE observation at the user's
price, time and note (app.domain.history) — and the key is folded again, so a later re-fold (a
late commission report, a correction) keeps it and books it at the right point.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db import concurrency
from app.db.repository import queries, writes
from app.domain.history import Observation, ObservationKind
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
    current = queries.position(session, seen.position_id)
    events = queries.events(session, seen.position_id) if current is not None else []
    # Validates the close and refuses a changed lifecycle; the change it plans is what the fold
    # below derives from the recorded close.
    decide_mark_closed(request, current, events[-1] if events else None)
    assert current is not None
    writes.record_observation(
        session,
        Observation(
            current.account,
            current.contract.con_id,
            ObservationKind.USER_CLOSE,
            request.at,
            price=request.exit_price,
            note=request.note,
        ),
    )
    from app.domain.reconcile import refold  # not before the first paint (issue 19)

    changes, deleted = refold(
        queries.load_histories(session, [current.key]),
        load_history=lambda keys: queries.load_histories(session, keys),
    )
    writes.apply_refold(session, changes, deleted)
    closed = queries.position(session, seen.position_id)
    assert closed is not None
    return closed
