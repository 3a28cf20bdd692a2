"""A re-derivation through the sync transaction (and Mark closed) leaves exactly the ledger a
from-scratch fold of the key's final history gives, FIFO figures included.

Guards the re-fold's shortcuts (app.domain.lots.with_fifo keeps the stored FIFO figures of the
lifecycles it derives again unchanged; the history load's fast decoding): a ledger of three
lifecycles — one with a commission report that arrives late, one split 2:1 with a late report
and a corrected execution, one still open and then marked closed — written by real syncs on a
real, migrated database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from app.db import manual, repository
from app.db.database import Database
from app.db.store import LedgerStore
from app.domain.fold import KeyHistory, fold
from app.domain.history import StoredHistory, same_event
from app.domain.lots import with_fifo
from app.domain.manual import LifecycleVersion, MarkClosedRequest
from app.domain.plan import ReconcileOptions
from app.domain.values import BrokerPosition, EventKind, Fill, SyncTrigger
from tests.domain.ledger_fixture import AAPL, D, at, fill, snapshot
from tests.ib_average import ib_average

ACCOUNT = "DU111"
KEY = (ACCOUNT, AAPL.con_id)
DAY = 24 * 60


def _row(fills: Sequence[Fill], split: int = 1) -> BrokerPosition:
    """IB's row after `fills` (average of the buys with their commissions; sells leave it), then
    a `split`:1 split."""
    quantity, average = ib_average(fills, split)
    return BrokerPosition(ACCOUNT, AAPL, quantity, average)


def _sync(db: Database, minutes: float, row: BrokerPosition, fills: tuple[Fill, ...]) -> None:
    snap = snapshot(row, fills=fills, minutes=minutes)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            LedgerStore(db).commit_snapshot(
                snap, ReconcileOptions(), SyncTrigger.EXECUTION, snap.taken_at
            )
        )
    finally:
        loop.close()


def _stored(db: Database) -> StoredHistory:
    return db.run_sync(repository.load_histories, [KEY])[KEY]


def _assert_equals_a_full_fold(stored: StoredHistory) -> None:
    """Every stored lifecycle and event is what folding the stored facts from scratch gives."""
    history = KeyHistory(ACCOUNT, AAPL, stored.fills, stored.observations)
    full = with_fifo(fold(history), history)
    assert len(stored.lifecycles) == len(full.lifecycles)
    for life, derived in zip(stored.lifecycles, full.lifecycles, strict=True):
        new = derived.lifecycle
        assert (life.status, life.quantity, life.opened_at, life.closed_at) == (
            new.status,
            new.quantity,
            new.opened_at,
            new.closed_at,
        )
        assert (life.realized_pnl, life.realized_pnl_estimated, life.pnl_basis) == (
            new.realized_pnl,
            new.realized_pnl_estimated,
            new.pnl_basis,
        )
        events = stored.events[life.id or 0]
        assert len(events) == len(derived.events)
        for kept, event in zip(events, derived.events, strict=True):
            assert same_event(kept, event), (kept, event)


def test_late_reports_a_correction_and_a_close_re_derive_as_a_full_fold(any_db: Database) -> None:
    db = any_db
    f1 = fill(AAPL, "BOT", "100", "10", commission="1", minutes=1)
    f2 = fill(AAPL, "BOT", "100", "12", commission=None, minutes=2)  # its report comes late
    f3 = fill(AAPL, "SLD", "150", "15", commission="1.50", minutes=3)
    f4 = fill(AAPL, "SLD", "50", "16", commission="1", minutes=7)
    f5 = fill(AAPL, "BOT", "30", "20", commission=None, minutes=15)  # its report comes late
    f6 = fill(AAPL, "BOT", "10", "21", commission="1", minutes=16)
    f7 = fill(AAPL, "SLD", "20", "22", commission="1", minutes=17)  # corrected later
    f8 = fill(AAPL, "SLD", "40", "12", commission="1", minutes=DAY + 8)
    f9 = fill(AAPL, "BOT", "10", "30", commission="1", minutes=DAY + 15)
    _sync(db, 5, _row([f1, f2, f3]), (f1, f2, f3))
    _sync(db, 10, _row([f1, f2, f3, f4]), (f4,))  # closed
    _sync(db, 20, _row([f5, f6, f7]), (f5, f6, f7))
    _sync(db, DAY + 5, _row([f5, f6, f7], split=2), ())  # 20 → 40: a 2:1 split
    _sync(db, DAY + 10, _row([f8]), (f8,))  # closed
    _sync(db, DAY + 20, _row([f9]), (f9,))  # open
    before = _stored(db)
    assert [life.status.value for life in before.lifecycles] == ["CLOSED", "CLOSED", "OPEN"]
    kinds = [e.kind for e in before.events[before.lifecycles[1].id or 0]]
    assert EventKind.SPLIT in kinds
    _assert_equals_a_full_fold(before)

    # The two commission reports arrive, and IB corrects the 20 @ 22 to 22.50.
    corrected = replace(f7, exec_id=f7.exec_id.rsplit(".", 1)[0] + ".02", price=Decimal("22.50"))
    late = (
        replace(f2, commission=D(1), commission_currency="USD"),
        replace(f5, commission=D(1), commission_currency="USD"),
        corrected,
    )
    _sync(db, DAY + 30, _row([f9]), late)
    after = _stored(db)
    _assert_equals_a_full_fold(after)
    for index in (0, 1):  # the late facts changed both closed lifecycles' P&L
        assert after.lifecycles[index].realized_pnl != before.lifecycles[index].realized_pnl
    assert after.events[after.lifecycles[2].id or 0] == before.events[before.lifecycles[2].id or 0]

    # The user marks the open lifecycle closed: the key is folded again through Mark closed.
    open_life = after.lifecycles[2]
    last = after.events[open_life.id or 0][-1]
    request = MarkClosedRequest(
        LifecycleVersion.of(open_life, last.id), D("31"), at(DAY + 40), "test"
    )
    db.run_sync(manual.mark_closed, request)
    closed = _stored(db)
    assert not closed.lifecycles[2].is_open
    _assert_equals_a_full_fold(closed)
