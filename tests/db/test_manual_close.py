"""Mark closed through the ledger's one write door (LedgerStore.mark_closed), with the version
check, against a real ledger synced through real ib_insync from the simulator.

Runs on a SQLite file and on PostgreSQL (tests.engines).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from app.db import repository
from app.db.reader import LedgerReader
from app.db.store import LedgerStore
from app.domain.manual import LifecycleChangedError, LifecycleVersion, MarkClosedRequest
from app.domain.values import CloseReason, EventKind, PnlBasis, PositionStatus, SyncTrigger
from app.sim import contracts as c
from app.sim.state import SimState
from app.sync.service import SyncOptions
from tests.sync.conftest import Stack
from tests.sync.test_trading_day import connected

D = Decimal
ACCOUNT = "DU8000008"
AAPL = (ACCOUNT, c.AAPL.con_id)


@pytest.fixture
def stack(ledger_url: str, start_sim: Any, loop: Any) -> Any:
    """AAPL 100 @ 150 at the broker; a sync service that syncs only when asked."""
    state = SimState()
    state.add_account(ACCOUNT, "USD")
    state.set_position(ACCOUNT, c.AAPL, D(100), D(150), D(152))
    built = Stack(start_sim(None, state=state), ledger_url, SyncOptions(enabled=False))
    yield built
    loop.run_until_complete(built.service.stop())
    built.db.close()
    built.assert_no_order_messages()


def _store(stack: Stack) -> LedgerStore:
    store = stack.service.ledger
    assert isinstance(store, LedgerStore)
    return store


async def _what_the_window_shows(stack: Stack) -> tuple[Any, LifecycleVersion]:
    """The OPEN AAPL lifecycle as the window loads it, and the version it would send."""
    store = _store(stack)
    rows = await LedgerReader(store.db, store.kept).positions(include_closed=True)
    (life,) = [p for p in rows if p.key == AAPL and p.is_open]
    events = await stack.db.run(repository.events, life.id)
    return life, LifecycleVersion.of(life, events[-1].id)


async def _sync(stack: Stack) -> None:
    result = await stack.service.sync_positions(SyncTrigger.MANUAL)
    assert result.ok, result


def _request(seen: LifecycleVersion, price: str) -> MarkClosedRequest:
    return MarkClosedRequest(seen, D(price), datetime.now(UTC), "sold at another broker")


def test_mark_closed_on_a_copy_a_sync_changed_is_refused_then_right_after_reload(stack, run):
    """Issue 15 item 8: the window loaded AAPL 100 @ 150; a sync then booked a fill (REDUCED
    100 → 60, realized 400); Mark closed at 155 wrote MARKED_CLOSED 100 → 0 and realized 500,
    where 700 is right. The write checked only that the row was still OPEN."""

    async def scenario() -> None:
        await connected(stack)
        await _sync(stack)
        _, stale = await _what_the_window_shows(stack)
        assert stale.quantity == 100 and stale.realized_pnl == 0

        # Between the window's load and the click: a fill, booked by a sync.
        stack.sim.fill(ACCOUNT, c.AAPL, -40, "160", commission=D(0))
        await _sync(stack)
        (reduced,) = stack.db.run_sync(repository.lifecycles_for, [AAPL])
        assert (reduced.quantity, reduced.realized_pnl) == (60, 400)
        events_before = stack.db.run_sync(repository.events, reduced.id)
        assert events_before[-1].kind is EventKind.REDUCED

        with pytest.raises(LifecycleChangedError) as refused:
            await _store(stack).mark_closed(_request(stale, "155"))
        assert str(refused.value) == (
            "AAPL changed since you looked: quantity 100 → 60, realized 0.00 → 400.00 "
            "(a sync booked a fill). Reload and decide again."
        )
        # Nothing written.
        (after_refusal,) = stack.db.run_sync(repository.lifecycles_for, [AAPL])
        assert after_refusal == reduced
        assert stack.db.run_sync(repository.events, reduced.id) == events_before

        # Reload, decide again: 60 closed at 155 realizes 300 more; 700 in all.
        _, fresh = await _what_the_window_shows(stack)
        closed = await _store(stack).mark_closed(_request(fresh, "155"))
        assert closed.status is PositionStatus.CLOSED and closed.close_reason is CloseReason.MANUAL
        assert closed.realized_pnl == 700
        # The user's price is not a fill: the close's 300 is an estimate, the fill's 400 exact.
        assert closed.realized_pnl_estimated == 300 and closed.realized_pnl_exact == 400
        assert closed.pnl_basis is PnlBasis.ESTIMATED
        last = stack.db.run_sync(repository.events, closed.id)[-1]
        assert last.kind is EventKind.MARKED_CLOSED
        assert (last.quantity_before, last.quantity_after, last.realized_pnl) == (60, 0, 300)
        assert last.pnl_basis is PnlBasis.ESTIMATED and last.note == "sold at another broker"

        # The same version again (a double click): it is closed now, refused.
        with pytest.raises(LifecycleChangedError, match="AAPL changed since you looked: it was"):
            await _store(stack).mark_closed(_request(fresh, "155"))

        # The store's kept copy saw the write: the next sync does not resurrect or rewrite the
        # closed row; TWS still reports 60, so (as the window warns) a new lifecycle opens.
        await _sync(stack)
        rows = sorted(stack.db.run_sync(repository.lifecycles_for, [AAPL]), key=lambda p: p.id)
        assert [(p.status, p.quantity) for p in rows] == [
            (PositionStatus.CLOSED, 0),
            (PositionStatus.OPEN, 60),
        ]
        assert rows[0] == closed

    run(scenario(), timeout=30)


def test_mark_closed_of_an_unchanged_lifecycle_is_written(stack, run):
    """The happy path: nothing changed since the window loaded it, the close is written."""

    async def scenario() -> None:
        await connected(stack)
        await _sync(stack)
        life, seen = await _what_the_window_shows(stack)
        closed = await _store(stack).mark_closed(_request(seen, "152.5"))
        assert closed.id == life.id and closed.quantity == 0
        assert closed.realized_pnl == closed.realized_pnl_estimated == 250
        assert closed.pnl_basis is PnlBasis.ESTIMATED

    run(scenario(), timeout=30)


def test_refused_when_only_the_history_moved(stack, run):
    """A sync that adds an event but leaves quantity and realized as they were (the position
    went missing at the broker) still refuses: the last event id is the version's identity."""

    async def scenario() -> None:
        await connected(stack)
        await _sync(stack)
        _, seen = await _what_the_window_shows(stack)
        stack.sim.remove_position(ACCOUNT, c.AAPL.con_id)
        await _sync(stack)
        (missing,) = stack.db.run_sync(repository.lifecycles_for, [AAPL])
        assert missing.is_open and missing.quantity == 100 and missing.missing_since is not None
        with pytest.raises(LifecycleChangedError) as refused:
            await _store(stack).mark_closed(_request(seen, "150"))
        assert str(refused.value) == (
            "AAPL changed since you looked: new events in its history "
            "(a sync found it missing at the broker). Reload and decide again."
        )

    run(scenario(), timeout=30)
