"""Issue 16 item 5: a new-conId reverse split through the real ib_insync client into a real ledger.

The simulator plays TWS over loopback with the `new-conid-reverse-split` scenario's state (AMTD's
1-for-3 of November 2023: github.com/ib-edavki/ib-edavki/issues/106); the sync service books
into a real ledger migrated to head (SQLite, and PostgreSQL where available). Figures by hand:
1,000 @ 2.00 → 333 @ 6.00 (the third share paid in cash); a later sale of 333 @ 7.00 with a
1.00 commission realizes (7 − 6) × 333 − 1 = 332 against the carried basis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from app.db import repository
from app.domain.values import CloseReason, EventKind, PnlBasis, PositionStatus, SyncTrigger
from app.sim import contracts as c
from app.sim.model import Contract
from app.sim.scenarios import CONVERSION_ACCOUNT, build_conversion, convert_amtd
from app.sim.state import SimState
from app.sync.service import SyncOptions
from tests.sync.conftest import Stack
from tests.sync.test_trading_day import connected

D = Decimal
ACCOUNT = CONVERSION_ACCOUNT
OLD = (ACCOUNT, c.AMTD_OLD.con_id)
NEW = (ACCOUNT, c.AMTD.con_id)


@pytest.fixture
def make(ledger_url: str, start_sim: Any, loop: Any) -> Iterator[Callable[[SimState], Stack]]:
    """make(state) → a Stack on that simulator state; syncs only when asked."""
    stacks: list[Stack] = []

    def build(state: SimState) -> Stack:
        stack = Stack(start_sim(None, state=state), ledger_url, SyncOptions(enabled=False))
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        loop.run_until_complete(stack.service.stop())
        stack.db.close()
        stack.assert_no_order_messages()


async def sync(stack: Stack) -> Any:
    result = await stack.service.sync_positions(SyncTrigger.MANUAL)
    assert result.ok, result
    return result


def lifecycles(stack: Stack, key: tuple[str, int]) -> list[Any]:
    return sorted(stack.db.run_sync(repository.lifecycles_for, [key]), key=lambda p: p.id)


def events(stack: Stack, life: Any) -> list[Any]:
    return list(stack.db.run_sync(repository.events, life.id))


def latest_run(stack: Stack) -> Any:
    return stack.db.run_sync(repository.sync_runs, 1)[0]


def test_new_conid_reverse_split_is_one_conversion_carrying_the_basis(make, run):
    """The scenario: the old conId vanishes, the new one appears with 333 @ 6.00, no fills.
    Guards against the old booking: the old key MISSING (or closed at market with a fake P&L)
    and a new opening that lost the cost basis and the holding period."""
    stack = make(build_conversion())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        (held,) = lifecycles(stack, OLD)
        convert_amtd(stack.sim)
        await sync(stack)

        (old,) = lifecycles(stack, OLD)
        assert old.status is PositionStatus.CLOSED
        assert old.close_reason is CloseReason.CONVERTED
        assert old.realized_pnl == 0 and old.missing_since is None
        (closing,) = [e for e in events(stack, old) if e.kind is EventKind.CONVERTED]
        assert closing.realized_pnl == 0 and closing.pnl_basis is PnlBasis.ESTIMATED
        (new,) = lifecycles(stack, NEW)
        assert new.status is PositionStatus.OPEN
        assert (new.quantity, new.average_price) == (333, 6)
        assert new.opened_at == held.opened_at  # the holding period goes on
        (opening,) = events(stack, new)
        assert opening.kind is EventKind.CONVERTED and opening.realized_pnl is None
        assert "1 for 3" in opening.note and "paid in cash" in opening.note
        run_row = latest_run(stack)
        assert (run_row.opened, run_row.closed, run_row.missing) == (0, 0, 0)

        await sync(stack)  # idempotent: nothing new
        assert len(events(stack, lifecycles(stack, NEW)[0])) == 1

        stack.sim.fill(ACCOUNT, c.AMTD, -333, "7", commission=D("1"))
        await sync(stack)
        (sold,) = lifecycles(stack, NEW)
        assert sold.status is PositionStatus.CLOSED and sold.close_reason is CloseReason.BROKER
        assert sold.realized_pnl == D(332)  # (7 − 6) × 333 − 1: the carried basis
        assert sold.pnl_basis is PnlBasis.ESTIMATED  # until a statement confirms the conversion

    run(scenario(), timeout=30)


def test_two_new_conids_of_the_symbol_are_not_converted(make, run):
    """Ambiguous: two candidates appear. The old key stays MISSING and both open as they are:
    never a guess booked as a fact."""
    other = Contract(665145399, "AMTD", "STK", "USD", "NYSE", "NYSE", "AMTD", "AMTD")
    stack = make(build_conversion())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        convert_amtd(stack.sim)
        stack.sim.set_position(ACCOUNT, other, D(333), D(6), D("6.3"))
        await sync(stack)

        (old,) = lifecycles(stack, OLD)
        assert old.status is PositionStatus.OPEN and old.missing_since is not None
        (new,) = lifecycles(stack, NEW)
        assert [e.kind for e in events(stack, new)] == [EventKind.OPENED]
        run_row = latest_run(stack)
        assert (run_row.opened, run_row.missing) == (2, 1)

    run(scenario(), timeout=30)


def test_numbers_off_the_ratio_are_not_converted(make, run):
    """The new conId holds 300 (not 1,000 ÷ 3): the old key MISSING, the new one opened."""
    stack = make(build_conversion())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        stack.sim.remove_position(ACCOUNT, c.AMTD_OLD.con_id)
        stack.sim.set_position(ACCOUNT, c.AMTD, D(300), D(6), D("6.3"))
        await sync(stack)

        (old,) = lifecycles(stack, OLD)
        assert old.is_open and old.missing_since is not None
        assert old.realized_pnl == 0
        (new,) = lifecycles(stack, NEW)
        assert [e.kind for e in events(stack, new)] == [EventKind.OPENED]

    run(scenario(), timeout=30)
