"""Named scenarios: the lively demo, deterministic scale runs, and the registry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from app.sim.demo import DEMO_ACCOUNTS, DemoTiming, build_demo, next_demo_fill, run_demo
from app.sim.runner import SimulatorThread, start_demo
from app.sim.scenarios import build_scale, get_scenario, scenario_names
from app.sim.server import GatewaySimulator
from tests.sim.ibhelpers import connect, until


def test_registry_names_and_scale_pattern() -> None:
    names = scenario_names()
    assert {"demo", "basic", "scale-1000", "scale-20000", "bad-rows", "slow"} <= set(names)
    assert len(get_scenario("scale-250").build().holdings) == 250
    with pytest.raises(KeyError):
        get_scenario("nope")


def test_demo_has_what_the_window_needs() -> None:
    state = build_demo()
    assert len(state.accounts) >= 2 and len(state.holdings) >= 10
    kinds = {h.contract.sec_type for h in state.holdings.values()}
    assert {"STK", "FUT", "OPT"} <= kinds
    assert any(
        h.contract.symbol == "ES" and h.contract.multiplier == 50 for h in state.holdings.values()
    )
    assert any(h.quantity < 0 for h in state.holdings.values())
    assert any(h.quantity != h.quantity.to_integral_value() for h in state.holdings.values())
    assert len({h.contract.currency for h in state.holdings.values()}) >= 3


def test_demo_fills_cycle_add_partial_close_flip() -> None:
    state = build_demo()
    seen = []
    for step in range(6):
        trade = next_demo_fill(state, step)
        assert trade is not None
        account, con_id, shares = trade
        before = state.holdings[(account, con_id)].quantity
        _, holding = state.fill(account, state.contract(con_id), shares, Decimal(100))
        after = holding.quantity
        if abs(after) > abs(before) and after * before > 0:
            seen.append("add")
        elif after * before < 0:
            seen.append("flip")
        else:
            seen.append("close")
    assert seen[:3] == ["add", "close", "flip"]
    assert seen[3:] == ["add", "close", "flip"]


def test_demo_driver_ticks_fills_and_vanishes(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    thread = start_sim("demo", run_driver=False)
    sim: GatewaySimulator = thread.sim

    async def scenario() -> None:
        ib = await connect(thread.port, 1, account=DEMO_ACCOUNTS[0])
        fills: list[object] = []
        ticks: list[object] = []
        ib.execDetailsEvent += lambda trade, fill: fills.append(fill)
        ib.updatePortfolioEvent += ticks.append
        timing = DemoTiming(tick=0.02, fill_every=3, vanish_after=8)
        thread.loop.call_soon_threadsafe(lambda: sim.spawn(run_demo(sim, timing)))
        await until(lambda: len(fills) >= 2 and len(ticks) >= 10, within=5)
        await until(lambda: (DEMO_ACCOUNTS[1], 208813720) not in {
            (a, c) for a, c, _, _ in sim.positions()
        }, within=5)  # fmt: skip
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_start_demo_runs_in_the_background_and_stops() -> None:
    port, handle = start_demo()
    try:
        assert port == handle.port and handle.sim.is_listening()
    finally:
        handle.stop()
    assert not handle.sim.is_listening()


def test_scale_is_deterministic_with_50_accounts() -> None:
    first, second = build_scale(20_000), build_scale(20_000)
    assert len(first.holdings) == 20_000 and len(first.accounts) == 50
    assert [(k, h.quantity, h.avg_cost) for k, h in first.holdings.items()] == [
        (k, h.quantity, h.avg_cost) for k, h in second.holdings.items()
    ]
    kinds = {h.contract.sec_type for h in first.holdings.values()}
    assert kinds == {"STK", "FUT", "OPT"}


def test_scale_snapshot_reaches_ib_insync(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    thread = start_sim("scale-1000")

    async def scenario() -> None:
        ib = await connect(thread.port, 1)
        assert len(ib.positions()) == 1000
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))
