"""Worked examples for every sync rule of DESIGN.md, each checkable by hand."""

from __future__ import annotations

from decimal import Decimal

from app.domain.plan import ReconcileOptions
from app.domain.reconcile import reconcile
from app.domain.values import (
    BrokerPosition,
    CloseReason,
    EventKind,
    PositionStatus,
    PriceSource,
    SkippedRow,
)
from tests.domain.ledger_fixture import (
    AAPL,
    ES,
    MSFT,
    SPY_C,
    D,
    MemoryLedger,
    fill,
    pos,
    snapshot,
)


def sync(ledger: MemoryLedger, snap, options: ReconcileOptions | None = None):
    return ledger.sync(snap, options)


def kinds(plan) -> list[EventKind]:
    return [e.kind for c in plan.changes for e in c.events]


def test_open_from_first_snapshot():
    ledger = MemoryLedger()
    plan = sync(ledger, snapshot(pos(AAPL, "100", "150", market="151")))
    assert kinds(plan) == [EventKind.OPENED]
    row = ledger.only_open()
    assert (row.quantity, row.average_price, row.current_price) == (100, 150, 151)
    assert row.unrealized_pnl == D("100")
    # 100 / 15,000 × 100 = 0.666…: derived, so at 10 places, not the division's 28 digits.
    assert str(row.unrealized_pnl_pct) == "0.6666666667"
    assert plan.opened == 1 and plan.closed == 0


def test_increase_takes_average_from_ib():
    """long 100 @ 150 + buy 50 @ 156 → 150 @ 152 (IB's average, equal to ours)."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), minutes=0))
    f = fill(AAPL, "BOT", "50", "156", minutes=10)
    plan = sync(ledger, snapshot(pos(AAPL, "150", "152"), fills=(f,), minutes=11))
    assert kinds(plan) == [EventKind.INCREASED]
    event = plan.changes[0].events[0]
    assert (event.quantity_before, event.quantity_after) == (100, 150)
    assert event.price_source is PriceSource.FILLS and event.exec_ids == (f.exec_id,)
    row = ledger.only_open()
    assert row.quantity == 150 and row.average_price == 152 and row.realized_pnl == 0


def test_partial_close_with_commission():
    """long 100 @ 150, sell 40 @ 160 with 1.00 commission → REDUCED, realized 399.00, 60 @ 150."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), minutes=0))
    f = fill(AAPL, "SLD", "40", "160", commission="1.00", minutes=10)
    plan = sync(ledger, snapshot(pos(AAPL, "60", "150"), fills=(f,), minutes=11))
    assert kinds(plan) == [EventKind.REDUCED]
    assert plan.changes[0].events[0].realized_pnl == D("399.00")
    row = ledger.only_open()
    assert (row.quantity, row.average_price, row.realized_pnl) == (60, 150, D("399.00"))
    assert plan.updated == 1


def test_short_bought_back_closes():
    """short 30 @ 200 bought back @ 190 with 1.00 → CLOSED, realized 299.00."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(MSFT, "-30", "200")))
    f = fill(MSFT, "BOT", "30", "190", commission="1.00", minutes=10)
    plan = sync(ledger, snapshot(fills=(f,), minutes=11))
    assert kinds(plan) == [EventKind.CLOSED]
    (row,) = ledger.rows.values()
    assert row.status is PositionStatus.CLOSED and row.close_reason is CloseReason.BROKER
    assert row.realized_pnl == D("299.00") and row.exit_trade_id == f.exec_id
    assert row.closed_at == f.time and row.quantity == 0
    assert plan.closed == 1


def test_future_multiplier():
    """ES 2 contracts (multiplier 50) bought at 4500.00, sold at 4510.25 → 1025.00."""
    ledger = MemoryLedger()
    buy = fill(ES, "BOT", "2", "4500.00", minutes=1)
    sync(ledger, snapshot(pos(ES, "2", "4500.00"), fills=(buy,), minutes=2))
    row = ledger.only_open()
    assert row.average_cost == D("225000.00") and row.entry_trade_id == buy.exec_id
    sell = fill(ES, "SLD", "2", "4510.25", minutes=3)
    sync(ledger, snapshot(fills=(sell,), minutes=4))
    (row,) = ledger.rows.values()
    assert row.status is PositionStatus.CLOSED and row.realized_pnl == D("1025.00")


def test_option_multiplier_and_short():
    """short 3 SPY calls @ 5.20 (×100), bought back 1 @ 4.70 → +50.00, 2 left short."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(SPY_C, "-3", "5.20"), minutes=0))
    f = fill(SPY_C, "BOT", "1", "4.70", minutes=2)
    plan = sync(ledger, snapshot(pos(SPY_C, "-2", "5.20"), fills=(f,), minutes=3))
    assert plan.changes[0].events[0].realized_pnl == D("50.00")
    assert ledger.only_open().quantity == -2


