"""Issue 16: what a real TWS does that stopped the app syncing, through the whole stack.

Real ib_insync over loopback to the simulator (each behaviour a named fault or control of
app.sim, citing IB), a real ledger (SQLite file and PostgreSQL), real migrations. Each test
checks that syncing goes on, quantities are right, P&L is right or marked as an estimate, and
nothing is falsely closed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ib_insync import IB

from app.cli.commands.status import gap_lines
from app.db import repository
from app.domain.connection import ConnectionState
from app.domain.documents import status_json
from app.domain.values import PnlBasis, PositionStatus, SyncStatus
from app.sim import contracts as c
from app.sim.requests import In
from app.sim.scenarios import BASIC_ACCOUNTS
from app.sync.service import SyncOptions
from tests.sync.test_trading_day import connected, open_row

D = Decimal
OFF = SyncOptions(enabled=False)
A, B = BASIC_ACCOUNTS


def held(stack: Any) -> dict[tuple[str, int], Decimal]:
    """OPEN quantities in the ledger, by key."""
    return {
        p.key: p.quantity
        for p in stack.db.run_sync(repository.positions)
        if p.status is PositionStatus.OPEN
    }


def at_broker(stack: Any) -> dict[tuple[str, int], Decimal]:
    return {(a, con_id): q for a, con_id, q, _ in stack.sim.positions() if q != 0}


def closed(stack: Any) -> list[Any]:
    rows = stack.db.run_sync(repository.positions, include_closed=True)
    return [p for p in rows if p.status is PositionStatus.CLOSED]


def status(stack: Any) -> Any:
    return stack.db.run_sync(repository.ledger_status, "test", None)


def reducing_events(stack: Any, account: str, con_id: int) -> list[Any]:
    row = open_row(stack, account, con_id)
    assert row is not None
    return [e for e in stack.db.run_sync(repository.events, row.id) if e.realized_pnl is not None]


async def until(predicate: Any, within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_account_updates_held_by_another_client_prices_stale_quantities_sync(make_stack, run):
    """Item 1 (2101): another API client holds account updates for DU1111111, so TWS refuses
    DU2222222's. Guards: every full sync of a multi-account login failing forever with "no
    complete answer to the account data"; a refused price wiping the last one."""
    stack = make_stack("basic", options=OFF)

    async def scenario() -> None:
        await connected(stack)
        first = await stack.service.sync_positions()
        assert first.ok and first.stale_prices == ()
        vod_before = open_row(stack, B, c.VOD.con_id)
        assert vod_before is not None and vod_before.current_price == D("0.72")

        # A trading bot on the same login takes the one account-updates subscription (for A:
        # ours, on B since the first sync, moves to A at the next one and stays there).
        stack.sim.set_faults(exclusive_account_updates=True, account_updates_holder=A)
        assert (await stack.service.sync_positions()).stale_prices[0][0] == B
        stack.sim.set_price(c.VOD.con_id, D("0.80"))
        stack.sim.fill(B, c.VOD, D(-100), D("0.79"), commission=D("1"))
        started = asyncio.get_running_loop().time()
        result = await stack.service.sync_positions()
        assert asyncio.get_running_loop().time() - started < 2.0  # refused at once, no timeout
        assert result.ok, result.error
        assert [a for a, _ in result.stale_prices] == [B]
        assert "2101" in result.stale_prices[0][1]
        assert "prices stale for …222" in result.summary()
        assert held(stack) == at_broker(stack)
        assert closed(stack) == []
        vod = open_row(stack, B, c.VOD.con_id)
        assert vod is not None and vod.quantity == 900
        assert vod.current_price == D("0.72")  # the last price stands, not 0.80, not None
        # The sale is priced from its fill: exact (prices are not needed for it).
        sale = reducing_events(stack, B, c.VOD.con_id)[-1]
        assert sale.pnl_basis is PnlBasis.EXACT
        assert sale.realized_pnl == (D("0.79") - D("0.75")) * 100 - 1
        aapl = open_row(stack, A, c.AAPL.con_id)
        assert aapl is not None and aapl.current_price == D("190.5")  # A's prices still live

        # status says which account, since when (the first sync), and why.
        now = datetime.now(UTC)
        st = status(stack)
        doc = status_json(st, now)
        assert [s["account"] for s in doc["stale_prices"]] == [B]
        as_of = st.stale_prices[0].as_of
        assert as_of is not None
        assert abs((as_of.replace(tzinfo=UTC) - first.finished_at).total_seconds()) < 1
        assert "2101" in doc["stale_prices"][0]["reason"]
        lines = gap_lines(st, doc)
        assert len(lines) == 1 and lines[0].startswith(f"PRICES STALE  {B}: as of ")

        # The bot lets go: prices of both accounts are fresh again, and status says nothing.
        stack.sim.set_faults(exclusive_account_updates=False, account_updates_holder=None)
        again = await stack.service.sync_positions()
        assert again.ok and again.stale_prices == ()
        vod = open_row(stack, B, c.VOD.con_id)
        assert vod is not None and vod.current_price == D("0.80")
        assert status(stack).stale_prices == ()

    run(scenario(), timeout=60)


