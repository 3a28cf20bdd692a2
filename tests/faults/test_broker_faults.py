"""Broker faults from the simulator (issue 7, item 6): nothing falsely closed, no fill twice.

Real ib_insync over loopback to the simulator, the real service and a real SQLite file. Each
fault is injected while the ledger holds positions that a wrong reading would close, and the
ledger is then audited against the simulated broker: every held position OPEN with its exact
quantity, no execution stored or booked twice, and realized P&L equal to what IB's own
average-cost model (the simulator's) realized, to the cent.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from app.db import repository
from app.domain.connection import ConnectionState
from app.domain.values import EventKind, PositionStatus, SyncStatus, SyncTrigger
from app.sim import contracts as c
from app.sim.scenarios import build_scale
from app.sim.state import SimState
from app.sync.service import SyncOptions
from tests.faults.checks import audit, broker_book, projection
from tests.faults.figures import record, sized
from tests.sync.test_trading_day import connected

D = Decimal
CENT = D("0.01")
A, B = "DU3100001", "DU3200002"
OFF = SyncOptions(enabled=False)
FAST_RECONNECT = {"backoff_initial": 0.02, "backoff_cap": 0.1}
LEDGER_TABLES = ("accounts", "positions", "position_events", "executions")


def book() -> SimState:
    """Two accounts: stocks, a fractional, a short, a future and an option; no fills yet."""
    state = SimState()
    state.add_account(A, "USD")
    state.add_account(B, "USD")
    state.set_position(A, c.AAPL, D(100), D("150.00"), D("190.50"))
    state.set_position(A, c.MSFT, D("0.3"), D("310.10"), D("415.20"))
    state.set_position(A, c.TSLA, D(-60), D("250.00"), D("240.00"))
    state.set_position(A, c.ES, D(2), D("250012.50"), D("5050.25"))
    state.set_position(A, c.AAPL_C200, D(5), D("350.65"), D("4.10"))
    state.set_position(B, c.AAPL, D(10), D("170.00"), D("190.50"))
    state.set_position(B, c.NVDA, D(40), D("100.00"), D("120.00"))
    return state


async def until(predicate, within: float = 10.0) -> None:
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def ledger_rows(stack) -> dict:
    """The ledger's positions, events, fills and accounts (sync_runs grow with failed runs)."""
    view = projection(stack.db.path, read_only=True)
    return {table: view[table] for table in LEDGER_TABLES}


def audited(stack, family: str, *, faults: int, runs: int, synced: bool = True) -> None:
    holdings, exec_ids = stack.sim.call(broker_book)
    result = audit(stack.db.path, holdings, exec_ids, synced=synced, read_only=True)
    record(
        family,
        faults=faults,
        runs=runs,
        rows_lost=result.rows_lost,
        false_closes=result.false_closes,
        duplicate_fills=result.duplicate_fills,
    )
    result.assert_clean()


def realized_by_key(stack) -> dict[tuple[str, int], Decimal]:
    totals: dict[tuple[str, int], Decimal] = {}
    for life in stack.db.run_sync(repository.positions, include_closed=True):
        totals[life.key] = totals.get(life.key, D(0)) + life.realized_pnl
    return totals


def assert_realized_matches_ib(stack) -> None:
    """The ledger's realized P&L per key equals the simulator's IB model, to the cent."""
    ours = realized_by_key(stack)
    theirs = stack.sim.call(
        lambda s: {(h.account, h.contract.con_id): h.realized_pnl for h in s.holdings.values()}
    )
    for key, value in theirs.items():
        assert abs(ours.get(key, D(0)) - value) < D("0.005"), (key, ours.get(key), value)


async def ok(stack, trigger: SyncTrigger = SyncTrigger.MANUAL):
    result = await stack.service.sync_positions(trigger)
    assert result.status is SyncStatus.OK, result.error
    return result


async def reconnected(stack) -> None:
    await until(lambda: stack.broker.status.state is ConnectionState.CONNECTED)


