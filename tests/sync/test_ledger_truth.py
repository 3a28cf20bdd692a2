"""Issue 15's everyday situations, driven through the real ib_insync client into a real ledger.

The simulator (app.sim) plays TWS over loopback; the sync service books into a real ledger
(SQLite file and PostgreSQL, tests.engines); the ledger is read back with app.db.repository.
Expected figures are worked by hand in the comments (IB's average-cost method: a sale realizes
(price − average) × quantity − commission).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from app.domain.values import (
    CloseReason,
    EventKind,
    PnlBasis,
    PositionStatus,
    PriceSource,
)
from app.sim import contracts as c
from app.sim.model import Contract
from app.sim.state import SimState
from tests.sync.conftest import Stack, events, lifecycles, sync
from tests.sync.test_trading_day import connected

D = Decimal
ACCOUNT = "DU1500015"
AAPL = (ACCOUNT, c.AAPL.con_id)
MSFT = (ACCOUNT, c.MSFT.con_id)
# An option whose expiry (2024-01-19) is in the past: the simulator lets it expire.
EXPIRED_CALL = Contract(
    700001501, "AAPL", "OPT", local_symbol="AAPL  240119C00200000", trading_class="AAPL",
    expiry="20240119", strike=D(200), right="C", multiplier=D(100),
)  # fmt: skip
CALL = (ACCOUNT, EXPIRED_CALL.con_id)


def holding(*positions: tuple[Contract, int, str, str]) -> SimState:
    """A state with ACCOUNT holding (contract, quantity, avgCost, market price) each."""
    state = SimState()
    state.add_account(ACCOUNT, "USD")
    for contract, quantity, avg_cost, price in positions:
        state.set_position(ACCOUNT, contract, D(quantity), D(avg_cost), D(price))
    return state


def all_events(stack: Stack, key: tuple[str, int]) -> list[Any]:
    return [e for life in lifecycles(stack, key) for e in events(stack, life)]


# 1. First sync on a day with trades.


def test_first_sync_after_a_sale_books_the_held_position_then_the_sale(make, run):
    """Issue 15 item 1: AAPL 100 @ 150 was held before the app's first sync and 40 were sold
    @ 160 (fee 1.00) before it. The first sync saw 60 and a −40 fill: booking the fill against
    nothing opened a short of 40 (and a residual +100 after it). The held 100 comes first."""
    stack = make(holding((c.AAPL, 100, "150", "160")))

    async def scenario() -> None:
        await connected(stack)
        stack.sim.fill(ACCOUNT, c.AAPL, -40, "160", commission=D("1.00"))
        await sync(stack)

        (life,) = lifecycles(stack, AAPL)
        assert life.status is PositionStatus.OPEN and life.quantity == 60
        assert life.average_price == 150
        opened, reduced = events(stack, life)
        assert opened.kind is EventKind.OPENED
        assert (opened.quantity_before, opened.quantity_after) == (0, 100)  # never short
        assert reduced.kind is EventKind.REDUCED
        assert (reduced.quantity_before, reduced.quantity_after) == (100, 60)
        assert reduced.price == 160 and reduced.price_source is PriceSource.FILLS
        # (160 − 150) × 40 − 1.00 = 399.00, from the fill's price and commission: exact.
        assert reduced.realized_pnl == D("399.00") and reduced.pnl_basis is PnlBasis.EXACT
        assert life.realized_pnl == D("399.00") and life.pnl_basis is PnlBasis.EXACT
        assert life.realized_pnl_estimated == 0
        assert all(e.quantity_after >= 0 for e in events(stack, life))

    run(scenario(), timeout=30)


def test_first_sync_after_selling_out_closes_with_ibs_realized(make, run):
    """Issue 15 item 1: MSFT 50 @ 200 held before the first sync, all sold @ 210 (fee 1.00)
    before it; TWS reports the row with quantity 0 (avgCost 0) until the next day. That key
    ended OPEN short 50 or MISSING; it is CLOSED, realized IB's per-fill realizedPNL (exact)."""
    stack = make(holding((c.MSFT, 50, "200", "210")))

    async def scenario() -> None:
        await connected(stack)
        sale = stack.sim.fill(ACCOUNT, c.MSFT, -50, "210", commission=D("1.00"))
        # IB's realizedPNL for the fill: (210 − 200) × 50 − 1.00 = 499.00
        assert sale.realized_pnl == D("499.00")
        await sync(stack)

        lives = lifecycles(stack, MSFT)
        assert [(p.status, p.quantity) for p in lives] == [(PositionStatus.CLOSED, 0)]
        (life,) = lives
        assert life.close_reason is CloseReason.BROKER
        assert life.realized_pnl == D("499.00") and life.pnl_basis is PnlBasis.EXACT
        kinds = [e.kind for e in events(stack, life)]
        assert kinds[0] is EventKind.OPENED and kinds[-1] is EventKind.CLOSED
        assert EventKind.MISSING not in kinds
        assert all(e.quantity_after >= 0 for e in events(stack, life))

        # A second sync the same day (row still 0) changes nothing.
        await sync(stack)
        assert lifecycles(stack, MSFT) == lives

    run(scenario(), timeout=30)


