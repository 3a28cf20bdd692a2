"""Live pushes → BrokerEvent callbacks with the right keys; solicited answers stay quiet."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from app.domain.connection import BrokerEvent, BrokerEventKind, ConnectionState
from app.sim import contracts as c
from app.sim.runner import SimulatorThread

pytestmark = pytest.mark.timeout(30)

A, B = "DU1111111", "DU2222222"
SINGLE = "DU5550001"
POSITION, EXECUTION = BrokerEventKind.POSITION, BrokerEventKind.EXECUTION
MARKET = BrokerEventKind.MARKET


def test_fill_pushes_execution_and_position_events(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)
    key = (A, c.AAPL.con_id)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        assert rec.events == []  # the connect's own answers are not "live"
        execution = sim.fill(A, c.AAPL, Decimal(5), Decimal("191.25"))
        wanted = [BrokerEvent(EXECUTION, key), BrokerEvent(POSITION, key)]
        await rec.until(lambda: all(e in rec.events for e in wanted))
        # Both the execution (11) and its commission report (59) are announced.
        await rec.until(lambda: rec.events.count(BrokerEvent(EXECUTION, key)) == 2)
        snap = await broker.snapshot(frozenset({key}))
        return execution, snap

    execution, snap = run(scenario())
    assert {e.key for e in rec.events} == {key}
    assert snap.complete and [p.quantity for p in snap.positions] == [Decimal(105)]
    fill = next(f for f in snap.fills if f.exec_id == execution.exec_id)
    assert fill.price == Decimal("191.25") and fill.commission == execution.commission


def test_price_and_quantity_pushes_name_their_keys(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """One account: ib_insync's own subscription delivers portfolio (7) pushes."""
    sim = start_sim("single").sim
    broker, rec = make_broker(sim.port)
    msft, es = (SINGLE, c.MSFT.con_id), (SINGLE, c.ES.con_id)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        sim.set_price(c.MSFT.con_id, Decimal("420.5"))
        # A price tick is market data only: it must not look like a position change.
        await rec.until(lambda: BrokerEvent(MARKET, msft) in rec.events)
        assert BrokerEvent(POSITION, msft) not in rec.events
        sim.adjust_quantity(SINGLE, c.ES.con_id, Decimal(-3))
        await rec.until(lambda: BrokerEvent(POSITION, es) in rec.events)
        return await broker.snapshot()

    snap = run(scenario())
    by_key = {p.key: p for p in snap.positions}
    assert by_key[msft].market_price == Decimal("420.5")
    assert by_key[es].quantity == -3
    assert {e.kind for e in rec.events} == {POSITION, MARKET}


def test_solicited_rows_raise_no_events(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """Regression guard: a snapshot's own answers must not trigger syncs (an endless loop)."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)

    async def scenario() -> None:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        for _ in range(2):
            assert (await broker.snapshot(refresh=True)).complete

    run(scenario())
    assert rec.events == []


def test_position_closed_by_fill_stays_an_explicit_zero(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """A close pushed live is reported as quantity 0 (a broker close, DESIGN rule 3), not as an
    absent row (rule 2 would only warn) — even after a fresh positions request."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)
    key = (B, c.VOD.con_id)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        sim.fill(B, c.VOD, Decimal(-1000), Decimal("0.8"))
        await rec.until(lambda: BrokerEvent(POSITION, key) in rec.events)
        return await broker.snapshot(), await broker.snapshot(refresh=True)

    for snap in run(scenario()):
        row = next(p for p in snap.positions if p.key == key)
        assert row.quantity == 0


def test_account_limit_filters_events(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """With `account` set, pushes for the other managed account trigger nothing."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port, account=A)
    ours, theirs = (A, c.SAP.con_id), (B, c.VOD.con_id)

    async def scenario() -> None:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        sim.adjust_quantity(B, c.VOD.con_id, Decimal(900))
        sim.adjust_quantity(A, c.SAP.con_id, Decimal(25))
        await rec.until(lambda: BrokerEvent(POSITION, ours) in rec.events)

    run(scenario())
    assert theirs not in {e.key for e in rec.events}
