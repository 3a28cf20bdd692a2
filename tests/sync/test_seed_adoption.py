"""Seed ledgers: OPEN rows of the seed's schema (no conId) adopted by the first complete sync.

A real ledger created at revision 0001 with rows written as the seed app wrote them, upgraded to
head by opening it, then synced through real ib_insync from the simulator (tests run on SQLite
and PostgreSQL). Worked numbers in the comments.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import pytest

from app.db import adopt, repository
from app.db.repository.rows import A
from app.domain.connection import ConnectionState
from app.domain.values import EventKind, PositionStatus, SyncStatus, SyncTrigger
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.sim.state import SimState
from app.sync.service import SyncOptions
from tests.db.conftest import build_at, execute
from tests.sync.conftest import Stack

pytestmark = pytest.mark.timeout(60)

D = Decimal
DU = "DU5550001"

# id, account_id, symbol, quantity, average_price, status, opened_at (the seed's own columns)
SEED = [
    (1, 1, "MSFT", 3, 300.0, "OPEN", "2024-12-01 14:30:00"),
    (2, 1, "AAPL", 100, 150.25, "OPEN", "2024-12-02 15:00:00"),  # stock and option at IB
    (3, 1, "TSLA", -20, 250.0, "CLOSED", "2024-11-01 10:00:00"),
]


def seed_ledger(url: str, accounts: tuple[int, ...] = (1,), rows: list[Any] = SEED) -> None:
    """The seed's schema (0001) with its rows; 0002's realized_pnl set as the seed plan did."""
    build_at(url, "0001")
    statements = [f"INSERT INTO accounts (id) VALUES {', '.join(f'({a})' for a in accounts)}"]
    for pid, account, symbol, qty, avg, status, opened in rows:
        statements.append(
            "INSERT INTO positions (id, account_id, symbol, quantity, average_price, status, "
            f"opened_at) VALUES ({pid}, {account}, '{symbol}', {qty}, {avg}, '{status}', "
            f"'{opened}')"
        )
    if "://" in url:  # the seed's ORM took ids from the sequences: keep them ahead
        statements += [
            f"SELECT setval(pg_get_serial_sequence('accounts', 'id'), {max(accounts)})",
            f"SELECT setval(pg_get_serial_sequence('positions', 'id'), {len(rows)})",
        ]
    execute(url, *statements)
    build_at(url, "0002")
    execute(url, "UPDATE positions SET realized_pnl = 12.5 WHERE id = 1")


def one_account() -> SimState:
    state = SimState()
    state.add_account(DU, "USD")
    state.set_position(DU, c.MSFT, D(3), D(300), D("415.2"))
    state.set_position(DU, c.AAPL, D(100), D("150.25"), D("190.5"))
    state.set_position(DU, c.AAPL_C200, D(2), D("350.65"), D("4.1"))
    return state


async def connected(stack: Stack) -> None:
    await stack.broker.start()
    for _ in range(250):
        if stack.broker.status.state is ConnectionState.CONNECTED:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never connected: {stack.broker.status}")


async def sync(stack: Stack) -> Any:
    result = await stack.service.sync_positions(SyncTrigger.MANUAL)
    assert result.status is SyncStatus.OK, result.error
    return result


def everything(stack: Stack) -> list[Any]:
    return sorted(stack.db.run_sync(repository.positions, include_closed=True), key=lambda p: p.id)


@pytest.fixture
def stacks(loop: Any, start_sim: Any) -> Any:
    made: list[Stack] = []

    def make(url: str, state: SimState) -> Stack:
        sim: SimulatorThread = start_sim(None, state=state)
        stack = Stack(sim, url, SyncOptions(enabled=False))
        made.append(stack)
        return stack

    yield make
    for stack in made:
        loop.run_until_complete(stack.service.stop())
        stack.db.close()
        stack.assert_no_order_messages()


@pytest.fixture(autouse=True)
def _fresh_reports() -> None:
    adopt._reported.clear()  # "logged once" is per process; each test starts unlogged


def test_first_sync_adopts_the_seed_row_instead_of_opening_a_second(
    ledger_url: str, stacks: Any, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards against a seed row staying OPEN and unmatched forever while the first sync opens
    a second OPEN lifecycle of the same position beside it (two MSFT rows, P&L split)."""
    seed_ledger(ledger_url)
    stack = stacks(ledger_url, one_account())
    caplog.set_level(logging.WARNING, logger="app.db.adopt")

    async def scenario() -> None:
        await connected(stack)
        first = await sync(stack)
        # MSFT adopted (nothing opened for it); AAPL stock and option both opened anew.
        assert first.opened == 2
        second = await sync(stack)
        assert second.opened == 0 and second.closed == 0
        # A sale of 1 @ 420 on the adopted lifecycle, fee 1.00 (the simulator's minimum):
        # (420 − 300) × 1 − 1 = 119; lifecycle total 12.5 (the seed's) + 119 = 131.5.
        stack.sim.state.fill(DU, c.MSFT, D(-1), D(420))
        await sync(stack)

    run(scenario(), timeout=40)
    rows = everything(stack)
    msft = [p for p in rows if p.contract.symbol == "MSFT"]
    assert len(msft) == 1, "a second MSFT lifecycle was opened beside the seed row"
    (life,) = msft
    assert life.id == 1 and life.status is PositionStatus.OPEN
    assert life.key == (DU, c.MSFT.con_id)  # moved from legacy-1 into the snapshot's account
    assert (life.contract.sec_type, life.contract.currency) == ("STK", "USD")
    assert life.contract.local_symbol == "MSFT" and life.contract.multiplier == 1
    assert life.quantity == 2 and life.average_price == 300
    assert life.realized_pnl == D("131.5")
    events = stack.db.run_sync(repository.events, life.id)
    assert [e.kind for e in events] == [EventKind.REDUCED]  # no OPENED: it was the seed's
    assert events[0].realized_pnl == 119

    # AAPL is both a stock and an option at IB: the seed row stays as it was, unmatched.
    (seed_aapl,) = [p for p in rows if p.id == 2]
    assert seed_aapl.contract.con_id == 0 and seed_aapl.account == "legacy-1"
    assert seed_aapl.quantity == 100 and seed_aapl.status is PositionStatus.OPEN
    opened = {p.key for p in rows if p.contract.symbol == "AAPL" and p.id != 2}
    assert opened == {(DU, c.AAPL.con_id), (DU, c.AAPL_C200.con_id)}
    # The closed seed row is history: untouched.
    (tsla,) = [p for p in rows if p.id == 3]
    assert tsla.status is PositionStatus.CLOSED and tsla.contract.con_id == 0

    messages = [r.getMessage() for r in caplog.records]
    assert sum("adopted seed position 1 (MSFT, from legacy-1)" in m for m in messages) == 1
    assert sum("seed position 2 (AAPL" in m and "unmatched" in m for m in messages) == 1
    assert not any(DU in m for m in messages)  # account numbers masked


