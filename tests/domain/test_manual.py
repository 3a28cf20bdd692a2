"""Mark closed: the user's resolution of a missing position."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.domain.manual import (
    LifecycleChangedError,
    LifecycleVersion,
    MarkClosedError,
    MarkClosedRequest,
    decide_mark_closed,
    last_known_price,
    mark_closed,
    version_changes,
)
from app.domain.records import StoredEvent
from app.domain.values import CloseReason, EventKind, PnlBasis, PositionStatus, PriceSource
from tests.domain.ledger_fixture import AAPL, ES, D, MemoryLedger, at, pos, snapshot


def _ledger_with(*rows):
    ledger = MemoryLedger()
    snap = snapshot(*rows)
    ledger.sync(snap)
    return ledger


def test_mark_closed_long_with_realized():
    ledger = _ledger_with(pos(AAPL, "100", "150", market="152.5"))
    row = ledger.only_open()
    assert last_known_price(row) == D("152.5")
    change = mark_closed(row, D("152.5"), at(60), "sold in another platform")
    (event,) = change.events
    assert event.kind is EventKind.MARKED_CLOSED and event.price_source is PriceSource.MANUAL
    assert event.realized_pnl == D("250.0") and event.note == "sold in another platform"
    assert change.after.status is PositionStatus.CLOSED
    assert change.after.close_reason is CloseReason.MANUAL and change.after.quantity == 0


def test_mark_closed_short_future():
    ledger = _ledger_with(pos(ES, "-2", "4500"))
    change = mark_closed(ledger.only_open(), D("4490"), at(60))
    assert change.after.realized_pnl == D("1000")  # 10 points × 2 × 50


def test_mark_closed_refuses_bad_input():
    ledger = _ledger_with(pos(AAPL, "100", "150"))
    row = ledger.only_open()
    with pytest.raises(MarkClosedError):
        mark_closed(row, D("NaN"), at(60))
    with pytest.raises(MarkClosedError):
        mark_closed(row, D("1"), at(-600))
    closed = mark_closed(row, D("1"), at(60)).after
    with pytest.raises(MarkClosedError):
        mark_closed(closed, D("1"), at(61))


def test_mark_closed_is_an_estimate_on_top_of_what_was_exact():
    """The user's exit price is not a fill: the close's amount is `estimated` (issue 15)."""
    ledger = _ledger_with(pos(AAPL, "100", "150"))
    row = ledger.only_open()
    change = mark_closed(row, D("152.5"), at(60))
    (event,) = change.events
    assert event.pnl_basis is PnlBasis.ESTIMATED
    assert change.after.pnl_basis is PnlBasis.ESTIMATED
    assert change.after.realized_pnl_estimated == D("250.0")
    assert change.after.realized_pnl_exact == 0


def test_version_check_names_what_changed():
    """Issue 15 item 8: a close decided on a copy a sync changed must be refused, saying what."""
    ledger = _ledger_with(pos(AAPL, "100", "150"))
    row = replace(ledger.only_open(), id=7)
    seen = LifecycleVersion.of(row, last_event_id=1)
    request = MarkClosedRequest(seen, D("155"), at(60))
    fill = StoredEvent(
        2, 7, 3, EventKind.REDUCED, at(30), D(100), D(60), D(160), PriceSource.FILLS,
        D(400), None, ("e1",), "",
    )  # fmt: skip
    now = replace(row, quantity=D(60), realized_pnl=D(400))
    with pytest.raises(LifecycleChangedError) as refused:
        decide_mark_closed(request, now, fill)
    assert str(refused.value) == (
        "AAPL changed since you looked: quantity 100 → 60, realized 0.00 → 400.00 "
        "(a sync booked a fill). Reload and decide again."
    )
    opened = replace(fill, id=1, kind=EventKind.OPENED)
    assert decide_mark_closed(request, row, opened).after.realized_pnl == 500
    assert version_changes(seen, None, None) == (
        "AAPL is no longer in the ledger. Reload and decide again."
    )