def test_exclusive_account_updates_between_real_clients(start_sim, run):
    """The simulator's rule between two real ib_insync clients: while one holds DU1111111,
    the other's request for DU2222222 gets warning 2101 and no download end."""
    sim = start_sim("basic").sim
    sim.set_faults(exclusive_account_updates=True)
    bot, other = IB(), IB()
    errors: list[int] = []
    other.errorEvent += lambda req_id, code, text, contract: errors.append(code)

    async def scenario() -> None:
        await bot.connectAsync("127.0.0.1", sim.port, clientId=21, account=A, timeout=3)
        await other.connectAsync("127.0.0.1", sim.port, clientId=22, readonly=True, timeout=3)
        try:
            await asyncio.wait_for(other.reqAccountUpdatesAsync(B), 0.5)
            raise AssertionError("the download of another account ended")
        except TimeoutError:
            pass
        assert 2101 in errors
        await asyncio.wait_for(other.reqAccountUpdatesAsync(A), 2)  # the same account is fine

    try:
        run(scenario(), timeout=20)
    finally:
        bot.disconnect()
        other.disconnect()


def test_exec_details_end_never_comes_positions_sync_fills_later(make_stack, run):
    """Item 2 (TWS 10.30: ib-api-reloaded/ib_async#54, #82; erdewit/ib_insync#638). Guards:
    ib_insync's connect waiting for the executions answer — "TWS did not answer", retrying
    forever, nothing synced. Positions commit; a fill pushed live is used all the same (exact);
    a sale made while the app was away is an estimate until the executions answer comes, then
    the fold re-derives it exactly."""
    stack = make_stack("tws-10.30-executions", options=OFF)

    async def scenario() -> None:
        await connected(stack)
        first = await stack.service.sync_positions()
        assert first.ok, first.error
        assert first.fills_unavailable and "executions" in first.fills_unavailable
        assert "fills unavailable" in first.summary()
        assert held(stack) == at_broker(stack)

        # Live: execDetails and commissionReport reach the app although no answer ends.
        stack.sim.fill(A, c.SAP, D(-5), D("195"), commission=D("1"))
        live = await stack.service.sync_positions()
        assert live.ok and live.fills_unavailable
        sale = reducing_events(stack, A, c.SAP.con_id)[-1]
        assert sale.pnl_basis is PnlBasis.EXACT
        assert sale.realized_pnl == (D("195") - D("180")) * 5 - 1

        # Away: a sale while the app was disconnected is in no live push.
        await stack.broker.stop()
        stack.sim.fill(A, c.SAP, D(-5), D("197"), commission=D("1"))
        await connected(stack)
        blind = await stack.service.sync_positions()
        assert blind.ok and blind.fills_unavailable
        assert held(stack)[(A, c.SAP.con_id)] == 10
        sale = reducing_events(stack, A, c.SAP.con_id)[-1]
        assert sale.pnl_basis is PnlBasis.ESTIMATED  # priced from the market: no fill seen
        doc = status_json(status(stack), datetime.now(UTC))
        assert doc["fills_unavailable"] == blind.fills_unavailable

        stack.sim.set_faults(silent_executions=False)
        seen = await stack.service.sync_positions()
        assert seen.ok and seen.fills_unavailable is None
        sale = reducing_events(stack, A, c.SAP.con_id)[-1]
        assert sale.pnl_basis is PnlBasis.EXACT and sale.price == D("197")
        assert sale.realized_pnl == (D("197") - D("180")) * 5 - 1
        assert held(stack) == at_broker(stack) and closed(stack) == []
        assert status_json(status(stack), datetime.now(UTC))["fills_unavailable"] is None

    run(scenario(), timeout=60)
    # The connects asked for no executions; each sync asked once.
    assert stack.sim.received_ids().count(In.REQ_EXECUTIONS) == 4