def test_placeholder_accounts_are_never_guessed_between(
    ledger_url: str, stacks: Any, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Two IB accounts synced, two placeholder accounts: no seed row is adopted by a guess; a
    row whose account code is a real one is adopted in that account only."""
    rows = [
        (1, 1, "MSFT", 3, 300.0, "OPEN", "2024-12-01 14:30:00"),
        (2, 7, "VOD", 1000, 0.75, "OPEN", "2024-12-01 14:30:00"),
        (3, 9, "TSLA", -60, 250.0, "OPEN", "2024-12-01 14:30:00"),
    ]
    seed_ledger(ledger_url, accounts=(1, 7, 9), rows=rows)
    from app.sim.scenarios import get_scenario

    state = get_scenario("basic").build()  # DU1111111 (MSFT, TSLA, …) and DU2222222 (VOD, …)
    stack = stacks(ledger_url, state)
    # Account 9's code is known (as if it had been named after the upgrade).
    stack.db.run_sync(lambda s: s.execute(A.update().where(A.c.id == 9).values(code="DU1111111")))
    caplog.set_level(logging.WARNING, logger="app.db.adopt")

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        await sync(stack)

    run(scenario(), timeout=40)
    rows_after = {p.id: p for p in everything(stack)}
    assert rows_after[1].contract.con_id == 0 and rows_after[1].account == "legacy-1"
    assert rows_after[2].contract.con_id == 0 and rows_after[2].account == "legacy-7"
    tsla = [p for p in rows_after.values() if p.contract.symbol == "TSLA"]
    assert [(p.id, p.key) for p in tsla] == [(3, ("DU1111111", c.TSLA.con_id))]
    assert tsla[0].quantity == -50  # the cover fill of 10 booked on the adopted row
    msft_open = [p for p in rows_after.values() if p.key == ("DU1111111", c.MSFT.con_id)]
    assert len(msft_open) == 1 and msft_open[0].id != 1  # opened anew: legacy-1 not guessed
    unmatched = [r.getMessage() for r in caplog.records if "placeholder" in r.getMessage()]
    assert len(unmatched) == 2  # rows 1 and 2, once each over two syncs
