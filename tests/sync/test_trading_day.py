"""A scripted trading day through the whole stack, checked after every step (issue 4).

Real ib_insync over loopback to the simulator, a real SQLite file, real migrations. Expected
figures are worked by hand in each step's comment (IB's average-cost method, fees in the average).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from app.db import repository
from app.domain.connection import ConnectionState
from app.domain.values import CloseReason, EventKind, PositionStatus, SyncStatus, SyncTrigger
from app.sim import contracts as c
from app.sim.state import SimState
from app.sync.service import SyncOptions

D = Decimal
CENT = D("0.01")
DU1, DU2 = "DU1000001", "DU2000002"


def day_start() -> SimState:
    state = SimState()
    state.add_account(DU1, "USD")
    state.add_account(DU2, "USD")
    state.set_position(DU1, c.AAPL, D(100), D(150), D(150))
    state.set_position(DU2, c.AAPL, D(50), D(160), D(161))
    return state


async def connected(stack, within: float = 5.0) -> None:
    await stack.broker.start()
    for _ in range(int(within / 0.02)):
        if stack.broker.status.state is ConnectionState.CONNECTED:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never connected: {stack.broker.status}")


def open_row(stack, account: str, con_id: int):
    rows = [
        p
        for p in stack.db.run_sync(repository.positions, include_closed=True)
        if p.key == (account, con_id) and p.status is PositionStatus.OPEN
    ]
    assert len(rows) <= 1, "two OPEN lifecycles for one key"
    return rows[0] if rows else None


def lifecycles(stack, account: str, con_id: int):
    rows = stack.db.run_sync(repository.positions, include_closed=True)
    return sorted((p for p in rows if p.key == (account, con_id)), key=lambda p: p.id)


def kinds(stack, position) -> list[EventKind]:
    return [e.kind for e in stack.db.run_sync(repository.events, position.id)]


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


@pytest.mark.slow
def test_scripted_trading_day(make_stack, run):
    stack = make_stack(None, state=day_start(), options=SyncOptions(enabled=False))
    sim = stack.sim

    async def sync():
        result = await stack.service.sync_positions(SyncTrigger.MANUAL)
        assert result.status is SyncStatus.OK, result.error
        return result

    async def day():
        await connected(stack)

        # Opened in two accounts; the same symbol never mixes (keyed by account, conId).
        result = await sync()
        assert result.opened == 2
        du1 = open_row(stack, DU1, c.AAPL.con_id)
        du2 = open_row(stack, DU2, c.AAPL.con_id)
        assert (du1.quantity, du1.average_price) == (100, 150)
        assert (du2.quantity, du2.average_price) == (50, 160)

        # An add: +50 @ 156, fee 1.00 → IB average (15000 + 7800 + 1) / 150 = 152.00666…
        sim.fill(DU1, c.AAPL, 50, "156", commission=D("1.00"))
        await sync()
        du1 = open_row(stack, DU1, c.AAPL.con_id)
        assert du1.quantity == 150 and abs(du1.average_price - D(22801) / 150) < D("1e-9")
        assert kinds(stack, du1) == [EventKind.OPENED, EventKind.INCREASED]

        # A partial close with commission: −40 @ 160, fee 1.00
        # → (160 − 152.00666…) × 40 − 1 = 318.73
        sim.fill(DU1, c.AAPL, -40, "160", commission=D("1.00"))
        await sync()
        du1 = open_row(stack, DU1, c.AAPL.con_id)
        assert du1.quantity == 110 and money(du1.realized_pnl) == D("318.73")
        reduced = stack.db.run_sync(repository.events, du1.id)[-1]
        assert reduced.kind is EventKind.REDUCED and money(reduced.realized_pnl) == D("318.73")
        assert abs(reduced.broker_realized_pnl - reduced.realized_pnl) <= CENT  # IB's beside ours
        fills = stack.db.run_sync(repository.fills_for, (DU1, c.AAPL.con_id))
        assert [f.commission for f in fills] == [D("1.00"), D("1.00")]

        # A full close in the other account: −50 @ 165, fee 1.00 → 5 × 50 − 1 = 249.00
        sim.fill(DU2, c.AAPL, -50, "165", commission=D("1.00"))
        result = await sync()
        assert result.closed == 1
        (closed,) = lifecycles(stack, DU2, c.AAPL.con_id)
        assert closed.status is PositionStatus.CLOSED and money(closed.realized_pnl) == D("249.00")
        assert closed.close_reason is CloseReason.BROKER and closed.exit_trade_id
        assert open_row(stack, DU1, c.AAPL.con_id).quantity == 110  # untouched by DU2

        # A flip long → short: −200 @ 158, fee 2.00 on 110 long at 152.00666…
        # closing share of the fee 1.10 → (158 − 152.00666…) × 110 − 1.10 = 658.17;
        # lifecycle total 318.73 + 658.17 = 976.90; a new short of 90 opens.
        sim.fill(DU1, c.AAPL, -200, "158", commission=D("2.00"))
        result = await sync()
        assert (result.opened, result.closed) == (1, 1)
        first, second = lifecycles(stack, DU1, c.AAPL.con_id)
        assert first.status is PositionStatus.CLOSED and first.close_reason is CloseReason.FLIP
        assert money(first.realized_pnl) == D("976.90")
        assert second.status is PositionStatus.OPEN and second.quantity == -90
        assert money(second.average_price) == D("157.99")  # proceeds net of the 0.90 fee share

        # A future (multiplier 50): +2 @ 4500.00, −2 @ 4510.25, no fees → 1025.00
        sim.fill(DU1, c.ES, 2, "4500.00", commission=D(0))
        await sync()
        sim.fill(DU1, c.ES, -2, "4510.25", commission=D(0))
        await sync()
        (es,) = lifecycles(stack, DU1, c.ES.con_id)
        assert es.status is PositionStatus.CLOSED and es.realized_pnl == D("1025.00")

        # An option (multiplier 100): +3 @ 4.10, −1 @ 5.00, fees 0 → 90.00, 2 left.
        sim.fill(DU1, c.AAPL_C200, 3, "4.10", commission=D(0))
        sim.fill(DU1, c.AAPL_C200, -1, "5.00", commission=D(0))
        await sync()
        (opt,) = lifecycles(stack, DU1, c.AAPL_C200.con_id)
        assert opt.quantity == 2 and opt.realized_pnl == D("90.00")
        assert kinds(stack, opt) == [EventKind.OPENED, EventKind.REDUCED]

        # A fractional position: +0.1 then +0.2 → exactly 0.3.
        sim.fill(DU2, c.MSFT, "0.1", "400", commission=D(0))
        await sync()
        sim.fill(DU2, c.MSFT, "0.2", "400", commission=D(0))
        await sync()
        msft = open_row(stack, DU2, c.MSFT.con_id)
        assert str(msft.quantity) == "0.3"

        # A 2:1 split (no fills): 10 @ 100 → 20 @ 50, a SPLIT event, no P&L.
        sim.set_position(DU2, c.NVDA, D(10), D(100), D(100))
        await sync()
        sim.split(DU2, c.NVDA.con_id, 2)
        await sync()
        nvda = open_row(stack, DU2, c.NVDA.con_id)
        assert (nvda.quantity, nvda.average_price, nvda.realized_pnl) == (20, 50, 0)
        assert kinds(stack, nvda) == [EventKind.OPENED, EventKind.SPLIT]

        # It vanishes without fills: stays OPEN, gets missing_since, ONE MISSING event.
        sim.remove_position(DU2, c.NVDA.con_id)
        result = await sync()
        assert result.missing == 1
        for _ in range(3):
            assert (await sync()).missing == 0
        nvda = open_row(stack, DU2, c.NVDA.con_id)
        assert nvda.status is PositionStatus.OPEN and nvda.missing_since is not None
        assert kinds(stack, nvda).count(EventKind.MISSING) == 1
        status = stack.db.run_sync(repository.ledger_status, "x", None)
        assert [p.contract.symbol for p in status.missing_at_broker] == ["NVDA"]

        # It comes back (at the same average: a moved one would add an ADJUSTED event after
        # it): REAPPEARED clears the warning.
        sim.set_position(DU2, c.NVDA, D(20), D(50), D(52))
        await sync()
        nvda = open_row(stack, DU2, c.NVDA.con_id)
        assert nvda.missing_since is None and nvda.quantity == 20
        assert kinds(stack, nvda)[-1] is EventKind.REAPPEARED

        # Replaying the whole day's snapshot changes nothing (idempotent).
        before = stack.db.run_sync(repository.positions, include_closed=True)
        again = await sync()
        assert (again.opened, again.updated, again.closed, again.missing) == (0, 0, 0, 0)
        after = stack.db.run_sync(repository.positions, include_closed=True)
        assert [(p.quantity, p.status, p.realized_pnl) for p in after] == [
            (p.quantity, p.status, p.realized_pnl) for p in before
        ]

    run(day(), timeout=60)