def test_positions_refused_synced_through_positions_multi(make_stack, run):
    """Item 4: reqPositions refused (IB: large FA/IBroker logins, on-demand account lookup);
    positions come from reqPositionsMulti per account, its pushes keep the book live."""
    stack = make_stack("positions-refused", options=OFF)

    async def scenario() -> None:
        await connected(stack)
        first = await stack.service.sync_positions()
        assert first.ok, first.error
        assert held(stack) == at_broker(stack)
        stack.sim.fill(A, c.TSLA, D(50), D("239"), commission=D("1"))  # covers the short (-50)
        await until(
            lambda: any(
                p.key == (A, c.TSLA.con_id) and p.quantity == 0
                for p in stack.broker.live_positions()
            )
        )
        second = await stack.service.sync_positions()
        assert second.ok, second.error
        assert held(stack) == at_broker(stack)
        tsla = [p for p in closed(stack) if p.key == (A, c.TSLA.con_id)]
        assert len(tsla) == 1 and tsla[0].closed_at is not None  # closed by its fill, exactly
        assert {p.key for p in closed(stack)} == {(A, c.TSLA.con_id)}

    run(scenario(), timeout=60)
    ids = stack.sim.received_ids()
    assert ids.count(In.REQ_POSITIONS_MULTI) >= 2  # one per account, at least once


def test_more_than_50_accounts_never_ask_req_positions(make_stack, run):
    """Item 4, the count rule: 60 accounts → reqPositionsMulti only (TWS would refuse)."""
    stack = make_stack("advisor-60", options=OFF)

    async def scenario() -> None:
        await connected(stack)
        result = await stack.service.sync_positions()
        assert result.ok, result.error
        assert result.positions_seen == 600
        assert held(stack) == at_broker(stack)

    run(scenario(), timeout=60)
    ids = stack.sim.received_ids()
    assert In.REQ_POSITIONS not in ids
    assert ids.count(In.REQ_POSITIONS_MULTI) == 60


def test_2110_without_1100_pauses_and_closes_nothing(make_stack, run):
    """Item 7: 2110 (TWS <-> IB servers broken, the nightly reset) with no 1100. Guards: a
    snapshot taken while TWS's data may be stale read as complete, a position missing from it
    marked missing or closed."""
    stack = make_stack("basic", options=OFF)

    async def scenario() -> None:
        await connected(stack)
        assert (await stack.service.sync_positions()).ok
        before = stack.db.run_sync(repository.positions, include_closed=True)
        stack.sim.break_server_link()
        await until(lambda: stack.broker.status.state is ConnectionState.IB_LOST)
        assert "2110" in stack.broker.status.message
        stack.sim.remove_position(A, c.AAPL.con_id)  # what TWS serves meanwhile lacks it
        paused = await stack.service.sync_positions()
        assert paused.status is SyncStatus.SKIPPED and "2110" in (paused.error or "")
        assert stack.db.run_sync(repository.positions, include_closed=True) == before
        stack.sim.set_position(A, c.AAPL, D(80), D("150.25"), D("190.5"))  # back after reset
        stack.sim.restore_server_link()
        await until(lambda: stack.broker.status.state is ConnectionState.CONNECTED)
        resumed = await stack.service.sync_positions()
        assert resumed.ok and resumed.missing == 0 and resumed.closed == 0
        assert held(stack) == at_broker(stack) and closed(stack) == []
        assert stack.db.run_sync(repository.missing_at_broker) == []

    run(scenario(), timeout=60)