def test_fractional_quantities_are_exact():
    """Buying 0.1 then 0.2 shares leaves exactly 0.3."""
    ledger = MemoryLedger()
    a = fill(AAPL, "BOT", "0.1", "150", minutes=1)
    sync(ledger, snapshot(pos(AAPL, "0.1", "150"), fills=(a,), minutes=2))
    b = fill(AAPL, "BOT", "0.2", "150", minutes=3)
    sync(ledger, snapshot(pos(AAPL, "0.3", "150"), fills=(b,), minutes=4))
    assert ledger.only_open().quantity == D("0.3")
    assert str(ledger.only_open().quantity) == "0.3"


def test_explicit_zero_closes_at_market():
    """Rule 3: IB reports 0 for a known position → CLOSED (broker), exit at the market price."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "10", "100", market="104")))
    plan = sync(ledger, snapshot(pos(AAPL, "0", "0", market="105"), minutes=10))
    assert kinds(plan) == [EventKind.CLOSED]
    event = plan.changes[0].events[0]
    assert event.price == 105 and event.price_source is PriceSource.MARKET
    (row,) = ledger.rows.values()
    assert row.close_reason is CloseReason.BROKER and row.realized_pnl == D("50")


def test_flip_long_to_short():
    """long 100 @ 150, sell 150 @ 160 (commission 1.50) → close long (+999.00), open short 50."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), minutes=0))
    f = fill(AAPL, "SLD", "150", "160", commission="1.50", minutes=5)
    # IB's average for the new short includes its share of the commission: 160 - 0.50/50.
    plan = sync(ledger, snapshot(pos(AAPL, "-50", "159.99"), fills=(f,), minutes=6))
    assert kinds(plan) == [EventKind.CLOSED, EventKind.OPENED]
    closed, opened = plan.changes
    assert closed.after.close_reason is CloseReason.FLIP
    assert closed.after.realized_pnl == D("999.00")  # 10 × 100 − 1.00 (100/150 of 1.50)
    assert opened.after.quantity == -50 and opened.after.average_price == D("159.99")
    assert opened.after.entry_trade_id == f.exec_id
    assert plan.opened == 1 and plan.closed == 1
    assert len(ledger.open_rows()) == 1


def test_flip_without_fills_uses_market_price():
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150", market="150")))
    plan = sync(ledger, snapshot(pos(AAPL, "-50", "161", market="161"), minutes=9))
    closed, opened = plan.changes
    assert closed.after.close_reason is CloseReason.FLIP
    assert closed.after.realized_pnl == D("1100")
    assert closed.events[-1].price_source is PriceSource.MARKET
    assert opened.after.quantity == -50 and opened.after.average_price == 161


