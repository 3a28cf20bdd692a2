"""Failures that must change nothing: each records a failed or skipped run and its reason.

Real ib_insync against the simulator; the ledger is compared before and after.
"""

from __future__ import annotations

import asyncio
import socket

from app.broker import IbBroker
from app.db import repository
from app.domain.connection import ConnectionState
from app.domain.values import SyncStatus, SyncTrigger
from app.sync.service import SyncOptions
from tests.sync.test_trading_day import connected

OFF = SyncOptions(enabled=False)


def ledger(stack):
    return [
        (p.id, p.quantity, p.status, p.realized_pnl, p.missing_since)
        for p in stack.db.run_sync(repository.positions, include_closed=True)
    ]


async def until(predicate, within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def last_run(stack):
    return stack.db.run_sync(repository.sync_runs)[0]


def test_drop_mid_snapshot_changes_nothing(make_stack, run):
    """Guards: a disconnect halfway through the positions read as 'the rest are flat'."""
    stack = make_stack("basic", options=OFF)

    async def scenario():
        await connected(stack)
        assert (await stack.service.sync_positions()).ok
        before = ledger(stack)
        stack.sim.set_faults(drop_after_position_rows=3, drop_once=True)
        result = await stack.service.sync_positions(SyncTrigger.MANUAL)
        assert result.status is SyncStatus.FAILED and result.error
        assert ledger(stack) == before
        run_row = last_run(stack)
        assert run_row.status is SyncStatus.FAILED and run_row.error == result.error
        assert run_row.opened == run_row.closed == run_row.missing == 0

    run(scenario(), timeout=30)


def test_1100_during_sync_changes_nothing_then_resumes(make_stack, run):
    """Guards: TWS losing IB mid-sync (socket still open) being taken as a complete answer."""
    stack = make_stack("basic", options=OFF)

    async def scenario():
        await connected(stack)
        assert (await stack.service.sync_positions()).ok
        before = ledger(stack)
        stack.sim.set_faults(delays={"executions": 0.8})
        pending = asyncio.ensure_future(stack.service.sync_positions())
        await asyncio.sleep(0.3)
        stack.sim.push_error(1100)
        result = await pending
        assert result.status is not SyncStatus.OK and result.error
        assert ledger(stack) == before
        await until(lambda: stack.broker.status.state is ConnectionState.IB_LOST)
        paused = await stack.service.sync_positions()
        assert paused.status is SyncStatus.SKIPPED and ledger(stack) == before
        stack.sim.set_faults(delays={})
        stack.sim.push_error(1102)
        await until(lambda: stack.broker.status.state is ConnectionState.CONNECTED)
        assert (await stack.service.sync_positions()).ok

    run(scenario(), timeout=30)


def test_position_end_never_comes(make_stack, run):
    stack = make_stack("basic", options=OFF)

    async def scenario():
        await connected(stack)
        assert (await stack.service.sync_positions()).ok
        before = ledger(stack)
        stack.sim.set_faults(withhold_end={"positions"})
        result = await stack.service.sync_positions()
        assert result.status is SyncStatus.FAILED and "position" in result.error.lower()
        assert ledger(stack) == before

    run(scenario(), timeout=30)


def test_client_id_in_use(make_stack, run):
    stack = make_stack("basic", options=OFF, client_id=5)

    async def scenario():
        await connected(stack)
        rival = IbBroker("127.0.0.1", stack.sim_thread.port, client_id=5, timeout=2.0)
        try:
            await rival.start()
            await until(lambda: rival.status.state is ConnectionState.CLIENT_ID_IN_USE, 10)
            assert "client" in rival.status.message.lower()
            other = type(stack.service)(rival, stack.service.ledger, OFF)
            result = await other.sync_positions()
            assert result.status is SyncStatus.SKIPPED and "client id" in result.error.lower()
        finally:
            await rival.stop()

    run(scenario(), timeout=30)


def test_tws_not_running(make_stack, run, tmp_path):
    stack = make_stack("basic", options=OFF)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    stack.broker.port = free_port  # nothing listens there

    async def scenario():
        await stack.broker.start()
        await until(lambda: stack.broker.status.state is ConnectionState.DISCONNECTED)
        result = await stack.service.sync_positions()
        assert result.status is SyncStatus.SKIPPED and "not running" in result.error
        assert ledger(stack) == []
        assert last_run(stack).status is SyncStatus.SKIPPED

    run(scenario(), timeout=30)
