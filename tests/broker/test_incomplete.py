"""Anything less than complete raises IncompleteSnapshotError naming why (DESIGN rule 1)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from app.domain.connection import (
    BrokerUnavailableError,
    ConnectionState,
    IncompleteSnapshotError,
)
from app.sim.requests import In
from app.sim.runner import SimulatorThread

pytestmark = pytest.mark.timeout(30)


async def until_requests(sim: Any, msg_id: int, count: int, rec: Any) -> None:
    """Wait until the simulator has received `count` requests of `msg_id`."""
    await rec.until(lambda: sim.received_ids().count(msg_id) >= count)


def test_drop_mid_positions_is_incomplete_then_reconnects(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)

    async def scenario() -> str:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        assert (await broker.snapshot()).complete  # uses the connect's answer: a refresh asks again
        sim.set_faults(drop_after_position_rows=3)  # once: the next positions answer
        with pytest.raises(IncompleteSnapshotError) as info:
            await broker.snapshot(refresh=True)
        await rec.until(lambda: rec.connected_count() == 2)  # reconnected by itself
        assert (await broker.snapshot()).complete
        return info.value.reason

    reason = run(scenario())
    assert "dropped" in reason and "positions" in reason
    states = rec.states()
    assert ConnectionState.DISCONNECTED in states[states.index(ConnectionState.CONNECTED) :]


def test_drop_while_waiting_for_executions_is_incomplete(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port, timeout=5.0)

    async def scenario() -> str:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        sim.set_faults(withhold_end={"executions"})
        task = asyncio.ensure_future(broker.snapshot())
        await until_requests(sim, In.REQ_EXECUTIONS, 1, rec)  # the snapshot's request is out
        sim.drop_connections()
        with pytest.raises(IncompleteSnapshotError) as info:
            await task
        return info.value.reason

    reason = run(scenario(), timeout=4.0)  # well before the 5 s request timeout
    assert "dropped" in reason and "executions" in reason


def test_1100_during_snapshot_then_1102_resumes(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """1100 mid-snapshot → incomplete; IB_LOST refuses snapshots; 1102 → CONNECTED (resync)."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port, timeout=5.0)

    async def scenario() -> str:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        sim.set_faults(withhold_end={"executions"})
        task = asyncio.ensure_future(broker.snapshot())
        await until_requests(sim, In.REQ_EXECUTIONS, 1, rec)
        sim.push_error(1100)
        with pytest.raises(IncompleteSnapshotError) as info:
            await task
        await rec.until_state(ConnectionState.IB_LOST)
        with pytest.raises(BrokerUnavailableError):
            await broker.snapshot()
        sim.set_faults(withhold_end=set())
        sim.push_error(1102)
        await rec.until(lambda: rec.connected_count() == 2)
        snap = await broker.snapshot()
        assert snap.complete
        return info.value.reason

    positions_before = sim.received_ids().count(In.REQ_POSITIONS)
    reason = run(scenario(), timeout=4.0)
    assert "1100" in reason
    assert rec.states()[-2:] == [ConnectionState.IB_LOST, ConnectionState.CONNECTED]
    # After the restore nothing held before counts: positions were requested again.
    assert sim.received_ids().count(In.REQ_POSITIONS) >= positions_before + 2
    # ib_insync's own 1102 handler (an untracked reqAccountSummary task) is switched off.
    assert In.REQ_ACCOUNT_SUMMARY not in sim.received_ids()