def test_reduction_without_fills_uses_market_then_last_known():
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150", market="155")))
    row = pos(AAPL, "60", "150")  # no market price in this snapshot
    plan = sync(ledger, snapshot(row, minutes=9))
    event = plan.changes[0].events[0]
    assert event.kind is EventKind.REDUCED
    assert event.price == 155 and event.price_source is PriceSource.LAST_KNOWN
    assert event.realized_pnl == D("200")


def test_missing_warns_once_and_reappears():
    """Rule 2: absence is not a close — one MISSING event however many syncs follow."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), pos(MSFT, "5", "400")))
    plan = sync(ledger, snapshot(pos(MSFT, "5", "400"), minutes=10))
    assert kinds(plan) == [EventKind.MISSING] and plan.missing == 1
    aapl = next(r for r in ledger.rows.values() if r.contract == AAPL)
    assert (
        aapl.status is PositionStatus.OPEN and aapl.missing_since == snapshot(minutes=10).taken_at
    )
    for minutes in (20, 30, 40):
        again = sync(ledger, snapshot(pos(MSFT, "5", "400"), minutes=minutes))
        assert again.changes == () and again.missing == 0
    back = sync(ledger, snapshot(pos(AAPL, "100", "150"), pos(MSFT, "5", "400"), minutes=50))
    assert kinds(back) == [EventKind.REAPPEARED]
    aapl = next(r for r in ledger.rows.values() if r.contract == AAPL)
    assert aapl.missing_since is None and aapl.quantity == 100


def test_missing_closed_when_fills_explain_it():
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), minutes=0))
    f1 = fill(AAPL, "SLD", "60", "151", minutes=2)
    f2 = fill(AAPL, "SLD", "40", "152", minutes=3)
    plan = sync(ledger, snapshot(fills=(f1, f2), minutes=4))
    assert kinds(plan) == [EventKind.REDUCED, EventKind.CLOSED]
    (row,) = ledger.rows.values()
    assert row.realized_pnl == D("140") and row.close_reason is CloseReason.BROKER


def test_missing_closed_when_option_on():
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150", market="149")))
    plan = sync(ledger, snapshot(minutes=9), ReconcileOptions(mark_missing_as_closed=True))
    assert kinds(plan) == [EventKind.CLOSED]
    (row,) = ledger.rows.values()
    assert row.close_reason is CloseReason.MISSING and row.realized_pnl == D("-100")
    assert plan.changes[0].events[0].price_source is PriceSource.LAST_KNOWN


def test_split_two_for_one():
    """100 @ 150 becomes 200 @ 75 with no fills → SPLIT, no P&L."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), minutes=0))
    plan = sync(ledger, snapshot(pos(AAPL, "200", "75"), minutes=9))
    assert kinds(plan) == [EventKind.SPLIT]
    row = ledger.only_open()
    assert (row.quantity, row.average_price, row.realized_pnl) == (200, 75, 0)


def test_same_symbol_two_accounts_never_mix():
    """Rule 4: keyed by (account, conId)."""
    ledger = MemoryLedger()
    accounts = ("DU111", "DU222")
    sync(
        ledger,
        snapshot(
            pos(AAPL, "100", "150"),
            pos(AAPL, "7", "120", account="DU222"),
            accounts=accounts,
            minutes=0,
        ),
    )
    f = fill(AAPL, "SLD", "7", "130", account="DU222", minutes=3)
    plan = sync(
        ledger,
        snapshot(pos(AAPL, "100", "150"), fills=(f,), accounts=accounts, minutes=4),
    )
    assert kinds(plan) == [EventKind.CLOSED]
    du1 = next(r for r in ledger.rows.values() if r.account == "DU111")
    du2 = next(r for r in ledger.rows.values() if r.account == "DU222")
    assert du1.status is PositionStatus.OPEN and du1.quantity == 100
    assert du2.status is PositionStatus.CLOSED and du2.realized_pnl == D("70")


