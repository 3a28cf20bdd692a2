"""Complete snapshots: several accounts, exact decimals, fills with commissions, bad rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from typing import Any

import pytest

from app.domain.connection import ConnectionState
from app.sim import contracts as c
from app.sim.requests import In
from app.sim.runner import SimulatorThread

pytestmark = pytest.mark.timeout(30)

A, B = "DU1111111", "DU2222222"  # the basic scenario's accounts


def test_complete_snapshot_of_two_accounts(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        return await broker.snapshot()

    snap = run(scenario())
    assert snap.complete and snap.scope is None
    assert snap.accounts == frozenset({A, B})
    assert snap.skipped == ()

    by_key = {p.key: p for p in snap.positions}
    expected = {(acct, con_id): (qty, avg) for acct, con_id, qty, avg in sim.positions()}
    assert {k: (p.quantity, p.average_cost) for k, p in by_key.items()} == expected

    msft = by_key[(A, c.MSFT.con_id)]
    assert str(msft.quantity) == "0.3"  # fractional, exact
    assert msft.market_price == Decimal("415.2") and msft.market_value == Decimal("124.56")
    assert by_key[(A, c.TSLA.con_id)].quantity == -50  # short after a partial cover
    es = by_key[(A, c.ES.con_id)]
    assert es.contract.sec_type == "FUT" and es.contract.multiplier == 50
    assert es.contract.strike is None and es.contract.expiry == "20271217"
    assert es.average_price == Decimal("5000.25")
    option = by_key[(A, c.AAPL_C200.con_id)]
    assert option.contract.multiplier == 100 and option.contract.strike == 200
    assert option.contract.right == "C" and option.average_price == Decimal("3.5065")
    assert by_key[(A, c.SAP.con_id)].contract.currency == "EUR"
    assert by_key[(B, c.VOD.con_id)].contract.currency == "GBP"
    assert by_key[(B, c.GOOGL.con_id)].quantity == Decimal("7.5")
    # Market data for EVERY account, not only one (ib_insync subscribes none with two).
    assert all(p.market_price is not None for p in snap.positions)
    assert by_key[(B, c.AAPL.con_id)].unrealized_pnl == Decimal(205)

    fills = {f.exec_id: f for f in snap.fills}
    executions = sim.executions()
    assert set(fills) == {e.exec_id for e in executions}
    for e in executions:
        fill = fills[e.exec_id]
        assert fill.key == (e.account, e.contract.con_id)
        assert fill.side.value == e.side and fill.shares == e.shares and fill.price == e.price
        assert fill.commission == e.commission and fill.commission_currency == "USD"
        assert fill.realized_pnl == e.realized_pnl  # None for the opening add, IB's value else
        assert fill.time.tzinfo is UTC and fill.time == e.time.replace(microsecond=0)
        assert fill.perm_id == e.perm_id
    assert fills[next(e.exec_id for e in executions if e.contract == c.AAPL)].realized_pnl is None
    assert fills[next(e.exec_id for e in executions if e.contract == c.TSLA)].realized_pnl == 89


def test_account_limit_and_single_account(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """With `account` set only that account is covered; its data comes from the subscription
    ib_insync made at connect, and a second full snapshot downloads nothing new."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port, account=B)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        first = await broker.snapshot()
        second = await broker.snapshot()
        return first, second

    first, second = run(scenario())
    for snap in (first, second):
        assert snap.complete and snap.accounts == frozenset({B})
        assert {p.account for p in snap.positions} == {B}
        assert {f.account for f in snap.fills} == {B}
        assert all(p.market_price is not None for p in snap.positions)
    ids = sim.received_ids()
    assert ids.count(In.REQ_POSITIONS) == 1  # the connect's request is reused (same connection)
    assert ids.count(In.REQ_ACCOUNT_UPDATES) == 1
    assert ids.count(In.REQ_EXECUTIONS) == 2  # one per snapshot; the connect asks none