# 2. An unseen small sale is not a split; a real split is.


def test_an_unseen_one_share_sale_is_reduced_at_market_not_a_split(make, run):
    """Issue 15 item 2: 100 → 99 with the average unchanged read as a 99:100 reverse split
    (no P&L, average rescaled). It is a sale the app did not see: REDUCED at market, estimated."""
    stack = make(holding((c.AAPL, 100, "150", "152")))

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        stack.sim.set_position(ACCOUNT, c.AAPL, D(99), D(150), D(152))
        await sync(stack)

        (life,) = lifecycles(stack, AAPL)
        assert life.status is PositionStatus.OPEN and life.quantity == 99
        assert life.average_price == 150  # not rescaled
        last = events(stack, life)[-1]
        assert last.kind is EventKind.REDUCED
        assert (last.quantity_before, last.quantity_after) == (100, 99)
        assert last.price == 152 and last.price_source is PriceSource.MARKET
        # (152 − 150) × 1 = 2.00 at the market price: an estimate.
        assert last.realized_pnl == 2 and last.pnl_basis is PnlBasis.ESTIMATED
        assert life.realized_pnl == 2 and life.realized_pnl_estimated == 2
        assert life.pnl_basis is PnlBasis.ESTIMATED
        assert EventKind.SPLIT not in [e.kind for e in events(stack, life)]

    run(scenario(), timeout=30)


def test_a_two_for_one_split_is_a_split_without_realized_pnl(make, run):
    """Issue 15 item 2, the other side: 100 @ 150 → 200 @ 75 is a 2:1 split, no P&L."""
    stack = make(holding((c.AAPL, 100, "150", "152")))

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        stack.sim.split(ACCOUNT, c.AAPL.con_id, 2)
        await sync(stack)

        (life,) = lifecycles(stack, AAPL)
        assert life.status is PositionStatus.OPEN
        assert (life.quantity, life.average_price) == (200, 75)  # 150 / 2
        last = events(stack, life)[-1]
        assert last.kind is EventKind.SPLIT
        assert (last.quantity_before, last.quantity_after) == (100, 200)
        assert not last.realized_pnl  # None or 0: a split realizes nothing
        assert life.realized_pnl == 0 and life.pnl_basis is None

    run(scenario(), timeout=30)


# 3. Late commission and corrections.


async def sell_with_late_commission(stack: Stack) -> Any:
    """AAPL 100 @ 150 synced; then −40 @ 160 (fee 1.00, its commissionReport withheld) synced."""
    await connected(stack)
    await sync(stack)
    sale = stack.sim.fill(
        ACCOUNT, c.AAPL, -40, "160", commission=D("1.00"), withhold_commission=True
    )
    await sync(stack)
    return sale


def test_late_commission_is_estimated_then_exact_and_a_correction_rederives(make, run):
    """Issue 15 item 3: a sale's commissionReport arrives after the sync that booked it. The
    REDUCED event was final with the commission taken as 0; it is estimated until the report
    comes, then exact and includes it. A correction of the price re-derives the realized P&L."""
    stack = make(holding((c.AAPL, 100, "150", "160")))

    async def scenario() -> None:
        sale = await sell_with_late_commission(stack)
        (life,) = lifecycles(stack, AAPL)
        pending = events(stack, life)[-1]
        assert pending.kind is EventKind.REDUCED and pending.pnl_basis is PnlBasis.ESTIMATED
        assert pending.exec_ids == (sale.exec_id,)
        assert pending.note == "commission not reported yet"
        # (160 − 150) × 40 with the unreported fee taken as 0 = 400, all of it an estimate.
        assert (life.realized_pnl, life.realized_pnl_estimated) == (400, 400)
        assert life.pnl_basis is PnlBasis.ESTIMATED

        stack.sim.release_commission(sale.exec_id)
        await sync(stack)
        (life,) = lifecycles(stack, AAPL)
        reported = events(stack, life)[-1]
        assert reported.kind is EventKind.REDUCED and reported.exec_ids == (sale.exec_id,)
        # (160 − 150) × 40 − 1.00 = 399.00
        assert reported.realized_pnl == D("399.00") and reported.pnl_basis is PnlBasis.EXACT
        assert (life.quantity, life.realized_pnl) == (60, D("399.00"))
        assert life.realized_pnl_estimated == 0 and life.pnl_basis is PnlBasis.EXACT

        # IB corrects the price to 161: (161 − 150) × 40 − 1.00 = 439.00
        corrected_fill = stack.sim.correct_fill(sale.exec_id, price="161")
        await sync(stack)
        (life,) = lifecycles(stack, AAPL)
        corrected = events(stack, life)[-1]
        assert corrected.kind is EventKind.REDUCED and corrected.price == 161
        assert corrected.exec_ids == (corrected_fill.exec_id,)
        assert corrected.realized_pnl == D("439.00") and corrected.pnl_basis is PnlBasis.EXACT
        assert (life.quantity, life.realized_pnl) == (60, D("439.00"))
        assert life.realized_pnl_estimated == 0 and life.pnl_basis is PnlBasis.EXACT

    run(scenario(), timeout=30)


