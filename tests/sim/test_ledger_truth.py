"""The real-IB behaviours issue 15 needs, driven through ib_insync over loopback.

Each test scripts the simulator through its control API and asserts what the real client
receives: withheld then released commission reports, corrections that re-book the position,
quantity-0 rows for positions closed today until new_day(), expiries and exercises without
executions, ExchangeRate account values, TWS's execution visibility, and lagging position rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from ib_insync import IB, ExecutionFilter, Position

from app.sim import contracts as c
from app.sim.model import Contract
from app.sim.runner import SimulatorThread
from app.sim.state import SimState
from tests.sim.ibhelpers import connect, off_loop, until

D = Decimal
ACCOUNT = "DU3330001"
EXPIRED_CALL = Contract(
    700000901, "AAPL", "OPT", local_symbol="AAPL  240119C00200000", trading_class="AAPL",
    expiry="20240119", strike=D(200), right="C", multiplier=D(100),
)  # fmt: skip
EXPIRED_PUT = Contract(
    700000902, "AAPL", "OPT", local_symbol="AAPL  240119P00180000", trading_class="AAPL",
    expiry="20240119", strike=D(180), right="P", multiplier=D(100),
)  # fmt: skip


def one_account() -> SimState:
    state = SimState()
    state.add_account(ACCOUNT, "USD", {"USD": D(100_000)})
    state.set_position(ACCOUNT, c.AAPL, D(100), D("150.25"), D("190.5"))
    return state


@pytest.fixture
def sim(start_sim: Callable[..., SimulatorThread]) -> SimulatorThread:
    return start_sim(None, state=one_account())


def run(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return loop.run_until_complete(asyncio.wait_for(coro, 20))


async def executions(ib: IB) -> dict[str, Any]:
    """execId → Fill of a fresh reqExecutions answer.

    The client's own Fill is used: ib_insync attaches a commissionReport to the first Fill it
    made for an execId, not to the copies a later reqExecutions answer returns.
    """
    answer = await ib.reqExecutionsAsync(ExecutionFilter())
    known = {f.execution.execId: f for f in ib.fills()}
    return {f.execution.execId: known.get(f.execution.execId, f) for f in answer}


def test_withheld_commission_report_is_sent_when_released(
    sim: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    async def scenario() -> None:
        ib = await connect(sim.port, 1)
        reports: list[Any] = []
        ib.commissionReportEvent += lambda trade, fill, report: reports.append(report)
        seen: list[str] = []
        ib.execDetailsEvent += lambda trade, fill: seen.append(fill.execution.execId)

        execution = await off_loop(
            lambda: sim.sim.fill(ACCOUNT, c.AAPL.con_id, -40, "191", withhold_commission=True)
        )
        await until(lambda: execution.exec_id in seen)
        await asyncio.sleep(0.2)
        assert reports == []  # the execDetails came, its commission did not
        early = await connect(sim.port, 3)  # its connect asks reqExecutions
        answer = await executions(early)
        # The answer has the execution, but no commissionReport for it.
        assert answer[execution.exec_id].commissionReport.execId == ""
        early.disconnect()

        await off_loop(lambda: sim.sim.release_commission(execution.exec_id))
        await until(lambda: bool(reports))
        assert reports[0].execId == execution.exec_id
        assert reports[0].commission == float(execution.commission)
        assert reports[0].realizedPNL == float(execution.realized_pnl or 0)
        ib.disconnect()

        late = await connect(sim.port, 2)  # a client that connects afterwards gets it too
        answer = await executions(late)
        assert answer[execution.exec_id].commissionReport.commission == float(execution.commission)
        late.disconnect()

    run(loop, scenario())
    with pytest.raises(ValueError, match="already reported"):
        sim.sim.release_commission(sim.sim.executions()[-1].exec_id)


def test_correction_replaces_the_fill_and_rebooks_the_position(
    sim: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    """Guards against a correction that renames the fill but leaves the position as booked."""

    async def scenario() -> None:
        ib = await connect(sim.port, 1)
        positions: list[Any] = []
        ib.positionEvent += positions.append
        bought = await off_loop(
            lambda: sim.sim.fill(ACCOUNT, c.AAPL.con_id, 20, "190", commission=D(1))
        )
        await until(lambda: any(p.position == 120 for p in positions))
        before = positions[-1].avgCost

        corrected = await off_loop(
            lambda: sim.sim.correct_fill(bought.exec_id, price="189", shares=30)
        )
        assert corrected.exec_id == bought.exec_id[:-2] + "02"
        await until(lambda: positions[-1].position == 130)
        # IB's avgCost: (100 × 150.25 + 30 × 189 + 1 commission) / 130
        expected = (D(100) * D("150.25") + D(30) * D(189) + D(1)) / D(130)
        assert positions[-1].avgCost == pytest.approx(float(expected))
        assert positions[-1].avgCost != before

        answer = await executions(ib)
        assert bought.exec_id not in answer
        assert answer[corrected.exec_id].execution.shares == 30
        assert answer[corrected.exec_id].execution.price == 189
        ib.disconnect()

    run(loop, scenario())
    holding = sim.sim.call(lambda s: s.holding(ACCOUNT, c.AAPL.con_id))
    assert holding.quantity == 130


def test_correction_of_an_earlier_fill_replays_the_later_ones(
    sim: SimulatorThread,
) -> None:
    """A later sale's realized P&L follows a corrected buy price (same key, re-booked in order)."""
    buy = sim.sim.fill(ACCOUNT, c.AAPL.con_id, 100, "200", commission=D(0))
    sale = sim.sim.fill(ACCOUNT, c.AAPL.con_id, -200, "210", commission=D(0))
    assert sale.realized_pnl is not None
    sim.sim.correct_fill(buy.exec_id, price="190")
    later = next(e for e in sim.sim.executions() if e.exec_id == sale.exec_id)
    # average (100 × 150.25 + 100 × 190) / 200 = 170.125; (210 − 170.125) × 200
    assert later.realized_pnl == D("7975.000")
    cash = sim.sim.call(lambda s: s.accounts[ACCOUNT].cash["USD"])
    assert cash == D(100_000) - 100 * D(190) + 200 * D(210)


