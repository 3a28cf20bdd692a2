"""Mark closed: the user's resolution of a missing position."""

from __future__ import annotations

import pytest

from app.domain.manual import MarkClosedError, last_known_price, mark_closed
from app.domain.values import CloseReason, EventKind, PositionStatus, PriceSource
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
