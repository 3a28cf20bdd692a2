"""A statement written from the simulator's own fills, imported into a ledger the real
ib_insync client filled from the same simulator (SQLite file and PostgreSQL).

The live buy and the statement's buy are one execution (one fill, merged by execId); the sale
made while the app was away — TWS no longer reports it the next day — was booked as an
estimate at the market, and the statement makes it exact at its real price and commission.
"""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from app.db import repository
from app.db.statements import import_statement
from app.domain.values import EventKind, PnlBasis, PriceSource
from app.flex.parse import parse_statement
from app.sim import contracts as c
from app.sim.state import SimState
from app.sync.service import SyncOptions
from tests.flex.builder import document
from tests.flex.sim_statement import statement_of
from tests.sync.conftest import Stack
from tests.sync.test_ledger_truth import lifecycles, sync
from tests.sync.test_trading_day import connected

D = Decimal
ACCOUNT = "DU1700017"
AAPL = (ACCOUNT, c.AAPL.con_id)


def test_a_statement_of_the_simulators_fills_merges_and_makes_the_missed_sale_exact(
    ledger_url, start_sim, loop, run
):
    state = SimState()
    state.add_account(ACCOUNT, "USD")
    stack = Stack(start_sim(None, state=state), ledger_url, SyncOptions(enabled=False))
    recorded = []

    async def scenario() -> None:
        await connected(stack)
        buy = stack.sim.fill(ACCOUNT, c.AAPL, 100, "150", commission=D("1"))
        await sync(stack)  # the live buy: stored with its execId
        recorded.append(buy)
        # The app is away: a sale, then the next day TWS reports only the position.
        stack.sim.set_price(c.AAPL.con_id, D("161"))
        recorded.append(stack.sim.fill(ACCOUNT, c.AAPL, -40, "160", commission=D("1.0035")))
        stack.sim.new_day()
        await sync(stack)
        (life,) = lifecycles(stack, AAPL)
        assert life.quantity == 60 and life.pnl_basis is PnlBasis.ESTIMATED

    try:
        run(scenario(), timeout=30)
        xml = document(statement_of(ACCOUNT, recorded)).encode()
        statement = parse_statement(xml, "sim.xml", ZoneInfo("America/New_York"))
        summary = stack.db.run_sync(import_statement, statement)
        assert (summary.new, summary.known) == (1, 1)  # the live buy merged by execId
        (life,) = lifecycles(stack, AAPL)
        assert life.quantity == 60 and life.average_price == D("150.01")
        # (160 − 150.01) × 40 − 1.0035 = 398.5965, from the statement's price and commission.
        assert life.realized_pnl == D("398.5965") and life.pnl_basis is PnlBasis.EXACT
        assert life.realized_pnl_estimated == 0
        events = stack.db.run_sync(repository.events, life.id)
        reduced = [e for e in events if e.kind is EventKind.REDUCED]
        assert [(e.price, e.price_source) for e in reduced] == [(D(160), PriceSource.FILLS)]
        fills = stack.db.run_sync(repository.all_fills)
        assert [f.exec_id for f in fills] == [e.exec_id for e in recorded]
        again = stack.db.run_sync(import_statement, statement)
        assert not again.changed
    finally:
        loop.run_until_complete(stack.service.stop())
        stack.db.close()
        stack.assert_no_order_messages()
