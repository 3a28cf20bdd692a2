"""Regression tests for app bugs the fault-injection suite found (one per bug)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.db import repository
from app.db.migrate import open_database
from app.domain.values import EventKind, PriceSource
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.sim.state import SimState
from app.sync.service import SyncOptions
from tests.sync.test_trading_day import connected

D = Decimal


def test_closing_fill_while_the_price_is_infinite_does_not_crash_the_simulator() -> None:
    """Guards: decimal.InvalidOperation (0 × Infinity) in SimState.valuation when a fill closed
    a holding whose last price tick was ±Infinity, failing the simulator's fill() call."""
    state = SimState()
    state.add_account("DU0000001")
    state.set_position("DU0000001", c.AAPL, D(10), D(150), D(150))
    state.set_price(c.AAPL.con_id, D("Infinity"))
    _, holding = state.fill("DU0000001", c.AAPL, D(-10), D(151))
    assert holding.quantity == 0
    assert state.valuation(holding) == (D("Infinity"), D(0), D(0))
    state.set_price(c.AAPL.con_id, D("NaN"))
    price, value, unrealized = state.valuation(holding)
    assert price is not None and price.is_nan() and (value, unrealized) == (D(0), D(0))


def test_a_restart_during_a_restart_comes_back_once(
    start_sim: Callable[..., SimulatorThread], caplog: pytest.LogCaptureFixture
) -> None:
    """Guards: "address already in use" — a second restart() while the simulator was down
    left the first one's relisten scheduled, so two listeners raced for the port and one
    failed (logged as a failed simulator task)."""
    thread = start_sim("basic")
    sim = thread.sim
    sim.restart(down_for=0.05)
    sim.restart(down_for=0.1)
    time.sleep(0.02)
    assert not sim.is_listening()
    for _ in range(200):
        if sim.is_listening():
            break
        time.sleep(0.01)
    time.sleep(0.2)  # long enough for a stale relisten to have fired
    assert sim.is_listening()
    assert not [r for r in caplog.records if "relisten" in r.getMessage()]
    with socket.create_connection(("127.0.0.1", thread.port), timeout=2):
        pass


def test_a_fill_right_after_the_executions_answer_is_not_booked_as_a_residual(
    make_stack: Callable[..., Any], run: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards: a snapshot pairing executions from one moment with positions from a later one.

    A fill landing just after TWS answered reqExecutions reached the live position book before
    the snapshot was assembled, but not its fills: reconcile then booked the new quantity as an
    unexplained change ("no fills seen", priced from IB's average or the market), and the next
    sync booked the fill on top and reversed it as another residual — spurious events and
    wrong realized P&L (found by the soak)."""
    from app.sim.session import ClientSession

    pending: list[tuple[str, Any, int, str]] = []
    original = ClientSession._req_executions

    def answer_then_fill(self: ClientSession, fields: list[str]) -> None:
        original(self, fields)
        while pending:  # the fill's pushes follow the answer in the same write
            account, contract, shares, price = pending.pop()
            self.server.fill(account, contract, shares, price, commission=D(1))

    monkeypatch.setattr(ClientSession, "_req_executions", answer_then_fill)
    state = SimState()
    state.add_account("DU5100001")
    state.set_position("DU5100001", c.AAPL, D(100), D(150), D(150))
    stack = make_stack(None, state=state, options=SyncOptions(enabled=False))

    async def scenario() -> None:
        await connected(stack)
        assert (await stack.service.sync_positions()).ok
        pending.append(("DU5100001", c.AAPL, -40, "160"))
        assert (await stack.service.sync_positions()).ok
        assert (await stack.service.sync_positions()).ok

    run(scenario(), timeout=30)
    (life,) = stack.db.run_sync(repository.positions)
    assert life.quantity == 60
    events = stack.db.run_sync(repository.events, life.id)
    assert [e.kind for e in events] == [EventKind.OPENED, EventKind.REDUCED]
    assert events[1].price_source is PriceSource.FILLS
    assert life.realized_pnl == (D(160) - D(150)) * 40 - 1


def test_a_crash_while_backing_up_leaves_no_file_that_looks_like_a_backup(tmp_path: Path) -> None:
    """Guards: SIGKILL during the backup before a migration left an empty or truncated
    `ledger.sqlite.bak-0001-…` (plus its -journal) beside the ledger — a "backup" that restores
    to nothing. The copy is now written under a hidden `.…partial` name and renamed when done."""
    from tests.faults.test_crash import old_ledger, revision, seed_rows

    db = tmp_path / "ledger.sqlite"
    old_ledger(db, 100_000)  # ~8 MB: the backup takes long enough to be caught midway
    original = seed_rows(db)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "db", "upgrade", "--db", str(db)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not [p for p in tmp_path.iterdir() if ".bak-" in p.name]:
            assert proc.poll() is None and time.monotonic() < deadline, "no backup started"
            time.sleep(0.0005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert revision(db) == "0001" and seed_rows(db) == original
    for backup in tmp_path.glob("ledger.sqlite.bak-*"):
        assert not backup.name.endswith("-journal"), backup.name
        assert backup.stat().st_size > 0, backup.name
        assert revision(backup) == "0001" and seed_rows(backup) == original, backup.name


def test_a_second_instance_never_applies_an_older_snapshot_over_a_newer_one(
    make_stack: Callable[..., Any], run: Callable[..., Any]
) -> None:
    """Guards: two instances on one SQLite ledger (the window and `sync --watch`), where one
    took its snapshot before a fill and committed it after the other had committed the fill:
    the older snapshot moved the position back ("quantity changed with no fills seen", priced at
    market) and the next sync moved it forward again — spurious events and wrong realized P&L,
    and a false close or reopen when the fill closed the position. The older snapshot is now
    superseded on SQLite too, as on PostgreSQL."""
    from app.db.store import LedgerStore
    from app.domain.plan import ReconcileOptions
    from app.domain.values import SyncTrigger

    state = SimState()
    state.add_account("DU5200002")
    state.set_position("DU5200002", c.AAPL, D(100), D(150), D(150))
    first = make_stack(None, state=state, options=SyncOptions(enabled=False))
    second_db = open_database(first.db.path)  # a second instance on the same file
    second = LedgerStore(second_db)

    async def scenario() -> None:
        await connected(first)
        assert (await first.service.sync_positions()).ok
        started = datetime.now(UTC)
        older = await first.broker.snapshot(refresh=True)  # instance 2's snapshot: before the fill
        first.sim.fill("DU5200002", c.AAPL, -100, "160", commission=D(1))  # closes AAPL
        assert (await first.service.sync_positions()).ok  # instance 1 commits the fill
        plan, _ = await second.commit_snapshot(
            older, ReconcileOptions(), SyncTrigger.PERIODIC, started
        )
        assert plan.superseded and not plan.changes
        assert (await first.service.sync_positions()).ok

    try:
        run(scenario(), timeout=30)
    finally:
        second_db.close()
    (life,) = first.db.run_sync(repository.positions, include_closed=True)
    assert life.status.value == "CLOSED" and life.realized_pnl == (D(160) - D(150)) * 100 - 1
    kinds = [e.kind for e in first.db.run_sync(repository.events, life.id)]
    assert kinds == [EventKind.OPENED, EventKind.CLOSED]