def test_late_commission_leaves_one_event_for_the_sale(make, run):
    """Issue 15 item 3, the event list: the estimated REDUCED is replaced by the exact one, so
    the history shows the sale once (an export or chart summing events would count it twice)."""
    stack = make(holding((c.AAPL, 100, "150", "160")))

    async def scenario() -> None:
        sale = await sell_with_late_commission(stack)
        stack.sim.release_commission(sale.exec_id)
        await sync(stack)
        (life,) = lifecycles(stack, AAPL)
        shown = [(e.kind, e.realized_pnl, e.pnl_basis) for e in events(stack, life)]
        assert shown == [
            (EventKind.OPENED, None, None),
            (EventKind.REDUCED, D("399.00"), PnlBasis.EXACT),
        ]

    run(scenario(), timeout=30)


# 4. An option expires worthless.


def test_an_expired_option_closes_at_zero_exact(make, run):
    """Issue 15 item 4: a long call that expired worthless vanished with no execution and was
    marked MISSING (realized nothing). It is CLOSED as expired at 0, exact."""
    # 3 contracts, avgCost 120.65 per contract (multiplier 100) → average price 1.2065.
    stack = make(holding((EXPIRED_CALL, 3, "120.65", "0.01")))

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        (life,) = lifecycles(stack, CALL)
        assert life.status is PositionStatus.OPEN and life.average_price == D("1.2065")

        stack.sim.expire(ACCOUNT, EXPIRED_CALL.con_id)
        await sync(stack)
        (life,) = lifecycles(stack, CALL)
        assert life.status is PositionStatus.CLOSED and life.quantity == 0
        assert life.close_reason is CloseReason.EXPIRED
        last = events(stack, life)[-1]
        assert last.kind is EventKind.CLOSED and last.price == 0
        # (0 − 1.2065) × 3 × 100 = −361.95, priced at the known exit of 0: exact.
        assert last.realized_pnl == D("-361.95") and last.pnl_basis is PnlBasis.EXACT
        assert life.realized_pnl == D("-361.95") and life.pnl_basis is PnlBasis.EXACT
        assert EventKind.MISSING not in [e.kind for e in events(stack, life)]

    run(scenario(), timeout=30)


# 9. Position rows lag the executions.


def test_lagging_position_rows_never_book_the_fill_twice(make, run):
    """Issue 15 item 9: TWS answered the executions request with a sale whose position row
    still showed the holding from before it. The sync booked the fill, then a residual +40
    "at market" to match the stale row, then −40 again when the row caught up: realized twice.
    """
    lag = 1.5
    stack = make(holding((c.AAPL, 100, "150", "160")))

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        stack.sim.set_faults(position_lag=lag)
        stack.sim.fill(ACCOUNT, c.AAPL, -40, "160", commission=D("1.00"))
        await sync(stack)  # rows still say 100; executions have the sale
        during = [e.realized_pnl for e in all_events(stack, AAPL) if e.realized_pnl]
        assert sum(during, D(0)) in (0, D("399.00")), during  # held or booked, never twice

        await asyncio.sleep(lag + 0.5)  # the rows catch up (pushed at the lag's end)
        await sync(stack)
        await sync(stack)

        (life,) = lifecycles(stack, AAPL)
        assert life.status is PositionStatus.OPEN and life.quantity == 60
        # One sale, once: (160 − 150) × 40 − 1.00 = 399.00, exact.
        assert life.realized_pnl == D("399.00") and life.realized_pnl_estimated == 0
        assert life.pnl_basis is PnlBasis.EXACT
        realizing = [e for e in all_events(stack, AAPL) if e.realized_pnl]
        assert [(e.kind, e.realized_pnl) for e in realizing] == [(EventKind.REDUCED, D("399.00"))]
        assert realizing[0].pnl_basis is PnlBasis.EXACT

    run(scenario(), timeout=30)
