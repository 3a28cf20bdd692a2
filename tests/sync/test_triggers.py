"""Triggers: debounced pushes, single flight with one coalesced follow-up, periodic runs."""

from __future__ import annotations

import asyncio
import itertools
import time
from decimal import Decimal

from app.db import repository
from app.domain.values import SyncTrigger
from app.sim import contracts as c
from app.sync.service import SyncOptions
from tests.sync.test_failures import until
from tests.sync.test_trading_day import DU1, connected, day_start


def test_pushed_fill_committed_within_debounce(make_stack, run):
    debounce = 0.2
    options = SyncOptions(interval=3600, debounce=debounce)
    stack = make_stack(None, state=day_start(), options=options)

    async def scenario():
        await stack.service.start()
        await until(lambda: any(r.trigger is SyncTrigger.STARTUP for r in stack.results))
        pushed = time.monotonic()
        stack.sim.fill(DU1, c.AAPL, 10, "151", commission=Decimal("1.00"))
        await until(lambda: any(r.trigger is SyncTrigger.EXECUTION for r in stack.results))
        committed = time.monotonic()
        result = next(r for r in stack.results if r.trigger is SyncTrigger.EXECUTION)
        assert result.ok and result.selective and result.updated == 1
        row = next(p for p in stack.db.run_sync(repository.positions) if p.key[0] == DU1)
        assert row.quantity == 110
        # The push, not the hour-long period, started this run, and only after the debounce held.
        # How fast it commits once the debounce fires is a benchmark figure ("one update →
        # committed", tests/bench/syncs.py), not a timed test: on a loaded CI machine a 100 ms
        # margin here failed at 313 ms while the benchmark's figure stayed within budget.
        assert debounce <= committed - pushed < debounce + 5.0, f"{committed - pushed:.3f} s"

    run(scenario(), timeout=30)


def test_two_triggers_during_a_run_make_one_follow_up(make_stack, run):
    stack = make_stack("basic", options=SyncOptions(enabled=False))

    async def scenario():
        await connected(stack)
        stack.sim.set_faults(delays={"executions": 0.5})
        first = asyncio.ensure_future(stack.service.sync_positions(SyncTrigger.MANUAL))
        await until(lambda: stack.service.running)
        second = asyncio.ensure_future(stack.service.sync_positions(SyncTrigger.PERIODIC))
        third = asyncio.ensure_future(stack.service.sync_positions(SyncTrigger.MANUAL))
        results = await asyncio.gather(first, second, third)
        assert results[1] is results[2], "the two waiting triggers share one follow-up"
        assert results[0] is not results[1]
        assert [r.trigger for r in stack.results] == [SyncTrigger.MANUAL, SyncTrigger.PERIODIC]
        runs = stack.db.run_sync(repository.sync_runs)
        assert len(runs) == 2
        assert runs[0].started_at >= runs[1].finished_at  # never overlapping

    run(scenario(), timeout=30)


def test_periodic_runs_on_schedule(make_stack, run):
    interval = 0.4
    stack = make_stack("basic", options=SyncOptions(interval=interval, on_trade=False))

    async def scenario():
        await stack.service.start()
        await until(lambda: sum(r.trigger is SyncTrigger.PERIODIC for r in stack.results) >= 3)
        periodic = [r for r in stack.results if r.trigger is SyncTrigger.PERIODIC]
        assert all(r.ok for r in periodic)
        gaps = [
            (b.started_at - a.finished_at).total_seconds() for a, b in itertools.pairwise(periodic)
        ]
        assert all(interval * 0.8 <= gap <= interval * 3 for gap in gaps), gaps

    run(scenario(), timeout=30)


def test_new_settings_apply_without_restart(make_stack, run):
    stack = make_stack("basic", options=SyncOptions(interval=3600, on_trade=False))

    async def scenario():
        await stack.service.start()
        await until(lambda: len(stack.results) >= 1)
        assert not any(r.trigger is SyncTrigger.PERIODIC for r in stack.results)
        stack.service.apply_options(SyncOptions(interval=0.2, on_trade=False))
        await until(lambda: any(r.trigger is SyncTrigger.PERIODIC for r in stack.results), 3)

    run(scenario(), timeout=30)