def test_idempotent_same_snapshot_twice():
    """Rule 6: the same snapshot again writes no event and changes nothing."""
    ledger = MemoryLedger()
    f = fill(AAPL, "BOT", "10", "150", minutes=1)
    snap = snapshot(pos(AAPL, "10", "150", market="151"), pos(ES, "-1", "4500"), fills=(f,))
    sync(ledger, snap)
    before = dict(ledger.rows)
    again = sync(ledger, snap)
    assert again.changes == () and again.new_fills == () and again.market_updates == ()
    assert {k: (r.quantity, r.status, r.realized_pnl) for k, r in ledger.rows.items()} == {
        k: (r.quantity, r.status, r.realized_pnl) for k, r in before.items()
    }
    assert len(again.seen_position_ids) == 2


def test_incomplete_snapshot_changes_nothing():
    """Rule 1: positionEnd missing (or any other gap) → an empty plan with the reason."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), minutes=0))
    f = fill(AAPL, "SLD", "100", "160", minutes=2)
    plan = reconcile(ledger.state(), snapshot(fills=(f,), minutes=3, incomplete="positionEnd"))
    assert plan.is_empty and plan.incomplete_reason == "positionEnd"
    assert plan.market_updates == () and plan.seen_position_ids == ()


def test_duplicate_exec_ids_and_corrections():
    """Rule 9: unique by execId; a correction replaces the original and books nothing twice."""
    ledger = MemoryLedger()
    f = fill(AAPL, "BOT", "10", "150", exec_id="0000e0d5.aa.01.01", minutes=1)
    sync(ledger, snapshot(pos(AAPL, "10", "150"), fills=(f, f), minutes=2))
    assert list(ledger.fills) == ["0000e0d5.aa.01.01"]
    corrected = fill(AAPL, "BOT", "10", "150.50", exec_id="0000e0d5.aa.01.02", minutes=1)
    plan = sync(ledger, snapshot(pos(AAPL, "10", "150.50"), fills=(f, corrected), minutes=3))
    assert plan.new_fills == ()
    # The correction re-derives the lifecycle from the corrected fill (issue 15, item 3).
    (change,) = plan.changes
    assert change.replaces_events and change.after.average_price == D("150.50")
    assert change.events[0].price == D("150.50") and change.events[0].exec_ids == (
        "0000e0d5.aa.01.02",
    )
    assert [c.replaced_exec_id for c in plan.corrections] == ["0000e0d5.aa.01.01"]
    assert list(ledger.fills) == ["0000e0d5.aa.01.02"]
    # The original replayed after its correction is ignored.
    replay = sync(ledger, snapshot(pos(AAPL, "10", "150.50"), fills=(f,), minutes=4))
    assert replay.corrections == () and replay.new_fills == ()


def test_bad_row_is_skipped_and_not_absent():
    """Rule 10: a NaN quantity skips that row; its cached position is not marked missing."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), pos(MSFT, "5", "400")))
    bad = BrokerPosition("DU111", AAPL, D("NaN"), D("150"))
    plan = sync(ledger, snapshot(bad, pos(MSFT, "6", "400"), minutes=9))
    assert [s.key for s in plan.skipped] == [("DU111", AAPL.con_id)]
    assert kinds(plan) == [EventKind.INCREASED]
    assert next(r for r in ledger.rows.values() if r.contract == AAPL).missing_since is None


def test_row_for_unknown_account_is_skipped():
    ledger = MemoryLedger()
    plan = sync(ledger, snapshot(pos(AAPL, "1", "1", account="DU999")))
    assert plan.changes == ()
    assert plan.skipped == (
        SkippedRow(("DU999", AAPL.con_id), "account is not one of the managed accounts"),
    )


def test_account_not_in_snapshot_is_left_alone():
    """A cached position of an account the broker did not cover is not missing."""
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150", account="DU222"), accounts=("DU222",)))
    plan = sync(ledger, snapshot(pos(MSFT, "1", "1"), minutes=9))
    assert kinds(plan) == [EventKind.OPENED]


