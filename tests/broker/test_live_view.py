"""live_positions(): the window's view of the live subscription, with no request sent."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from app.domain.connection import BrokerEvent, BrokerEventKind, ConnectionState
from app.sim import contracts as c
from app.sim.runner import SimulatorThread

pytestmark = pytest.mark.timeout(30)

A = "DU1111111"


def test_live_positions_follow_pushes_without_requests(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)
    assert broker.live_positions() == []  # not started: nothing, not stale data
    key = (A, c.AAPL.con_id)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        await broker.snapshot()
        requests_before = len(sim.received_ids(11))
        sim.fill(A, c.AAPL, Decimal(5), Decimal("191"))
        await rec.until(lambda: BrokerEvent(BrokerEventKind.POSITION, key) in rec.events)
        rows = broker.live_positions([key])
        assert len(sim.received_ids(11)) == requests_before  # a view, not a request
        return rows, broker.live_positions()

    (row,), everything = run(scenario())
    assert row.key == key and row.quantity == 105
    assert {p.key for p in everything} >= {key}
