"""FIFO tax lots beside average cost (issue 17 item 4): worked figures, honest bases, and the
property that both methods account for the same cash flows."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.fold import KeyHistory, fold
from app.domain.lots import lifecycle_lots, with_fifo
from app.domain.values import Contract, EventKind, PnlBasis
from tests.domain.ledger_fixture import AAPL, ES, D, MemoryLedger, fill, pos, snapshot


def _fifo(*fills, contract=AAPL):
    history = KeyHistory("DU111", contract, tuple(fills))
    return with_fifo(fold(history), history), history


def test_buys_at_two_prices_a_partial_sale_a_flip_and_a_cover():
    """100 @ 10 and 100 @ 12 (1.00 commission each), sell 150 @ 15 (1.50), sell 80 @ 9 (1.00:
    closes the last 50, opens a short of 30), buy 30 @ 8 (1.00).

    FIFO: the 150 release lot 1 (1001) and half of lot 2 (600.50): 2248.50 − 1601.50 = 647.00;
    the flip's 50 release the rest of lot 2 (600.50) for 450 − 0.625 = 449.375 → −151.125; the
    short lot is −270 + 0.375 = −269.625, covered for −241 → 28.625.
    Average cost: 11.01 per share → 597.00, then −101.125; the short 8.9875 → 28.625.
    Both methods realize 495.875 over the first lifecycle (the same cash flows)."""
    folded, _ = _fifo(
        fill(AAPL, "BOT", "100", "10", commission="1", minutes=1),
        fill(AAPL, "BOT", "100", "12", commission="1", minutes=2),
        fill(AAPL, "SLD", "150", "15", commission="1.50", minutes=3),
        fill(AAPL, "SLD", "80", "9", commission="1", minutes=4),
        fill(AAPL, "BOT", "30", "8", commission="1", minutes=5),
    )
    long, short = folded.lifecycles
    kinds = [e.kind for e in long.events]
    assert kinds == [EventKind.OPENED, EventKind.INCREASED, EventKind.REDUCED, EventKind.CLOSED]
    fifo = [e.realized_pnl_fifo for e in long.events]
    average = [e.realized_pnl for e in long.events]
    assert fifo == [None, None, D("647.00"), D("-151.125")]
    assert average == [None, None, D("597.00"), D("-101.125")]
    assert sum(fifo[2:]) == sum(average[2:]) == D("495.875")
    assert all(e.pnl_basis_fifo is PnlBasis.EXACT for e in long.events[2:])
    assert [e.kind for e in short.events] == [EventKind.OPENED, EventKind.CLOSED]
    assert short.events[1].realized_pnl_fifo == short.events[1].realized_pnl == D("28.625")


def test_open_lots_keep_date_quantity_and_cost_with_commission():
    """After 100 @ 10, 100 @ 12 and a sale of 150, one lot is left: 50 acquired with the second
    buy, cost 600.50 (half of 1200 + 1.00), 12.01 a share; average cost shows 50 × 11.01."""
    buy1 = fill(AAPL, "BOT", "100", "10", commission="1", minutes=1)
    buy2 = fill(AAPL, "BOT", "100", "12", commission="1", minutes=2)
    sale = fill(AAPL, "SLD", "150", "15", commission="1.50", minutes=3)
    folded, history = _fifo(buy1, buy2, sale)
    # Net cash −1001 − 1201 + 2248.50 = 46.50 = realized − open cost under both methods.
    (life,) = folded.lifecycles
    view = lifecycle_lots(life.events, {f.exec_id: f for f in history.fills}, D(1))
    (lot,) = view.lots
    assert (lot.quantity, lot.cost, lot.acquired_at, lot.exec_id) == (
        D(50),
        D("600.50"),
        buy2.time,
        buy2.exec_id,
    )
    assert lot.unit_cost(D(1)) == D("12.01") and lot.basis is PnlBasis.EXACT
    assert life.lifecycle.average_price * life.lifecycle.quantity == D("550.50")
    assert view.amounts[2].realized == D("647.00")
    assert D("647.00") - lot.cost == D("597.00") - D("550.50") == D("46.50")


def test_futures_multiplier_and_partial_lot_of_a_short():
    """ES (× 50): short 2 @ 4000 (4.50), short 1 @ 4010 (2.25), cover 2 @ 3990 (4.50).
    FIFO releases lot 1: its proceeds less commission 399995.50, the cover costs 399004.50
    → 991.00. Average: (2 × 3999.955 + 4010 − 2.25/50) / 3 = 4003.28833… a contract →
    (4003.28833… − 3990) × 2 × 50 − 4.50 = 1324.33333333. Open: FIFO the 4010 lot
    (−200500 + 2.25); average 1 × 4003.28833… × 50. Realized − open cost is the net cash of
    the three fills (201488.75) either way."""
    folded, history = _fifo(
        fill(ES, "SLD", "2", "4000", commission="4.50", minutes=1),
        fill(ES, "SLD", "1", "4010", commission="2.25", minutes=2),
        fill(ES, "BOT", "2", "3990", commission="4.50", minutes=3),
        contract=ES,
    )
    (life,) = folded.lifecycles
    reduced = life.events[-1]
    assert reduced.realized_pnl_fifo == D("991.00") and reduced.realized_pnl == D("1324.33333333")
    view = lifecycle_lots(life.events, {f.exec_id: f for f in history.fills}, D(50))
    (lot,) = view.lots
    assert (lot.quantity, lot.cost) == (D(-1), D("-200497.75"))
    open_average = life.lifecycle.average_price * life.lifecycle.quantity * 50
    assert D("991.00") - lot.cost == D("201488.75")
    assert abs(D("1324.33333333") - open_average - D("201488.75")) < D("0.000001")


def test_commission_not_reported_yet_is_estimated_in_both():
    """A sale whose commission report has not arrived: the fold says estimated, so does FIFO."""
    folded, _ = _fifo(
        fill(AAPL, "BOT", "10", "100", commission="1", minutes=1),
        fill(AAPL, "SLD", "5", "110", commission=None, minutes=2),
    )
    reduced = folded.lifecycles[0].events[-1]
    assert reduced.pnl_basis is PnlBasis.ESTIMATED
    assert reduced.realized_pnl_fifo == D("49.50") and reduced.pnl_basis_fifo is PnlBasis.ESTIMATED


def test_lot_from_a_residual_is_estimated_even_where_average_cost_is_exact():
    """100 held before the first sync (IB's average 150: which prices made it is not known),
    then a buy of 100 @ 160 (1.00) and a sale of 150 @ 170 (1.00). Average cost is exact
    (IB's average is a fact): (170 − 155.005) × 150 − 1 = 2248.25. FIFO releases the residual
    lot (15000, estimated) and half the bought one (8000.50): 25499 − 23000.50 = 2498.50,
    estimated."""
    ledger = MemoryLedger()
    ledger.sync(snapshot(pos(AAPL, "100", "150"), minutes=0))
    buy = fill(AAPL, "BOT", "100", "160", commission="1", minutes=1)
    sale = fill(AAPL, "SLD", "150", "170", commission="1", minutes=2)
    plan = ledger.sync(snapshot(pos(AAPL, "50", "155.005"), fills=(buy, sale), minutes=5))
    (change,) = plan.changes
    reduced = change.events[-1]
    assert reduced.kind is EventKind.REDUCED
    assert (reduced.realized_pnl, reduced.pnl_basis) == (D("2248.25"), PnlBasis.EXACT)
    assert reduced.realized_pnl_fifo == D("2498.50")
    assert reduced.pnl_basis_fifo is PnlBasis.ESTIMATED


def test_a_forward_split_keeps_each_lots_cost():
    """Lots 10 @ 100 and 10 @ 120 split 2:1 → 20 and 20, costs unchanged; selling 30 releases
    the first lot and half the second."""
    buy1 = fill(AAPL, "BOT", "10", "100", minutes=1)
    buy2 = fill(AAPL, "BOT", "10", "120", minutes=2)
    from app.domain.plan import PlannedEvent

    events = [
        PlannedEvent(EventKind.OPENED, buy1.time, D(0), D(10), D(100), exec_ids=(buy1.exec_id,)),
        PlannedEvent(
            EventKind.INCREASED, buy2.time, D(10), D(20), D(120), exec_ids=(buy2.exec_id,)
        ),
        PlannedEvent(EventKind.SPLIT, buy2.time, D(20), D(40), D(55)),
    ]
    view = lifecycle_lots(events, {buy1.exec_id: buy1, buy2.exec_id: buy2}, D(1))
    assert [(lot.quantity, lot.cost) for lot in view.lots] == [(D(20), D(1000)), (D(20), D(1200))]


_fills = st.lists(
    st.tuples(
        st.sampled_from(["BOT", "SLD"]),
        st.integers(min_value=1, max_value=300),
        st.integers(min_value=100, max_value=50_000),  # cents
        st.integers(min_value=0, max_value=500),  # cents of commission
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(_fills, st.sampled_from([1, 100]))
def test_fifo_and_average_cost_account_for_the_same_cash_flows(rows, multiplier):
    """Over random fill sequences (flips included): FIFO realized − open lots' cost = average-
    cost realized − open quantity × average × multiplier = the net cash of the fills (proceeds
    less purchases less commissions), summed over the key's lifecycles; every amount the fold
    realizes has a FIFO amount of the same basis, and the open lots sum to the position."""
    contract = Contract(1, "X", sec_type="OPT" if multiplier == 100 else "STK",
                        multiplier=Decimal(multiplier))  # fmt: skip
    fills = [
        fill(contract, side, str(n), str(Decimal(p) / 100), commission=str(Decimal(c) / 100),
             minutes=i + 1)
        for i, (side, n, p, c) in enumerate(rows)
    ]  # fmt: skip
    folded, history = _fifo(*fills, contract=contract)
    by_id = {f.exec_id: f for f in history.fills}
    cash = -sum((f.signed_shares * f.price * multiplier + f.commission for f in fills), Decimal(0))
    fifo_total = average_total = Decimal(0)
    for life in folded.lifecycles:
        view = lifecycle_lots(life.events, by_id, Decimal(multiplier))
        lc = life.lifecycle
        assert view.open_cost is not None
        fifo_total += sum((e.realized_pnl_fifo or 0 for e in life.events), Decimal(0))
        fifo_total -= view.open_cost
        average_total += sum((e.realized_pnl or 0 for e in life.events), Decimal(0))
        average_total -= lc.average_price * lc.quantity * multiplier
        assert sum((lot.quantity for lot in view.lots), Decimal(0)) == lc.quantity
        for event in life.events:
            assert (event.realized_pnl is None) == (event.realized_pnl_fifo is None)
            assert event.pnl_basis_fifo is event.pnl_basis
    assert abs(fifo_total - cash) < Decimal("0.000001")
    assert abs(average_total - cash) < Decimal("0.0001")
