"""A sync stack on a real ledger, talking to the simulator through real ib_insync.

Every test using `make_stack` runs twice: on a SQLite file and on a fresh PostgreSQL database
(tests.engines).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.broker import IbBroker
from app.db import repository
from app.db.migrate import open_database
from app.db.store import LedgerStore
from app.domain.plan import ReconcileOptions
from app.domain.values import SyncTrigger
from app.sim.runner import SimulatorThread
from app.sim.state import SimState
from app.sync.service import PositionSyncService, SyncOptions
from tests.conftest import ORDER_MESSAGE_IDS


class Stack:
    """Simulator + broker + ledger + service, wired as the app wires them."""

    def __init__(self, sim: SimulatorThread, db_url: Any, options: SyncOptions, **broker: Any):
        self.sim_thread = sim
        self.sim = sim.sim
        self.db = open_database(db_url)
        self.broker = IbBroker(
            "127.0.0.1", sim.port, client_id=broker.pop("client_id", 7), timeout=3.0, **broker
        )
        self.service = PositionSyncService(self.broker, LedgerStore(self.db), options)
        self.results: list[Any] = []
        self.service.on_result(self.results.append)

    def assert_no_order_messages(self) -> None:
        sent = set(self.sim.received_ids())
        assert not sent & ORDER_MESSAGE_IDS, f"order messages reached TWS: {sent}"


def _stop(stacks: list[Stack], loop: Any) -> None:
    """A fixture's stacks stopped and closed; none may have sent an order message."""
    for stack in stacks:
        loop.run_until_complete(stack.service.stop())
        stack.db.close()
        stack.assert_no_order_messages()


@pytest.fixture
def make_stack(
    ledger_urls: Callable[[], str], loop: Any, start_sim: Callable[..., SimulatorThread]
) -> Iterator[Callable[..., Stack]]:
    """make_stack(scenario_or_state, options=SyncOptions(...)) → a Stack (stopped afterwards)."""
    stacks: list[Stack] = []

    def make(
        scenario: Any = None, *, state: Any = None, options: SyncOptions | None = None, **kw: Any
    ) -> Stack:
        sim = start_sim(scenario, state=state) if state is not None else start_sim(scenario)
        stack = Stack(sim, ledger_urls(), options or SyncOptions(), **kw)
        stacks.append(stack)
        return stack

    yield make
    _stop(stacks, loop)


@pytest.fixture
def make(ledger_url: str, start_sim: Any, loop: Any) -> Iterator[Callable[..., Stack]]:
    """make(state, reconcile=None) → a Stack on that simulator state and one ledger; it syncs
    only when asked (`await sync(stack)`)."""
    stacks: list[Stack] = []

    def build(state: SimState, reconcile: ReconcileOptions | None = None) -> Stack:
        options = SyncOptions(enabled=False, reconcile=reconcile or ReconcileOptions())
        stack = Stack(start_sim(None, state=state), ledger_url, options)
        stacks.append(stack)
        return stack

    yield build
    _stop(stacks, loop)


async def sync(stack: Stack) -> Any:
    """One manual sync that must succeed; its result."""
    result = await stack.service.sync_positions(SyncTrigger.MANUAL)
    assert result.ok, result
    return result


def lifecycles(stack: Stack, key: tuple[str, int]) -> list[Any]:
    """Every lifecycle of `key`, oldest first."""
    return sorted(stack.db.run_sync(repository.lifecycles_for, [key]), key=lambda p: p.id)


def events(stack: Stack, life: Any) -> list[Any]:
    """The events of one lifecycle, in order."""
    return list(stack.db.run_sync(repository.events, life.id))