def test_position_closed_today_reports_zero_until_new_day(
    sim: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    async def zero_rows(client_id: int) -> tuple[list[Any], list[Any]]:
        ib = await connect(sim.port, client_id, account=ACCOUNT)
        rows: list[Any] = []
        ib.positionEvent += rows.append
        await ib.reqPositionsAsync()
        portfolio: list[Any] = []
        ib.updatePortfolioEvent += portfolio.append
        await ib.reqAccountUpdatesAsync(ACCOUNT)
        fills = await ib.reqExecutionsAsync()
        ib.disconnect()
        aapl = [p for p in rows if p.contract.conId == c.AAPL.con_id]
        mine = [p for p in portfolio if p.contract.conId == c.AAPL.con_id]
        return aapl + mine, fills

    sale = sim.sim.fill(ACCOUNT, c.AAPL.con_id, -100, "191")
    rows, fills = run(loop, zero_rows(1))
    assert rows and all(r.position == 0 for r in rows)
    assert all((r.avgCost if isinstance(r, Position) else r.averageCost) == 0 for r in rows)
    assert {"Position", "PortfolioItem"} == {type(r).__name__ for r in rows}
    assert [f.execution.execId for f in fills] == [sale.exec_id]

    assert sim.sim.new_day() == [(ACCOUNT, c.AAPL.con_id)]
    rows, fills = run(loop, zero_rows(2))
    assert rows == []  # the next day the closed position is gone
    assert fills == []  # and so are yesterday's executions


def test_execution_days_keep_earlier_days(sim: SimulatorThread) -> None:
    sim.sim.set_execution_days(2)
    first = sim.sim.fill(ACCOUNT, c.AAPL.con_id, 1, "190")
    sim.sim.new_day()
    second = sim.sim.fill(ACCOUNT, c.AAPL.con_id, 1, "191")
    assert [e.exec_id for e in sim.sim.executions()] == [first.exec_id, second.exec_id]
    sim.sim.new_day()
    assert [e.exec_id for e in sim.sim.executions()] == [second.exec_id]
    with pytest.raises(ValueError):
        sim.sim.set_execution_days(8)


def test_expired_option_vanishes_without_an_execution(
    sim: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    sim.sim.set_position(ACCOUNT, EXPIRED_CALL, D(3), D("120.65"), D("0.01"))
    sim.sim.set_position(ACCOUNT, c.AAPL_C200, D(1), D("350.65"), D("4.1"))  # 2027: live
    with pytest.raises(ValueError, match="not in the past"):
        sim.sim.expire(ACCOUNT, c.AAPL_C200.con_id)
    cash_before = sim.sim.call(lambda s: dict(s.accounts[ACCOUNT].cash))
    sim.sim.expire(ACCOUNT, EXPIRED_CALL.con_id)

    async def scenario() -> None:
        ib = await connect(sim.port, 1, account=ACCOUNT)
        await ib.reqAccountUpdatesAsync(ACCOUNT)
        assert EXPIRED_CALL.con_id not in {p.contract.conId for p in ib.positions()}
        assert EXPIRED_CALL.con_id not in {p.contract.conId for p in ib.portfolio()}
        assert c.AAPL_C200.con_id in {p.contract.conId for p in ib.positions()}
        assert await ib.reqExecutionsAsync() == []
        ib.disconnect()

    run(loop, scenario())
    assert sim.sim.call(lambda s: dict(s.accounts[ACCOUNT].cash)) == cash_before
    with pytest.raises(ValueError, match="not an option"):
        sim.sim.expire(ACCOUNT, c.AAPL.con_id)


def test_expired_option_with_a_zero_row_until_new_day(
    sim: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    sim.sim.set_position(ACCOUNT, EXPIRED_CALL, D(-2), D("80"), D("0.01"))
    sim.sim.expire(ACCOUNT, EXPIRED_CALL.con_id, zero_row=True)

    async def rows() -> list[Any]:
        ib = await connect(sim.port, 1)
        seen: list[Any] = []
        ib.positionEvent += seen.append
        await ib.reqPositionsAsync()
        ib.disconnect()
        return [(p.position, p.avgCost) for p in seen if p.contract.conId == EXPIRED_CALL.con_id]

    assert run(loop, rows()) == [(0, 0)]
    sim.sim.new_day()
    assert run(loop, rows()) == []


def test_exercise_and_assignment_move_the_underlying_without_executions(
    sim: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    sim.sim.set_position(ACCOUNT, EXPIRED_CALL, D(2), D("500"), D("0.01"))  # long call
    sim.sim.set_position(ACCOUNT, EXPIRED_PUT, D(-1), D("-300"), D("0.01"))  # short put
    sim.sim.exercise_option(ACCOUNT, EXPIRED_CALL.con_id, c.AAPL.con_id, 1)  # +100 @ 200
    sim.sim.exercise_option(ACCOUNT, EXPIRED_PUT.con_id, c.AAPL)  # assigned: +100 @ 180

    async def scenario() -> dict[int, float]:
        ib = await connect(sim.port, 1)
        positions = {p.contract.conId: p.position for p in await ib.reqPositionsAsync()}
        assert await ib.reqExecutionsAsync() == []
        ib.disconnect()
        return positions

    positions = run(loop, scenario())
    assert positions[c.AAPL.con_id] == 300
    assert positions[EXPIRED_CALL.con_id] == 1
    assert EXPIRED_PUT.con_id not in positions
    holding = sim.sim.call(lambda s: s.holding(ACCOUNT, c.AAPL.con_id))
    assert holding.avg_cost == (100 * D("150.25") + 100 * D(200) + 100 * D(180)) / 300
    cash = sim.sim.call(lambda s: s.accounts[ACCOUNT].cash["USD"])
    assert cash == D(100_000) - 100 * D(200) - 100 * D(180)


def test_exchange_rate_account_values(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    state = SimState()
    state.add_account(ACCOUNT, "EUR", {"EUR": D(50_000), "USD": D(1_000)})
    state.set_position(ACCOUNT, c.VOD, D(100), D("0.75"), D("0.72"))  # GBP
    thread = start_sim(None, state=state)

    async def rates(client_id: int) -> dict[str, str]:
        ib = await connect(thread.port, client_id, account=ACCOUNT)
        await ib.reqAccountUpdatesAsync(ACCOUNT)
        values = {v.currency: v.value for v in ib.accountValues() if v.tag == "ExchangeRate"}
        ib.disconnect()
        return values

    values = run(loop, rates(1))
    assert set(values) == {"BASE", "EUR", "USD", "GBP"}
    assert values["BASE"] == "1.00" and values["EUR"] == "1.00"
    # Units of base (EUR) per unit of the currency: 1 / 1.08 and 1.27 / 1.08.
    assert D(values["USD"]) == pytest.approx(D(1) / D("1.08"), abs=D("1e-8"))
    assert D(values["GBP"]) == pytest.approx(D("1.27") / D("1.08"), abs=D("1e-8"))

    thread.sim.set_exchange_rate("GBP", "1.35")
    thread.sim.set_base_currency(ACCOUNT, "USD")
    values = run(loop, rates(2))
    assert values["USD"] == "1.00" and values["GBP"] == "1.35"
    assert D(values["EUR"]) == D("1.08")


def test_executions_reach_only_the_placer_client_zero_and_the_master(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    """TWS's rule, opted into: a manual fill reaches client 0 and the master only."""
    thread = start_sim(None, state=one_account(), broadcast_executions=False, master_client_id=9)
    sim = thread.sim

    async def scenario() -> None:
        clients = {cid: await connect(thread.port, cid) for cid in (0, 5, 7, 9)}
        live: dict[int, list[str]] = {cid: [] for cid in clients}
        reports: dict[int, list[str]] = {cid: [] for cid in clients}
        positions: dict[int, list[float]] = {cid: [] for cid in clients}
        for cid, ib in clients.items():
            ib.execDetailsEvent += lambda t, f, cid=cid: live[cid].append(f.execution.execId)
            ib.commissionReportEvent += lambda t, f, r, cid=cid: reports[cid].append(r.execId)
            ib.positionEvent += lambda p, cid=cid: positions[cid].append(p.position)

        manual = await off_loop(lambda: sim.fill(ACCOUNT, c.AAPL.con_id, 10, "190"))
        api = await off_loop(
            lambda: sim.fill(ACCOUNT, c.AAPL.con_id, 5, "191", client_id=5, order_id=42)
        )
        await until(lambda: all(110 in positions[cid] for cid in clients))
        await until(lambda: len(live[0]) == 2 and len(live[9]) == 2 and len(reports[9]) == 2)
        await asyncio.sleep(0.2)
        assert live[0] == live[9] == [manual.exec_id, api.exec_id]
        assert live[5] == reports[5] == [api.exec_id]
        assert live[7] == reports[7] == []  # positions reach everyone, executions do not
        answers = {cid: set(await executions(ib)) for cid, ib in clients.items()}
        assert answers[0] == answers[9] == {manual.exec_id, api.exec_id}
        assert answers[5] == {api.exec_id}
        assert answers[7] == set()
        for ib in clients.values():
            ib.disconnect()

    run(loop, scenario())


def test_broadcast_default_lets_every_client_see_manual_fills(
    sim: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    """The default (kept for the tests written before the rule): everyone sees everything."""

    async def scenario() -> None:
        ib = await connect(sim.port, 7)
        manual = await off_loop(lambda: sim.sim.fill(ACCOUNT, c.AAPL.con_id, 1, "190"))
        assert manual.exec_id in await executions(ib)
        await off_loop(lambda: sim.sim.set_broadcast_executions(False))
        assert await executions(ib) == {}
        await off_loop(lambda: sim.sim.set_master_client_id(7))
        assert manual.exec_id in await executions(ib)
        ib.disconnect()

    run(loop, scenario())


def test_position_rows_lag_the_executions_answer(
    sim: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    """The race of issue 15 situation 9: executions already have the fill, positions do not."""
    sim.sim.set_faults(position_lag=1.0)

    async def scenario() -> None:
        ib = await connect(sim.port, 1, account=ACCOUNT)
        seen: list[float] = []
        ib.positionEvent += lambda p: seen.append(p.position)
        sale = await off_loop(lambda: sim.sim.fill(ACCOUNT, c.AAPL.con_id, -30, "191"))
        fresh = await connect(sim.port, 2)  # a sync during the lag
        assert sale.exec_id in await executions(fresh)
        rows = {p.contract.conId: p.position for p in await fresh.reqPositionsAsync()}
        assert rows[c.AAPL.con_id] == 100  # still from before the sale
        await fresh.reqAccountUpdatesAsync(ACCOUNT)
        assert {p.contract.conId: p.position for p in fresh.portfolio()}[c.AAPL.con_id] == 100
        fresh.disconnect()
        new = await off_loop(lambda: sim.sim.fill(ACCOUNT, c.MSFT, 2, "400"))
        later = await connect(sim.port, 3)
        assert new.exec_id in await executions(later)
        assert c.MSFT.con_id not in {p.contract.conId for p in await later.reqPositionsAsync()}
        later.disconnect()
        # After the lag the rows catch up, pushed live too.
        await until(lambda: 70 in seen and 2 in seen, within=3.0)
        rows = {p.contract.conId: p.position for p in await ib.reqPositionsAsync()}
        assert rows[c.AAPL.con_id] == 70 and rows[c.MSFT.con_id] == 2
        ib.disconnect()

    run(loop, scenario())
