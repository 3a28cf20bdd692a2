"""The control API is safe from any thread while clients are being served."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest

from app.sim.runner import SimulatorThread
from tests.sim.ibhelpers import connect, until

A = "DU1111111"
AAPL, MSFT = 265598, 272093


def test_concurrent_scripting_from_several_threads(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    sim = basic.sim
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        try:
            for i in range(50):
                sim.set_price(MSFT, Decimal(400 + (seed * 50 + i) % 30))
                sim.fill(A, AAPL, Decimal(1), Decimal(190))
        except BaseException as exc:
            errors.append(exc)

    async def scenario() -> None:
        ib = await connect(basic.port, 1)
        fills: list[object] = []
        ib.execDetailsEvent += lambda trade, fill: fills.append(fill)
        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: [t.join(20) for t in threads]
        )
        await until(lambda: len(fills) == 200, within=10)
        assert ib.positions()  # still consistent and connected
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 30))
    assert not errors
    quantity = sim.call(lambda s: s.holding(A, AAPL).quantity)
    assert quantity == 100 + 200
    assert len(sim.executions()) == 3 + 200
    assert len({e.exec_id for e in sim.executions()}) == 203


def test_control_errors_reach_the_calling_thread(basic: SimulatorThread) -> None:
    with pytest.raises(KeyError):
        basic.sim.remove_position(A, 123)
    with pytest.raises(AttributeError):
        basic.sim.set_faults(no_such_fault=True)
