"""The price scenarios of issue 16 (items 3 and 6), as ib_insync itself receives them.

`cents-future`: reqContractDetails answers ZC with priceMagnifier 100; executions and the
portfolio's market price are in cents, avgCost and market value in dollars. `no-contract-details`:
the answer never ends. `no-market-data`: portfolio rows priced 0 and -1, with TWS's derived value
and unrealized P&L.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest
from ib_insync import Contract
from ib_insync.wrapper import RequestError

from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.sim.scenarios import CENTS_ACCOUNT, NO_DATA_ACCOUNT
from tests.sim.ibhelpers import connect, off_loop, until


def test_cents_future_contract_details_and_units(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    sim = start_sim("cents-future")

    async def scenario() -> None:
        ib = await connect(sim.port, 1)
        (zc,) = await ib.reqContractDetailsAsync(Contract(conId=c.ZC.con_id))
        assert zc.priceMagnifier == 100 and zc.contract.multiplier == "5000"
        assert zc.contract.localSymbol == "ZCZ7" and zc.contract.secType == "FUT"
        (es,) = await ib.reqContractDetailsAsync(Contract(conId=c.ES.con_id))
        assert es.priceMagnifier == 1
        ib.RaiseRequestErrors = True  # as the adapter sets it
        with pytest.raises(RequestError) as unknown:
            await ib.reqContractDetailsAsync(Contract(conId=999))
        assert unknown.value.code == 200  # "No security definition has been found"

        (item,) = [p for p in ib.portfolio() if p.contract.conId == c.ZC.con_id]
        assert item.marketPrice == 452.0  # cents
        assert item.marketValue == 45200.0 and item.averageCost == 22512.5  # dollars
        execution = await off_loop(
            lambda: sim.sim.fill(CENTS_ACCOUNT, c.ZC, -1, "455.75", commission=Decimal("2.25"))
        )
        await until(lambda: any(f.execution.execId == execution.exec_id for f in ib.fills()))
        (fill,) = [f for f in ib.fills() if f.execution.execId == execution.exec_id]
        assert fill.execution.price == 455.75  # cents, as IB reports executions
        await until(lambda: fill.commissionReport.realizedPNL != 0)
        assert fill.commissionReport.realizedPNL == 272.75  # dollars
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_contract_details_that_never_end(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    sim = start_sim("no-contract-details")

    async def scenario() -> None:
        ib = await connect(sim.port, 1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ib.reqContractDetailsAsync(Contract(conId=c.ZC.con_id)), 0.5)
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_no_market_data_rows_are_priced_zero_and_minus_one(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    sim = start_sim("no-market-data")

    async def scenario() -> None:
        ib = await connect(sim.port, 1, account=NO_DATA_ACCOUNT)
        prices = {p.contract.conId: p for p in ib.portfolio()}
        assert prices[c.AAPL.con_id].marketPrice == 0.0
        assert prices[c.AAPL.con_id].unrealizedPNL == -15025.0  # the whole cost, as if lost
        assert prices[c.MSFT.con_id].marketPrice == -1.0
        assert prices[c.ES.con_id].marketPrice == -1.0
        assert prices[c.NVDA.con_id].marketPrice == 125.5
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))
