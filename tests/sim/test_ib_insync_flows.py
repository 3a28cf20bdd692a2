"""ib_insync against the simulator: snapshots, live pushes and every scripted broker event."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from typing import Any

import pytest
from ib_insync import ExecutionFilter

from app.sim.requests import ORDER_MESSAGES
from app.sim.runner import SimulatorThread
from tests.sim.ibhelpers import connect, off_loop, until
from tests.sim.rawclient import RawClient

A, B = "DU1111111", "DU2222222"
AAPL, MSFT, TSLA, ES = 265598, 272093, 76792991, 495512563


def test_snapshot_for_every_account_and_no_order_messages(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    """The app's pattern: one reqAccountUpdates per account gives every account's prices."""

    async def scenario() -> None:
        ib = await connect(basic.port, 3, readonly=False)  # also sends 5 and 99
        for account in ib.managedAccounts():
            await ib.reqAccountUpdatesAsync(account)
        assert {p.account for p in ib.portfolio()} == {A, B}
        positions = {(p.account, p.contract.conId): p for p in ib.positions()}
        assert positions[(A, MSFT)].position == 0.3
        assert positions[(A, TSLA)].position == -50
        assert positions[(A, ES)].contract.multiplier == "50"
        assert len(ib.fills()) == 3
        assert all(f.commissionReport.commission > 0 for f in ib.fills())
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))
    received = basic.sim.received_ids(client_id=3)
    assert {61, 5, 99, 6, 76, 7} <= set(received)
    assert not ORDER_MESSAGES & set(received)
    records = basic.sim.inbound_records()
    assert {r.client_id for r in records} == {3}
    assert len({r.conn_id for r in records}) == 1


def test_fill_is_delivered_in_tws_order_then_position_and_portfolio(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    async def scenario() -> list[list[str]]:
        client = await RawClient.open(basic.port, client_id=4)
        await client.ready()
        client.send("61", "1")
        await client.read_until("62")
        client.send("6", "2", "1", A)
        await client.read_until("54")
        await off_loop(lambda: basic.sim.fill(A, MSFT, Decimal("0.7"), Decimal("416")))
        frames, _ = await client.drain(quiet=0.3)
        await client.close()
        return [f for f in frames if f[0] != "4"]

    frames = loop.run_until_complete(asyncio.wait_for(scenario(), 20))
    ids = [f[0] for f in frames]
    assert ids[:8] == ["5", "3", "11", "5", "3", "59", "61", "7"]
    assert frames[2][1] == "-1"  # live execDetails: reqId -1
    assert frames[5][5] == "1.7976931348623157E308"  # opening fill: realizedPNL unset
    assert frames[6][-2] == "1"  # 0.3 + 0.7, exact
    assert frames[2][14].endswith(".01.01")  # IB-style execId
    assert frames[2][15].endswith(" US/Eastern")


def test_live_events_in_ib_insync(basic: SimulatorThread, loop: asyncio.AbstractEventLoop) -> None:
    sim = basic.sim

    async def scenario() -> None:
        ib = await connect(basic.port, 5, account=A)
        events: dict[str, list[Any]] = {"exec": [], "comm": [], "pos": [], "pf": []}
        ib.execDetailsEvent += lambda t, f: events["exec"].append(f)
        ib.commissionReportEvent += lambda t, f, r: events["comm"].append(r)
        ib.positionEvent += events["pos"].append
        ib.updatePortfolioEvent += events["pf"].append

        # A flip: long 100 AAPL, sell 150 → short 50, realized on the closing 100.
        execution = await off_loop(lambda: sim.fill(A, AAPL, -150, "195.5"))
        await until(lambda: bool(events["comm"] and events["pos"] and events["pf"]))
        assert events["exec"][0].execution.execId == execution.exec_id
        assert events["comm"][0].realizedPNL == float(execution.realized_pnl or 0)
        assert events["pos"][-1].position == -50
        holding = sim.call(lambda s: s.holding(A, AAPL))
        assert events["pos"][-1].avgCost == float(holding.avg_cost)

        # A price tick moves market price, value and unrealized P&L.
        await off_loop(lambda: sim.set_price(ES, Decimal("5100")))
        await until(lambda: any(p.marketPrice == 5100 for p in events["pf"]))
        es = next(p for p in ib.portfolio() if p.contract.conId == ES)
        assert es.marketValue == 2 * 5100 * 50
        assert es.unrealizedPNL == 2 * 5100 * 50 - 2 * 250012.5

        # A 2:1 split without a fill: quantity doubles, avgCost halves.
        events["pos"].clear()
        await off_loop(lambda: sim.split(A, MSFT, 2))
        await until(lambda: bool(events["pos"]))
        assert events["pos"][-1].position == 0.6
        assert math.isclose(events["pos"][-1].avgCost, 310.1 / 2)

        # A transfer out (quantity change, no fill).
        events["pos"].clear()
        await off_loop(lambda: sim.adjust_quantity(A, TSLA, Decimal(-20)))
        await until(lambda: bool(events["pos"]))
        assert events["pos"][-1].position == -20

        # A correction: same execId up to the last dot, next revision.
        events["exec"].clear()
        corrected = await off_loop(lambda: sim.correct_fill(execution.exec_id, price=Decimal(195)))
        await until(lambda: bool(events["exec"]))
        assert corrected.exec_id == execution.exec_id[:-2] + "02"
        assert events["exec"][0].execution.execId == corrected.exec_id
        assert events["exec"][0].execution.price == 195

        # Silently removed: no event at all, and later snapshots simply lack it.
        events["pos"].clear()
        await off_loop(lambda: sim.remove_position(B, 208813720))
        await asyncio.sleep(0.2)
        assert events["pos"] == []
        positions = await ib.reqPositionsAsync()
        assert (B, 208813720) not in {(p.account, p.contract.conId) for p in positions}
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_pnl_subscriptions_follow_ticks(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    async def scenario() -> None:
        ib = await connect(basic.port, 6)
        pnl = ib.reqPnL(A)
        single = ib.reqPnLSingle(A, "", ES)
        await until(lambda: not math.isnan(pnl.unrealizedPnL) and single.position == 2)
        before = single.unrealizedPnL
        await off_loop(lambda: basic.sim.set_price(ES, Decimal("5060.25")))
        await until(lambda: single.unrealizedPnL != before)
        assert single.unrealizedPnL == before + 2 * 10 * 50
        assert single.value == 2 * 5060.25 * 50
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_errors_on_demand_and_the_1102_account_summary(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    async def scenario() -> None:
        ib = await connect(basic.port, 7)
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
        for code in (1100, 1101, 1102, 2104, 326):
            await off_loop(lambda code=code: basic.sim.push_error(code))
        await until(lambda: len(codes) >= 5)
        assert codes[:5] == [1100, 1101, 1102, 2104, 326]
        # ib_insync answers 1102 with a reqAccountSummary, which must be answered.
        await until(lambda: 62 in basic.sim.received_ids(client_id=7))
        summary = await asyncio.wait_for(ib.accountSummaryAsync(), 3)
        assert {v.tag for v in summary} >= {"NetLiquidation", "TotalCashValue"}
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_execution_filter_and_utility_requests(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    async def scenario() -> None:
        ib = await connect(basic.port, 8)
        fills = await ib.reqExecutionsAsync(ExecutionFilter(acctCode=B))
        assert [f.execution.acctNumber for f in fills] == [B]
        sold = await ib.reqExecutionsAsync(ExecutionFilter(side="SELL"))
        assert [f.execution.side for f in sold] == ["SLD"]
        now = await ib.reqCurrentTimeAsync()
        assert now.year >= 2024
        ib.disconnect()

        client = await RawClient.open(basic.port, client_id=9)
        await client.ready()
        client.send("8", "1", "1")
        assert (await client.read_until("9"))[-1] == ["9", "1", "1"]
        client.send("17", "1")
        assert (await client.read_until("15"))[-1] == ["15", "1", f"{A},{B}"]
        await client.close()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


@pytest.mark.sends_order_messages(client_ids=[10])  # its raw client, on purpose
def test_order_messages_and_unknown_requests_are_recorded_and_refused(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    """The record lets a test prove the app never sent 3, 4, 58 or 21 (DESIGN rule 11)."""

    async def scenario() -> list[list[str]]:
        client = await RawClient.open(basic.port, client_id=10)
        await client.ready()
        client.send("3", "42", "265598", "AAPL", "STK")
        client.send("4", "1", "42", "")
        client.send("58", "1")
        client.send("21", "2", "77", "700000001")
        client.send("1", "11", "55", "265598")
        client.send("300", "1")
        frames, closed = await client.drain(quiet=0.3)
        assert not closed
        await client.close()
        return [f for f in frames if f[0] == "4" and f[3] not in ("2104", "2106", "2158")]

    errors = loop.run_until_complete(asyncio.wait_for(scenario(), 20))
    assert [(f[2], f[3]) for f in errors] == [
        ("42", "321"),
        ("42", "321"),
        ("-1", "321"),
        ("77", "321"),
        ("55", "354"),
        ("-1", "320"),
    ]
    received = basic.sim.received_ids(client_id=10)
    assert set(received) >= ORDER_MESSAGES
    assert received == [71, 3, 4, 58, 21, 1, 300]


def test_a_new_account_subscription_replaces_the_old_one(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    """One reqAccountUpdates per client (TWS's rule): B replaces A, with the 2100 notice."""

    async def scenario() -> None:
        client = await RawClient.open(basic.port, client_id=11)
        await client.ready()
        client.send("6", "2", "1", A)
        first = await client.read_until("54")
        assert {f[-1] for f in first if f[0] == "7"} == {A}
        client.send("6", "2", "1", B)
        second = await client.read_until("54")
        assert second[0][:4] == ["4", "2", "-1", "2100"]
        assert {f[-1] for f in second if f[0] == "7"} == {B}
        await off_loop(lambda: basic.sim.fill(A, AAPL, Decimal(1), Decimal(190)))
        await off_loop(lambda: basic.sim.fill(B, AAPL, Decimal(1), Decimal(190)))
        frames, _ = await client.drain(quiet=0.3)
        assert {f[-1] for f in frames if f[0] == "7"} == {B}
        await client.close()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))
