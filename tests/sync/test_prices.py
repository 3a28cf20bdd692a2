"""Issue 16 items 3 and 6 — price units and price sanity — through the real ib_insync client.

The simulator (app.sim) plays TWS over loopback; the sync service books into a real ledger
(SQLite file and PostgreSQL, tests.engines). Figures are worked by hand in the docstrings.
"""

from __future__ import annotations

from decimal import Decimal

from app.db import repository
from app.domain.plan import ReconcileOptions
from app.domain.values import (
    CloseReason,
    EventKind,
    PnlBasis,
    PositionStatus,
    PriceSource,
)
from app.sim import contracts as c
from app.sim.model import Contract
from app.sim.requests import In
from app.sim.scenarios import (
    CENTS_ACCOUNT,
    NO_DATA_ACCOUNT,
    build_cents_future,
    build_no_market_data,
)
from app.sim.state import SimState
from tests.sync.conftest import Stack, events, lifecycles, sync
from tests.sync.test_trading_day import connected

D = Decimal
ZC = (CENTS_ACCOUNT, c.ZC.con_id)
ES = (CENTS_ACCOUNT, c.ES.con_id)
# A future whose expiry (2024-03-15) is in the past: it vanishes from the broker's rows.
EXPIRED_FUTURE = Contract(
    495500001, "ES", "FUT", primary_exchange="CME", local_symbol="ESH4", trading_class="ES",
    expiry="20240315", multiplier=D(50),
)  # fmt: skip


def contract_details_requests(stack: Stack) -> int:
    return stack.sim.received_ids().count(In.REQ_CONTRACT_DETAILS)


# ---------------------------------------------------------------------------- item 3


def test_cents_quoted_future_books_fills_in_dollars(make, run):
    """Issue 16 item 3 (nautilus_trader#2531): ZC corn is quoted in cents (priceMagnifier 100),
    IB's avgCost in dollars. Held 2 @ avgCost 22,512.50 → average 22,512.50 ÷ 5,000 = 4.5025 $/bu,
    marked 452 ¢ → 4.52. Sold 1 @ 455.75 ¢ (fee 2.25): (4.5575 − 4.5025) × 1 × 5,000 − 2.25 =
    272.75 (IB's realizedPNL says the same). Sold the last @ 449.50 ¢ (fee 2.25): (4.4950 −
    4.5025) × 5,000 − 2.25 = −39.75; the lifecycle realized 233.00. Read in cents against a
    dollar average the first sale would have realized (455.75 − 4.5025) × 5,000 ≈ 2.26 million."""
    stack = make(build_cents_future())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        (life,) = lifecycles(stack, ZC)
        assert (life.quantity, life.average_price, life.current_price) == (
            2,
            D("4.5025"),
            D("4.52"),
        )
        assert life.market_value == D(45200)
        (es,) = lifecycles(stack, ES)
        assert es.current_price == D("5050.25")  # a dollar-quoted future is left alone
        assert contract_details_requests(stack) == 1  # ZC only: ES's price agrees with its value
        (live,) = stack.broker.live_positions([ZC])  # the window's broker view: dollars too
        assert live.market_price == D("4.52")

        first = stack.sim.fill(CENTS_ACCOUNT, c.ZC, -1, "455.75", commission=D("2.25"))
        assert first.realized_pnl == D("272.75")  # the simulator's IB arithmetic agrees
        await sync(stack)
        (life,) = lifecycles(stack, ZC)
        *_, reduced = events(stack, life)
        assert reduced.kind is EventKind.REDUCED and reduced.price == D("4.5575")
        assert reduced.price_source is PriceSource.FILLS
        assert reduced.realized_pnl == D("272.75") and reduced.pnl_basis is PnlBasis.EXACT
        assert reduced.broker_realized_pnl == D("272.75")
        fills = stack.db.run_sync(repository.fills_for, ZC)
        (stored,) = fills
        assert stored.price == D("4.5575")  # stored in dollars, as documented …
        assert stored.price * stored.price_magnifier == D("455.75")  # … and IB's text recoverable

        stack.sim.fill(CENTS_ACCOUNT, c.ZC, -1, "449.50", commission=D("2.25"))
        await sync(stack)
        (life,) = lifecycles(stack, ZC)
        assert life.status is PositionStatus.CLOSED and life.close_reason is CloseReason.BROKER
        assert life.realized_pnl == D("233.00") and life.pnl_basis is PnlBasis.EXACT
        *_, closed = events(stack, life)
        assert closed.kind is EventKind.CLOSED and closed.realized_pnl == D("-39.75")
        assert contract_details_requests(stack) == 1  # asked once, remembered

    run(scenario())


def test_unknown_price_unit_waits_instead_of_guessing(make, run, caplog):
    """Issue 16 item 3: when TWS does not answer the contract details request, a ZC fill's unit
    is unknown: the fill is skipped and its key waits (no 2-million P&L, no residual at market),
    while the sync itself goes on. Once the details arrive, the fill is booked exactly."""
    stack = make(build_cents_future())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)  # ZC's market price disagrees with its value: details asked
        stack.sim.set_faults(withhold_end={"contract_details"})
        stack.broker.price_units._magnifiers.clear()  # forget it: as on a fresh start
        stack.sim.fill(CENTS_ACCOUNT, c.ZC, -1, "455.75", commission=D("2.25"))
        result = await sync(stack)
        assert result.skipped_rows == 1  # the fill: "price unit unknown (contract details: …)"
        assert "no contract details for ZCZ7" in caplog.text
        (life,) = lifecycles(stack, ZC)
        assert life.quantity == 2 and life.realized_pnl == 0  # waits: nothing booked
        assert life.current_price == D("4.52")  # the key waits: its last good price, never 452

        stack.sim.set_faults(withhold_end=set())
        await sync(stack)
        (life,) = lifecycles(stack, ZC)
        assert life.quantity == 1 and life.realized_pnl == D("272.75")
        assert life.pnl_basis is PnlBasis.EXACT and life.current_price == D("4.52")

    run(scenario())


