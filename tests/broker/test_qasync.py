"""The adapter under qasync (Qt's loop on the GUI thread), as the window runs it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from app.broker import IbBroker
from app.domain.connection import BrokerEvent, BrokerEventKind, ConnectionState
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from tests.broker.conftest import Recorder

pytestmark = pytest.mark.timeout(30)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")  # before qasync: it prefers PyQt6 when both exist


def test_connect_snapshot_events_and_stop_under_qasync(
    start_sim: Callable[..., SimulatorThread],
) -> None:
    qasync = pytest.importorskip("qasync")
    widgets = pytest.importorskip("PySide6.QtWidgets")
    app = widgets.QApplication.instance() or widgets.QApplication([])
    sim = start_sim("single").sim
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)  # ib_insync reads the policy's loop (STYLE.md traps)
    broker = IbBroker("127.0.0.1", sim.port, client_id=21, timeout=2.0)
    rec = Recorder(broker)

    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        first = await broker.snapshot()
        sim.fill("DU5550001", c.AAPL, Decimal(1), Decimal(190))
        key = ("DU5550001", c.AAPL.con_id)
        await rec.until(lambda: BrokerEvent(BrokerEventKind.EXECUTION, key) in rec.events)
        second = await broker.snapshot(frozenset({key}))
        await broker.stop()
        return first, second

    try:
        first, second = loop.run_until_complete(asyncio.wait_for(scenario(), 10))
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)
    assert first.complete and len(first.positions) == 3
    assert second.complete and second.positions[0].quantity == Decimal(61)
    assert broker.status.state is ConnectionState.DISCONNECTED