def test_manual_fills_invisible_to_other_client_ids_are_estimates(make_stack, run):
    """Item 7: executions and commissions reach only the placing client, client 0 and the
    Master API client (tws-api executions_commissions.html; app.sim GatewaySimulator.sees).
    A fill entered in TWS is invisible to client 7: its sale is an estimate, nothing closes;
    once 7 is the Master API client the fill explains it exactly."""
    stack = make_stack("basic", options=OFF, client_id=7)
    stack.sim.set_broadcast_executions(False)

    async def scenario() -> None:
        await connected(stack)
        assert (await stack.service.sync_positions()).ok
        stack.sim.fill(A, c.SAP, D(-20), D("196"), commission=D("1"), client_id=0)
        blind = await stack.service.sync_positions()
        assert blind.ok
        assert (A, c.SAP.con_id) not in held(stack)
        sap = [p for p in closed(stack) if p.key == (A, c.SAP.con_id)]
        assert len(sap) == 1  # an explicit 0 row from TWS: a close (rule 3), priced estimated
        events = stack.db.run_sync(repository.events, sap[0].id)
        assert events[-1].pnl_basis is PnlBasis.ESTIMATED
        stack.sim.set_master_client_id(7)
        seen = await stack.service.sync_positions()
        assert seen.ok
        sap = [p for p in closed(stack) if p.key == (A, c.SAP.con_id)]
        assert len(sap) == 1
        events = stack.db.run_sync(repository.events, sap[0].id)
        assert events[-1].pnl_basis is PnlBasis.EXACT and events[-1].price == D("196")
        assert events[-1].realized_pnl == (D("196") - D("180")) * 20 - 1
        assert held(stack) == at_broker(stack)

    run(scenario(), timeout=60)


def test_yesterdays_fill_outside_executions_is_an_estimate(make_stack, run):
    """Item 7: executions span today only (IB Gateway; tws-api executions docs). A sale made
    before the app synced again and before a new day is not in reqExecutions: the change is
    an estimate, the quantity right, nothing falsely closed."""
    stack = make_stack("basic", options=OFF)

    async def scenario() -> None:
        await connected(stack)
        assert (await stack.service.sync_positions()).ok
        await stack.broker.stop()
        stack.sim.fill(A, c.SAP, D(-5), D("195"), commission=D("1"))
        stack.sim.new_day()
        await connected(stack)
        result = await stack.service.sync_positions()
        assert result.ok and result.fills_unavailable is None
        assert held(stack) == at_broker(stack)
        sale = reducing_events(stack, A, c.SAP.con_id)[-1]
        assert sale.pnl_basis is PnlBasis.ESTIMATED
        assert closed(stack) == []

    run(scenario(), timeout=60)


def test_fills_arriving_after_a_blind_first_sync_restate_it_exactly(make_stack, run):
    """Item 2: the first sync ran without executions (TWS 10.30); today's fills that arrive
    at a later sync are folded into the history: each opening is restated as held before the
    fills, and the fills' realized P&L is exact — no double count, nothing closed."""
    from app.domain.values import EventKind

    stack = make_stack("tws-10.30-executions", options=OFF)

    async def scenario() -> None:
        await connected(stack)
        assert (await stack.service.sync_positions()).fills_unavailable
        stack.sim.set_faults(silent_executions=False)
        later = await stack.service.sync_positions()
        assert later.ok and later.fills_unavailable is None
        assert held(stack) == at_broker(stack) and closed(stack) == []
        aapl = open_row(stack, A, c.AAPL.con_id)
        assert aapl is not None
        steps = [
            (e.kind, e.quantity_before, e.quantity_after, e.price)
            for e in stack.db.run_sync(repository.events, aapl.id)
        ]
        assert steps == [
            (EventKind.OPENED, 0, 80, D("150.25")),  # held before the fill (IB's average)
            (EventKind.INCREASED, 80, 100, D("188")),  # today's add, from its fill
        ]
        tsla = reducing_events(stack, A, c.TSLA.con_id)
        assert [(e.realized_pnl, e.pnl_basis) for e in tsla] == [(D(89), PnlBasis.EXACT)]

    run(scenario(), timeout=60)