def test_drop_at_every_position_index_of_a_50_position_snapshot(make_stack, run):
    """Guards: a disconnect partway through the positions read as "the rest are flat"."""
    state = build_scale(50, accounts=2)
    stack = make_stack(None, state=state, options=OFF, **FAST_RECONNECT)
    keys = stack.sim.call(lambda s: sorted(s.holdings))

    async def scenario():
        await connected(stack)
        await ok(stack)
        # The broker moves on: a partial snapshot wrongly accepted would write these changes
        # (and read every row after the drop as absent).
        for account, con_id in keys[::7]:
            held = stack.sim.call(lambda s, k=(account, con_id): s.holdings[k].quantity)
            stack.sim.adjust_quantity(account, con_id, held * 2)
        before = ledger_rows(stack)
        failed = 0
        for index in range(0, 51):  # 0 = before the first row … 50 = every row, no positionEnd
            await reconnected(stack)
            # A snapshot uses the connect's own answer first; the sync's refresh then asks again.
            assert (await stack.broker.snapshot()).complete
            stack.sim.set_faults(drop_after_position_rows=index, drop_once=True)
            result = await stack.service.sync_positions(SyncTrigger.MANUAL)
            assert result.status is not SyncStatus.OK, f"drop after row {index} accepted"
            assert ledger_rows(stack) == before, f"drop after row {index} changed the ledger"
            failed += 1
        await reconnected(stack)
        result = await ok(stack)
        assert result.missing == 0 and result.closed == 0 and result.opened == 0
        assert result.updated == len(keys[::7])
        return failed

    failed = run(scenario(), timeout=120)
    rows = stack.db.run_sync(repository.positions, include_closed=True)
    assert all(p.status is PositionStatus.OPEN and p.missing_since is None for p in rows)
    audited(stack, "broker: drop mid-snapshot", faults=failed, runs=failed + 1)


@pytest.mark.parametrize("phase", ["account_updates", "executions"])
def test_drop_during_account_data_or_executions(make_stack, run, phase):
    """Guards: positions complete, then the socket drops before the rest ends: still nothing."""
    stack = make_stack(None, state=book(), options=OFF, **FAST_RECONNECT)

    async def scenario():
        await connected(stack)
        await ok(stack)
        stack.sim.remove_position(B, c.NVDA.con_id)  # a wrong reading would mark it missing
        before = ledger_rows(stack)
        stack.sim.set_faults(delays={phase: 0.4})
        pending = asyncio.ensure_future(stack.service.sync_positions())
        await asyncio.sleep(0.15)
        assert stack.sim.drop_connections() >= 1
        result = await pending
        assert result.status is SyncStatus.FAILED and result.error
        assert ledger_rows(stack) == before
        stack.sim.set_faults(delays={})
        await reconnected(stack)
        result = await ok(stack)
        assert result.missing == 1 and result.closed == 0

    run(scenario(), timeout=30)
    audited(stack, "broker: drop mid-snapshot", faults=1, runs=2)


@pytest.mark.parametrize("kind", ["unknown", "short", "binary"])
def test_garbage_frames(make_stack, run, kind):
    """Guards: an undecodable frame taken as data, or killing the app, or a partial read."""
    stack = make_stack(None, state=book(), options=OFF, **FAST_RECONNECT)

    async def scenario():
        await connected(stack)
        await ok(stack)
        before = ledger_rows(stack)
        survived = 0
        for _ in range(5):
            await reconnected(stack)
            stack.sim.send_garbage(kind)  # between syncs
            await asyncio.sleep(0.05)
            stack.sim.set_faults(delays={"positions": 0.2})
            pending = asyncio.ensure_future(stack.service.sync_positions())
            await asyncio.sleep(0.05)
            if stack.broker.status.state is ConnectionState.CONNECTED:
                stack.sim.send_garbage(kind)  # and in the middle of a snapshot
            result = await pending
            stack.sim.set_faults(delays={})
            if result.status is SyncStatus.OK:
                assert result.opened == result.closed == result.missing == 0
            assert ledger_rows(stack)["positions"] == before["positions"]
            assert ledger_rows(stack)["position_events"] == before["position_events"]
            survived += 1
        await reconnected(stack)
        await ok(stack)
        return survived

    survived = run(scenario(), timeout=60)
    audited(stack, f"broker: garbage frames ({kind})", faults=2 * survived, runs=survived + 1)


