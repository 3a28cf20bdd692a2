"""Fault-injection suite (issue 7): shared fixtures and the figures summary."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.sim.runner import SimulatorThread
from app.sync.service import SyncOptions
from tests.faults.figures import FULL, TALLIES
from tests.faults.order_guard import TALLY as ORDER_TALLY
from tests.sync.conftest import Stack


@pytest.fixture
def make_stack(
    tmp_path: Path, loop: Any, start_sim: Callable[..., SimulatorThread]
) -> Iterator[Callable[..., Stack]]:
    """make_stack(scenario, state=…, options=…, **broker) → a Stack on a SQLite file.

    The fault checks read the file itself with plain sqlite3, so this suite's stacks are
    always SQLite (the sync suite runs the same stack on PostgreSQL too).
    """
    stacks: list[Stack] = []

    def make(
        scenario: Any = None, *, state: Any = None, options: SyncOptions | None = None, **kw: Any
    ) -> Stack:
        sim = start_sim(scenario, state=state) if state is not None else start_sim(scenario)
        path = tmp_path / f"ledger{len(stacks)}.sqlite"
        stack = Stack(sim, path, options or SyncOptions(), **kw)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        loop.run_until_complete(stack.service.stop())
        stack.db.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLIES:
        return
    write = terminalreporter.write_line
    write(f"fault-injection figures ({'full-size' if FULL else 'CI-sized'} run):")
    totals = dict.fromkeys(("faults", "runs", "rows_lost", "false_closes", "duplicate_fills"), 0)
    for family, tally in sorted(TALLIES.items()):
        for name in totals:
            totals[name] += getattr(tally, name)
        write(
            f"  {family:<34} faults {tally.faults:>6}  runs survived {tally.runs:>6}  "
            f"rows lost {tally.rows_lost}  false closes {tally.false_closes}  "
            f"duplicate fills {tally.duplicate_fills}"
            + (f"  ({'; '.join(tally.notes)})" if tally.notes else "")
        )
    write(
        f"  {'total':<34} faults {totals['faults']:>6}  runs survived {totals['runs']:>6}  "
        f"rows lost {totals['rows_lost']}  false closes {totals['false_closes']}  "
        f"duplicate fills {totals['duplicate_fills']}  "
        f"order messages {ORDER_TALLY.order_messages}"
    )
    target = os.environ.get("POSITION_SYNC_FAULTS_REPORT")
    if target:
        document = {
            "full": FULL,
            "families": {name: vars(tally) for name, tally in sorted(TALLIES.items())},
            "totals": totals,
            "order_messages": ORDER_TALLY.order_messages,
            "simulators_checked": ORDER_TALLY.simulators,
            "client_messages_checked": ORDER_TALLY.messages,
        }
        with open(target, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=2)
