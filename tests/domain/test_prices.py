"""Price sanity (issue 16, item 6): 0, -1 and stale prices never price an exit.

Worked examples on the pure core: a snapshot at T0 + minutes, an in-memory ledger with its
history (tests.domain.ledger_fixture). PRICE_MAX_AGE is 24 h.
"""

from __future__ import annotations

from app.domain.plan import ReconcileOptions
from app.domain.prices import PRICE_MAX_AGE, is_price
from app.domain.values import CloseReason, EventKind, PnlBasis, PriceSource
from app.domain.values import Contract as _Contract
from tests.domain.ledger_fixture import AAPL, D, MemoryLedger, pos, snapshot

DAY = 24 * 60
MISSING_CLOSES = ReconcileOptions(mark_missing_as_closed=True)
EXPIRED_ES = _Contract(
    495500001, "ES", sec_type="FUT", local_symbol="ESH6", multiplier=D(50), expiry="20261120"
)  # expired four days before T0 (2026-11-24)


def test_is_price_only_above_zero() -> None:
    assert [is_price(v) for v in (D("0.01"), D(0), D(-1), D("NaN"), None)] == [
        True,
        False,
        False,
        False,
        False,
    ]
    assert PRICE_MAX_AGE.total_seconds() == DAY * 60


def test_zero_and_minus_one_are_no_current_price() -> None:
    """TWS's 0 / -1 without market data: no current price, value or unrealized P&L."""
    ledger = MemoryLedger()
    ledger.sync(snapshot(pos(AAPL, "100", "150", market="0")))
    row = ledger.only_open()
    assert (row.current_price, row.market_value, row.unrealized_pnl) == (None, None, None)
    ledger.sync(snapshot(pos(AAPL, "100", "150", market="-1"), minutes=10))
    assert ledger.only_open().current_price is None
    assert ledger.observations[0].price is None  # the stored fact says "no price" too


def test_sale_without_fills_at_minus_one_is_unknown_not_booked_at_minus_one() -> None:
    """100 @ 150 → 60 with no fills while marked -1 and no earlier price: the 40 sold are
    REDUCED at no price (unknown), never (−1 − 150) × 40 = −6,040."""
    ledger = MemoryLedger()
    ledger.sync(snapshot(pos(AAPL, "100", "150", market="-1")))
    plan = ledger.sync(snapshot(pos(AAPL, "60", "150", market="-1"), minutes=10))
    (event,) = plan.changes[0].events
    assert event.kind is EventKind.REDUCED and event.price is None
    assert event.realized_pnl is None and event.pnl_basis is PnlBasis.UNKNOWN


def test_last_known_price_within_a_day_prices_the_sale() -> None:
    """Seen at 155 23 h ago, no price now: the sale is estimated at 155 (last known)."""
    ledger = MemoryLedger()
    ledger.sync(snapshot(pos(AAPL, "100", "150", market="155"), minutes=0))
    plan = ledger.sync(snapshot(pos(AAPL, "60", "150", market="0"), minutes=23 * 60))
    (event,) = plan.changes[0].events
    assert event.price == 155 and event.price_source is PriceSource.LAST_KNOWN
    assert event.realized_pnl == D(200) and event.pnl_basis is PnlBasis.ESTIMATED


def test_stale_last_known_price_is_no_price() -> None:
    """Regression (issue 16 item 6): a price seen 25 h ago (a weekend, the app closed) priced
    a sale no fill explains. It is stale: the sale is booked at no price, its amount unknown."""
    ledger = MemoryLedger()
    ledger.sync(snapshot(pos(AAPL, "100", "150", market="155"), minutes=0))
    plan = ledger.sync(snapshot(pos(AAPL, "60", "150"), minutes=25 * 60))
    (event,) = plan.changes[0].events
    assert event.price is None and event.price_source is None
    assert event.realized_pnl is None and event.pnl_basis is PnlBasis.UNKNOWN
    assert "older than 24 h" in event.note


def test_missing_close_uses_the_ledgers_fresh_price_not_the_old_observation() -> None:
    """mark_missing_as_closed: AAPL was observed at 149 two days ago (its last change); since
    then every sync saw it unchanged, the last one 5 min ago at 160. Vanished now: it closes
    at the price the ledger held (160, last known, estimated): (160 − 150) × 100 = 1,000 —
    not at the 2-day-old 149, and not unknown."""
    ledger = MemoryLedger()
    ledger.sync(snapshot(pos(AAPL, "100", "150", market="149"), minutes=0))
    ledger.sync(snapshot(pos(AAPL, "100", "150", market="160"), minutes=2 * DAY))
    assert ledger.only_open().current_price == 160
    plan = ledger.sync(snapshot(minutes=2 * DAY + 5), MISSING_CLOSES)
    (change,) = plan.changes
    (event,) = change.events
    assert event.kind is EventKind.CLOSED and change.after.close_reason is CloseReason.MISSING
    assert event.price == 160 and event.price_source is PriceSource.LAST_KNOWN
    assert event.realized_pnl == D(1000) and event.pnl_basis is PnlBasis.ESTIMATED


def test_missing_close_after_a_day_without_syncs_is_unknown() -> None:
    """The last sync that saw AAPL was 3 days ago (app closed over a weekend): its price is
    stale, the missing close is booked at no price (unknown), not at the old 160."""
    ledger = MemoryLedger()
    ledger.sync(snapshot(pos(AAPL, "100", "150", market="160"), minutes=0))
    plan = ledger.sync(snapshot(minutes=3 * DAY), MISSING_CLOSES)
    (event,) = plan.changes[0].events
    assert event.kind is EventKind.CLOSED and event.price is None
    assert event.realized_pnl is None and event.pnl_basis is PnlBasis.UNKNOWN


def test_absence_without_the_option_closes_nothing() -> None:
    """Rule 2 holds whatever the price: no price is never a reason to close."""
    ledger = MemoryLedger()
    ledger.sync(snapshot(pos(AAPL, "100", "150", market="-1"), minutes=0))
    plan = ledger.sync(snapshot(minutes=10))
    assert [e.kind for c in plan.changes for e in c.events] == [EventKind.MISSING]
    assert ledger.only_open().quantity == 100


def test_expired_future_settles_at_a_fresh_last_price_only() -> None:
    """A future past expiry vanishes: at the last fresh price (5,010, seen 10 min before:
    (5,010 − 5,000) × 50 = 500, estimated); with only -1 known, its settlement is unknown."""
    fresh = MemoryLedger()
    fresh.sync(snapshot(pos(EXPIRED_ES, "1", "5000", market="5010"), minutes=0))
    plan = fresh.sync(snapshot(minutes=10))
    (event,) = plan.changes[0].events
    assert plan.changes[0].after.close_reason is CloseReason.EXPIRED
    assert event.price == 5010 and event.realized_pnl == D(500)
    assert event.pnl_basis is PnlBasis.ESTIMATED

    unpriced = MemoryLedger()
    unpriced.sync(snapshot(pos(EXPIRED_ES, "1", "5000", market="-1"), minutes=0))
    plan = unpriced.sync(snapshot(minutes=10))
    (event,) = plan.changes[0].events
    assert plan.changes[0].after.close_reason is CloseReason.EXPIRED
    assert event.price is None and event.realized_pnl is None
    assert event.pnl_basis is PnlBasis.UNKNOWN