# ---------------------------------------------------------------------------- item 6


def test_portfolio_rows_without_market_data_carry_no_price(make, run):
    """Issue 16 item 6: rows priced 0 and -1 (no market data) are "no price": no current price,
    no market value and no unrealized P&L (TWS derives both from the price: AAPL's would be an
    unrealized loss of the whole 15,025 cost). A priced row keeps its figures."""
    stack = make(build_no_market_data())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        for con_id in (c.AAPL.con_id, c.MSFT.con_id, c.ES.con_id):
            (life,) = lifecycles(stack, (NO_DATA_ACCOUNT, con_id))
            assert life.status is PositionStatus.OPEN
            assert (life.current_price, life.market_value, life.unrealized_pnl) == (None,) * 3
        (nvda,) = lifecycles(stack, (NO_DATA_ACCOUNT, c.NVDA.con_id))
        assert nvda.current_price == D("125.5") and nvda.unrealized_pnl == D("82.5")

    run(scenario())


def test_no_price_never_prices_an_exit(make, run):
    """Issue 16 item 6: with mark_missing_as_closed on, AAPL (marked 0) and MSFT (marked -1)
    vanish without fills, and ES is sold down by 1 with no fill while marked -1. Before, they
    would close "at market" 0 / -1 (AAPL: a loss of the whole 15,025). Now each close is booked
    without a price: realized amount unknown (NULL, basis unknown), never 0 or -1. NVDA, priced
    125.5, vanishes too and closes at that price as an estimate: (125.5 − 120) × 15 = 82.5."""
    state = build_no_market_data()
    stack = make(state, ReconcileOptions(mark_missing_as_closed=True))

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        for con_id in (c.AAPL.con_id, c.MSFT.con_id, c.NVDA.con_id):
            stack.sim.remove_position(NO_DATA_ACCOUNT, con_id)
        stack.sim.set_position(NO_DATA_ACCOUNT, c.ES, D(2), D("250012.5"), D(-1))
        await sync(stack)
        for con_id in (c.AAPL.con_id, c.MSFT.con_id):
            (life,) = lifecycles(stack, (NO_DATA_ACCOUNT, con_id))
            assert life.status is PositionStatus.CLOSED
            assert life.close_reason is CloseReason.MISSING
            *_, closed = events(stack, life)
            assert closed.price is None and closed.price_source is None
            assert closed.realized_pnl is None and closed.pnl_basis is PnlBasis.UNKNOWN
            assert life.realized_pnl == 0 and life.pnl_basis is PnlBasis.UNKNOWN
        (nvda,) = lifecycles(stack, (NO_DATA_ACCOUNT, c.NVDA.con_id))
        *_, closed = events(stack, nvda)
        assert closed.price == D("125.5") and closed.price_source is PriceSource.LAST_KNOWN
        assert closed.realized_pnl == D("82.5") and closed.pnl_basis is PnlBasis.ESTIMATED
        (es,) = lifecycles(stack, (NO_DATA_ACCOUNT, c.ES.con_id))
        assert es.status is PositionStatus.OPEN and es.quantity == 2
        *_, added = events(stack, es)
        assert added.kind is EventKind.INCREASED  # an add is priced from IB's average

    run(scenario())


def test_no_price_sale_without_fills_is_unknown_not_zero(make, run):
    """Issue 16 item 6: AAPL 100 (marked 0) drops to 60 with no fill: the 40 sold are booked
    REDUCED without a price (unknown), not at 0 (a loss of 6,010); nothing is closed."""
    stack = make(build_no_market_data())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        stack.sim.set_position(NO_DATA_ACCOUNT, c.AAPL, D(60), D("150.25"), D(0))
        await sync(stack)
        (life,) = lifecycles(stack, (NO_DATA_ACCOUNT, c.AAPL.con_id))
        assert life.status is PositionStatus.OPEN and life.quantity == 60
        *_, reduced = events(stack, life)
        assert reduced.kind is EventKind.REDUCED and reduced.price is None
        assert reduced.realized_pnl is None and reduced.pnl_basis is PnlBasis.UNKNOWN

    run(scenario())


def test_expired_future_without_price_is_not_settled_at_minus_one(make, run):
    """Issue 16 item 6: a future past expiry, marked -1 (no market data), vanishes without
    fills: it closes as expired with its settlement unknown — not at -1 (which would book
    (−1 − 5,000) × 50 = −250,050)."""
    state = SimState()
    state.add_account(NO_DATA_ACCOUNT, "USD")
    state.set_position(NO_DATA_ACCOUNT, EXPIRED_FUTURE, D(1), D(250000), D(-1))
    stack = make(state)
    key = (NO_DATA_ACCOUNT, EXPIRED_FUTURE.con_id)

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        stack.sim.remove_position(NO_DATA_ACCOUNT, EXPIRED_FUTURE.con_id)
        await sync(stack)
        (life,) = lifecycles(stack, key)
        assert life.status is PositionStatus.CLOSED and life.close_reason is CloseReason.EXPIRED
        *_, closed = events(stack, life)
        assert closed.price is None and closed.realized_pnl is None
        assert closed.pnl_basis is PnlBasis.UNKNOWN

    run(scenario())