def test_position_end_never_comes(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    sim = start_sim("no-position-end").sim
    broker, rec = make_broker(sim.port, timeout=0.4)

    async def scenario() -> str:
        await broker.start()
        # ib_insync logs the connect's positions timeout and connects all the same.
        await rec.until_state(ConnectionState.CONNECTED)
        with pytest.raises(IncompleteSnapshotError) as info:
            await broker.snapshot()
        return info.value.reason

    reason = run(scenario())
    assert "positions" in reason and "0.4 s" in reason


def test_account_download_end_never_comes_leaves_prices_stale(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """Issue 16 item 1: quantities never wait for prices. Without accountDownloadEnd the
    snapshot is complete (positions ended, connection held) and names the stale accounts."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port, timeout=0.4)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        sim.set_faults(withhold_end={"account_updates"})
        return await broker.snapshot(refresh=True)

    snap = run(scenario())
    assert snap.complete and snap.fills_unavailable is None
    assert [a for a, _ in snap.stale_prices] == ["DU1111111", "DU2222222"]
    assert all("0.4 s" in why for _, why in snap.stale_prices)
    held = {(p.account, p.contract.con_id): p.quantity for p in snap.positions}
    assert held == {(h[0], h[1]): h[2] for h in sim.positions()}


def test_exec_details_end_never_comes_positions_still_sync(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """Issue 16 item 2 (TWS 10.30's missing execDetailsEnd, ib-api-reloaded/ib_async#54):
    ib_insync's own connect would time out on it and never connect; ours connects, and the
    snapshot is complete without fills, saying why."""
    sim = start_sim("tws-10.30-executions").sim
    broker, rec = make_broker(sim.port, timeout=0.3)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        return await broker.snapshot()

    snap = run(scenario())
    assert rec.connected_count() == 1 and ConnectionState.DISCONNECTED not in rec.states()
    assert snap.complete and snap.fills == ()
    assert snap.fills_unavailable is not None and "executions" in snap.fills_unavailable
    held = {(p.account, p.contract.con_id): p.quantity for p in snap.positions}
    assert held == {(h[0], h[1]): h[2] for h in sim.positions()}


def test_2110_without_1100_during_snapshot_then_farms_ok_resumes(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """Issue 16 item 7: 2110 (TWS <-> IB servers broken; a warning code ib_insync only logs)
    mid-snapshot → incomplete and paused like 1100; the farms' OK notices → CONNECTED."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port, timeout=5.0)

    async def scenario() -> str:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        sim.set_faults(delays={"executions": 0.8})
        task = asyncio.ensure_future(broker.snapshot())
        await until_requests(sim, In.REQ_EXECUTIONS, 1, rec)
        sim.break_server_link()
        with pytest.raises(IncompleteSnapshotError) as info:
            await task
        await rec.until_state(ConnectionState.IB_LOST)
        assert "2110" in broker.status.message
        with pytest.raises(BrokerUnavailableError, match="2110"):
            await broker.snapshot()
        sim.set_faults(delays={})
        sim.restore_server_link()
        await rec.until(lambda: rec.connected_count() == 2)
        assert (await broker.snapshot()).complete
        return info.value.reason

    reason = run(scenario(), timeout=6.0)
    assert "2110" in reason


def test_refused_account_fails_at_once_not_after_the_timeout(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """Issue 16 item 1: 2101 carries reqId -1 and no download end follows; the wait for that
    account ends on the warning itself, not after `timeout`."""
    sim = start_sim("account-updates-held").sim
    broker, rec = make_broker(sim.port, timeout=5.0)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        return await broker.snapshot()

    snap = run(scenario(), timeout=3.0)  # well before one 5 s request timeout
    assert snap.complete
    assert [a for a, _ in snap.stale_prices] == ["DU2222222"]
    assert "2101" in snap.stale_prices[0][1]
    prices = {p.account: p.market_price is not None for p in snap.positions}
    assert prices == {"DU1111111": True, "DU2222222": False}


def test_executions_rows_without_end_are_used_and_flagged(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """The milder variant: the rows come, the end does not. The rows are facts (used), and
    the snapshot still says the answer was incomplete."""
    sim = start_sim("no-exec-end").sim
    broker, rec = make_broker(sim.port, timeout=0.3)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        return await broker.snapshot()

    snap = run(scenario())
    assert snap.complete and snap.fills_unavailable is not None
    assert sorted(f.exec_id for f in snap.fills) == sorted(e.exec_id for e in sim.executions())


def test_after_one_unended_executions_answer_later_snapshots_do_not_wait_the_timeout(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """Under the TWS 10.30 bug every reqExecutions stays unanswered: only the first snapshot of
    a connection waits `timeout` for it; later ones wait EXECUTIONS_GRACE, so a fill's sync is
    not held 10 s each time, and the fill itself (pushed live) is in the snapshot."""
    from decimal import Decimal

    from app.broker.session import EXECUTIONS_GRACE
    from app.sim import contracts as c

    sim = start_sim("tws-10.30-executions").sim
    broker, rec = make_broker(sim.port, timeout=2.0)

    async def scenario() -> tuple[float, float, Any]:
        loop = asyncio.get_running_loop()
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        start = loop.time()
        assert (await broker.snapshot()).fills_unavailable
        first = loop.time() - start
        sim.fill("DU1111111", c.SAP, Decimal(-5), Decimal("195"), commission=Decimal("1"))
        await rec.until(lambda: any(e.key == ("DU1111111", c.SAP.con_id) for e in rec.events))
        start = loop.time()
        snap = await broker.snapshot()
        return first, loop.time() - start, snap

    first, later, snap = run(scenario(), timeout=10)
    assert first >= 2.0 and later < EXECUTIONS_GRACE + 0.4
    assert snap.fills_unavailable and "0.5 s" in snap.fills_unavailable
    assert [f.contract.symbol for f in snap.fills] == ["SAP"]  # the live push, exact
    sim.set_faults(silent_executions=False)
    assert run(broker.snapshot()).fills_unavailable is None  # TWS answers again