def test_bad_prices_empty_quantity_and_unknown_account(make_stack, run):
    """Guards: NaN/inf/unset prices stored as numbers, an empty quantity read as 0 (a false
    close) or as absent (a MISSING warning), and another login's account synced."""
    stack = make_stack(None, state=book(), options=OFF, **FAST_RECONNECT)

    async def scenario():
        await connected(stack)
        await ok(stack)
        before = {p.key: p for p in stack.db.run_sync(repository.positions)}
        stack.sim.set_price(c.AAPL.con_id, D("NaN"))
        stack.sim.set_price(c.MSFT.con_id, D("Infinity"))
        stack.sim.set_price(c.TSLA.con_id, D("-Infinity"))
        stack.sim.set_price(c.NVDA.con_id, None)  # unset: 1.7976931348623157E308 on the wire
        stack.sim.set_empty_quantity(A, c.ES.con_id)
        stack.sim.set_position("DU9999999", c.MES, D(3), D("25000"), D("5000"))
        for _ in range(3):  # and replays of the same bad snapshot
            result = await ok(stack)
            assert result.opened == result.closed == result.missing == 0
            assert result.skipped_rows >= 2  # the empty quantity, the unknown account
        after = {p.key: p for p in stack.db.run_sync(repository.positions)}
        assert after.keys() == before.keys()
        for key, life in after.items():
            assert life.quantity == before[key].quantity and life.missing_since is None
            assert life.realized_pnl == before[key].realized_pnl
            for value in (life.current_price, life.market_value, life.unrealized_pnl):
                assert value is None or value.is_finite(), (key, value)
        for con_id in (c.AAPL.con_id, c.MSFT.con_id, c.TSLA.con_id):
            assert after[(A, con_id)].current_price is None
        assert after[(B, c.NVDA.con_id)].current_price is None
        assert after[(A, c.ES.con_id)].quantity == 2  # skipped, never treated as absent
        assert "DU9999999" not in stack.db.run_sync(repository.account_codes)
        # The bad rows heal: the next good snapshot syncs them normally.
        stack.sim.set_empty_quantity(A, c.ES.con_id, empty=False)
        stack.sim.set_price(c.AAPL.con_id, D("191"))
        await ok(stack)
        healed = {p.key: p for p in stack.db.run_sync(repository.positions)}
        assert healed[(A, c.AAPL.con_id)].current_price == D(191)

    run(scenario(), timeout=30)
    audited(stack, "broker: bad rows and prices", faults=6, runs=4)


def test_duplicate_exec_ids_corrections_and_replays(make_stack, run):
    """Guards: one execution stored or booked twice (a duplicate in one answer, the same fill
    in every later answer, a correction arriving as a "new" fill)."""
    stack = make_stack(None, state=book(), options=OFF, **FAST_RECONNECT)

    async def scenario():
        await connected(stack)
        await ok(stack)
        buy = stack.sim.fill(A, c.AAPL, 20, "188.00")
        sell = stack.sim.fill(A, c.AAPL, -50, "195.00")
        cover = stack.sim.fill(A, c.TSLA, 60, "230.00")  # closes the short
        # The same execution twice in one reqExecutions answer.
        stack.sim.call(lambda s: s.executions.__setitem__("dup", s.executions[buy.exec_id]))
        first = await ok(stack)
        assert first.closed == 1
        realized = realized_by_key(stack)
        events = projection(stack.db.path, read_only=True)["position_events"]
        # Replays: every later snapshot reports the same executions again.
        for _ in range(10):
            replay = await ok(stack)
            assert replay.opened == replay.updated == replay.closed == 0
        assert realized_by_key(stack) == realized
        assert projection(stack.db.path, read_only=True)["position_events"] == events
        # A correction (same execId up to the last dot) replaces the stored fill.
        corrected = stack.sim.correct_fill(sell.exec_id, commission=D("1.50"))
        await ok(stack)
        stored = {f.exec_id for f in stack.db.run_sync(repository.fills_for, (A, c.AAPL.con_id))}
        assert stored == {buy.exec_id, corrected.exec_id}
        assert sell.exec_id not in stored
        # No second booking of the corrected fill; its realized P&L is re-derived from the
        # corrected commission (issue 15, item 3): lower by exactly the commission added.
        expected = dict(realized)
        expected[(A, c.AAPL.con_id)] -= D("1.50") - sell.commission
        assert realized_by_key(stack) == expected
        open_rows = {p.key: p for p in stack.db.run_sync(repository.positions)}
        assert open_rows[(A, c.AAPL.con_id)].quantity == 70
        assert (A, c.TSLA.con_id) not in open_rows
        closed = [
            p
            for p in stack.db.run_sync(repository.positions, include_closed=True)
            if p.key == (A, c.TSLA.con_id)
        ]
        assert [p.status for p in closed] == [PositionStatus.CLOSED]
        assert cover.exec_id == closed[0].exit_trade_id

    run(scenario(), timeout=30)
    audited(stack, "broker: duplicate execIds", faults=12, runs=12)