def test_account_limit_not_managed_is_incomplete(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    from app.domain.connection import IncompleteSnapshotError

    sim = start_sim("single").sim
    broker, rec = make_broker(sim.port, account="DU7777777", timeout=0.5)

    async def scenario() -> str:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        with pytest.raises(IncompleteSnapshotError) as info:
            await broker.snapshot()
        return info.value.reason

    reason = run(scenario())
    assert "…777" in reason and "not managed" in reason and "DU7777777" not in reason


def test_scope_and_refresh(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)
    key = (B, c.GOOGL.con_id)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        scoped = await broker.snapshot(frozenset({key}))
        refreshed = await broker.snapshot(refresh=True)
        return scoped, refreshed

    scoped, refreshed = run(scenario())
    assert scoped.complete and scoped.scope == frozenset({key})
    assert [p.key for p in scoped.positions] == [key]
    assert scoped.positions[0].market_price == Decimal("165.3")
    assert {f.key for f in scoped.fills} == {key}
    assert refreshed.complete and len(refreshed.positions) == len(sim.positions())
    assert sim.received_ids().count(In.REQ_POSITIONS) == 2  # connect + refresh


def test_bad_rows_are_skipped_not_fatal(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """NaN/inf/unset prices → no market data; an empty quantity and an unmanaged account's row
    → SkippedRow; the rest of the snapshot is complete."""
    sim = start_sim("bad-rows").sim
    broker, rec = make_broker(sim.port)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        return await broker.snapshot()

    snap = run(scenario())
    assert snap.complete
    by_key = {p.key: p for p in snap.positions}
    skipped = {row.key: row.reason for row in snap.skipped}
    # Regression: an empty quantity must not turn into 0 (an explicit close) nor vanish.
    assert (A, c.BRK_B.con_id) not in by_key
    assert "quantity unset" in skipped[(A, c.BRK_B.con_id)]
    assert ("DU9999999", c.MES.con_id) not in by_key
    assert "not managed" in skipped[("DU9999999", c.MES.con_id)]
    for contract in (c.NVDA, c.AMZN, c.SPY):
        row = by_key[(A, contract.con_id)]
        assert row.market_price is None and row.quantity > 0
    assert by_key[(A, c.AAPL.con_id)].market_price == Decimal("190.5")
    assert len(snap.positions) == len(sim.positions()) - 2


def test_garbage_frames_do_not_break_the_connection(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        for kind in ("unknown", "short", "binary"):
            sim.send_garbage(kind)
        return await broker.snapshot(refresh=True)

    snap = run(scenario())
    assert snap.complete and len(snap.positions) == len(sim.positions())
    assert rec.connected_count() == 1


def test_live_bad_rows_nan_quantity_and_no_con_id(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """Pushed rows with a NaN quantity or conId 0 are skipped (the NaN one keeps its key
    blocked); they never become a zero, and the next snapshot is still complete."""
    from app.sim.model import Contract as SimContract

    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        sim.set_position(A, c.NVDA, Decimal("NaN"), Decimal(100))
        sim.set_position(A, SimContract(0, "NOID"), Decimal(5), Decimal(10))
        sim.set_position(A, c.AMZN, Decimal(2), Decimal(180))  # a good row after them
        await rec.until(lambda: any(e.key == (A, c.AMZN.con_id) for e in rec.events))
        return await broker.snapshot()

    snap = run(scenario())
    assert snap.complete
    skipped = {row.key: row.reason for row in snap.skipped}
    assert "NaN" in skipped[(A, c.NVDA.con_id)]
    assert "no conId" in skipped[None]
    keys = {p.key for p in snap.positions}
    assert (A, c.NVDA.con_id) not in keys and (A, c.AMZN.con_id) in keys
    assert not any(p.contract.con_id == 0 for p in snap.positions)


def test_snapshot_carries_ib_exchange_rates_of_every_account(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """IB's `ExchangeRate` account values reach the snapshot, exact as sent, with the base
    currency TWS names in its `Currency`/`BASE` row; the BASE row itself is no rate.

    Guards: base-currency totals made without IB's rates (or with the `BASE` row read as a
    currency), and a snapshot that waits for or fails over rates (they are best-effort)."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        return await broker.snapshot()

    snap = run(scenario())
    assert snap.complete
    rates = {(r.account, r.currency): r for r in snap.exchange_rates}
    # What the simulator sent for each account's currencies, as TWS's 4-decimal text.
    expected = {
        (account, currency): Decimal(value)
        for account in (A, B)
        for tag, value, currency in sim.call(lambda s, a=account: s.account_values(a))
        if tag == "ExchangeRate" and currency != "BASE"
    }
    assert {k: r.rate for k, r in rates.items()} == expected
    assert (A, "EUR") in rates and (B, "GBP") in rates  # SAP in A, VOD in B
    assert rates[(A, "EUR")].rate == Decimal(f"{sim.call(lambda s: s.fx_to_usd['EUR']):.4f}")
    assert rates[(A, "USD")].rate == 1
    # A's base is USD, B's EUR (the basic scenario): each rate names its own account's base.
    assert {r.account: r.base_currency for r in snap.exchange_rates} == {A: "USD", B: "EUR"}
    assert rates[(B, "EUR")].rate == 1 and rates[(B, "USD")].rate != 1
    assert all(r.at.tzinfo is UTC and r.at <= snap.taken_at for r in snap.exchange_rates)
    assert not any(r.currency == "BASE" for r in snap.exchange_rates)