def test_round_trip_between_syncs_is_recorded():
    """Bought and sold between two syncs: a lifecycle opened and closed, P&L kept."""
    ledger = MemoryLedger()
    b = fill(AAPL, "BOT", "10", "100", commission="1", minutes=1)
    s = fill(AAPL, "SLD", "10", "103", commission="1", minutes=2)
    plan = sync(ledger, snapshot(fills=(b, s), minutes=3))
    assert kinds(plan) == [EventKind.OPENED, EventKind.CLOSED]
    (row,) = ledger.rows.values()
    assert row.realized_pnl == D("28")  # 30 gross − 1 opening − 1 closing commission


def test_ib_realized_difference_is_flagged():
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), minutes=0))
    ok = fill(AAPL, "SLD", "10", "160", minutes=2, broker_pnl="100.00")
    plan = sync(ledger, snapshot(pos(AAPL, "90", "150"), fills=(ok,), minutes=3))
    assert plan.pnl_mismatches == ()
    off = fill(AAPL, "SLD", "10", "160", minutes=4, broker_pnl="95.00")
    plan = sync(ledger, snapshot(pos(AAPL, "80", "150"), fills=(off,), minutes=5))
    (mismatch,) = plan.pnl_mismatches
    assert (mismatch.ours, mismatch.broker) == (D("100"), D("95.00"))
    assert "IB reports realized P&L 95.00" in plan.changes[0].events[-1].note


def test_selective_scope_ignores_other_keys():
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), pos(MSFT, "5", "400")))
    snap = snapshot(pos(AAPL, "120", "150"), minutes=9)
    scoped = type(snap)(
        taken_at=snap.taken_at,
        accounts=snap.accounts,
        positions=snap.positions,
        scope=frozenset({("DU111", AAPL.con_id)}),
    )
    plan = sync(ledger, scoped)
    assert kinds(plan) == [EventKind.INCREASED]  # MSFT is out of scope, not missing


def test_realized_pnl_off():
    ledger = MemoryLedger()
    sync(ledger, snapshot(pos(AAPL, "100", "150"), minutes=0))
    f = fill(AAPL, "SLD", "40", "160", minutes=2)
    options = ReconcileOptions(calculate_realized_pnl=False)
    sync(ledger, snapshot(pos(AAPL, "60", "150"), fills=(f,), minutes=3), options)
    assert ledger.only_open().realized_pnl == Decimal(0)


def test_stale_account_keeps_its_last_price_a_served_one_does_not():
    """Issue 16: a row without market data because TWS did not serve its account's (2101, no
    download end) keeps the last price — unchanged quantity and a sale alike; in a served
    account a row without a price means no price (NaN, unset), as before."""
    from dataclasses import replace

    ledger = MemoryLedger()
    sync(
        ledger,
        snapshot(pos(AAPL, "100", "150", market="151"), pos(MSFT, "10", "300", market="310")),
    )
    stale = (("DU111", "error 2101"),)
    plan = sync(
        ledger,
        replace(
            snapshot(pos(AAPL, "100", "150"), pos(MSFT, "8", "300"), minutes=10),
            stale_prices=stale,
        ),
    )
    rows = {r.contract.symbol: r for r in ledger.rows.values() if r.status is PositionStatus.OPEN}
    assert rows["AAPL"].current_price == 151 and rows["AAPL"].market_value is not None
    assert rows["MSFT"].quantity == 8 and rows["MSFT"].current_price == 310
    assert rows["MSFT"].market_value is None  # it was for 10 shares: not carried to 8
    assert kinds(plan) == [EventKind.REDUCED]
    sync(ledger, snapshot(pos(AAPL, "100", "150"), pos(MSFT, "8", "300"), minutes=20))
    rows = {r.contract.symbol: r for r in ledger.rows.values() if r.status is PositionStatus.OPEN}
    assert rows["AAPL"].current_price is None and rows["MSFT"].current_price is None