def test_100_drop_and_reconnect_cycles(make_stack, run):
    """Guards: fills lost or booked twice across reconnects; a reconnect read as "flat"."""
    cycles = sized(100, 500)
    options = SyncOptions(interval=3600, debounce=0.05)
    stack = make_stack(None, state=book(), options=options, **FAST_RECONNECT)
    trades = [
        (A, c.AAPL, D(5)),
        (A, c.AAPL, D(-3)),
        (A, c.TSLA, D(4)),
        (A, c.ES, D(-1)),
        (A, c.ES, D(1)),
        (B, c.NVDA, D(-10)),
        (B, c.NVDA, D(10)),
        (A, c.AAPL_C200, D(1)),
        (A, c.AAPL_C200, D(-1)),
        (A, c.MSFT, D("0.05")),
    ]

    def reconnects() -> int:
        return sum(r.trigger is SyncTrigger.RECONNECT and r.ok for r in stack.results)

    async def scenario():
        await stack.service.start()
        await until(lambda: any(r.trigger is SyncTrigger.STARTUP and r.ok for r in stack.results))
        for cycle in range(cycles):
            account, contract, shares = trades[cycle % len(trades)]
            price = D(100 + cycle % 17) if contract.sec_type != "FUT" else D(5000 + cycle)
            done = reconnects()
            if cycle % 2:
                stack.sim.fill(account, contract, shares, price)  # while connected
            assert stack.sim.drop_connections() >= 1
            if not cycle % 2:
                stack.sim.fill(account, contract, shares, price)  # while disconnected
            await until(lambda done=done: reconnects() > done)
        await until(lambda: not stack.service.running)
        await ok(stack)

    run(scenario(), timeout=sized(120, 600))
    rows = stack.db.run_sync(repository.positions, include_closed=True)
    # Closed only by a fill that took it to zero (the full-size run trades TSLA through zero).
    closed = [p for p in rows if p.status is PositionStatus.CLOSED]
    assert all(p.exit_trade_id and p.close_reason in ("broker", "flip") for p in closed), closed
    assert not [p for p in rows if p.missing_since is not None]
    assert_realized_matches_ib(stack)
    audited(stack, "broker: drop-and-reconnect", faults=cycles, runs=reconnects())


def test_1100_held_for_a_long_time(make_stack, run):
    """Guards: TWS without IB (1100) answering "no positions" being taken as flat, for as long
    as it lasts; fills and silent removals during it are booked once, after 1101."""
    options = SyncOptions(interval=0.02, debounce=0.01)
    stack = make_stack(None, state=book(), options=options, **FAST_RECONNECT)
    attempts = sized(300, 3000)

    async def scenario():
        await stack.service.start()
        await until(lambda: any(r.trigger is SyncTrigger.STARTUP and r.ok for r in stack.results))
        before = ledger_rows(stack)
        stack.sim.push_error(1100)
        await until(lambda: stack.broker.status.state is ConnectionState.IB_LOST)
        stack.sim.fill(A, c.AAPL, -100, "200.00")  # closes AAPL in A while IB is away
        stack.sim.fill(B, c.NVDA, 5, "125.00")
        stack.sim.remove_position(A, c.MSFT.con_id)  # silently gone
        stack.sim.set_price(c.TSLA.con_id, D("NaN"))
        skipped = 0
        for _ in range(attempts):  # the periodic timer and pushes keep trying meanwhile
            result = await stack.service.sync_positions(SyncTrigger.MANUAL)
            assert result.status is SyncStatus.SKIPPED, result.summary()
            skipped += 1
            await asyncio.sleep(0.005)
        assert ledger_rows(stack) == before
        stack.sim.push_error(1101)  # restored, data lost: a full resync
        await until(lambda: stack.broker.status.state is ConnectionState.CONNECTED)
        await until(lambda: any(r.trigger is SyncTrigger.RECONNECT and r.ok for r in stack.results))
        await until(lambda: not stack.service.running)
        return skipped

    skipped = run(scenario(), timeout=sized(60, 300))
    rows = stack.db.run_sync(repository.positions, include_closed=True)
    msft = [p for p in rows if p.key == (A, c.MSFT.con_id)]
    assert [p.status for p in msft] == [PositionStatus.OPEN] and msft[0].missing_since
    kinds = [e.kind for e in stack.db.run_sync(repository.events, msft[0].id)]
    assert kinds.count(EventKind.MISSING) == 1
    aapl = [p for p in rows if p.key == (A, c.AAPL.con_id)]
    assert [p.status for p in aapl] == [PositionStatus.CLOSED]  # explained by its fill
    assert_realized_matches_ib(stack)
    audited(stack, "broker: 1100 held", faults=skipped, runs=skipped + 1)
