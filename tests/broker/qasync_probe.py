"""The adapter under qasync, run as its own process by test_qasync.py (prints one JSON line).

A separate process because a QApplication lives until its process ends: left behind in the
pytest process, pytest-qt would pump its events after every later test (and the window's tests
own the one QApplication a process may have).

    QT_QPA_PLATFORM=offscreen python -m tests.broker.qasync_probe
"""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")  # before qasync: it prefers PyQt6 when both exist

import qasync
from PySide6.QtWidgets import QApplication

from app.broker import IbBroker
from app.domain.connection import BrokerEvent, BrokerEventKind, ConnectionState
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from tests.broker.conftest import Recorder

ACCOUNT = "DU5550001"  # the "single" scenario's account


async def scenario(sim: SimulatorThread) -> dict[str, Any]:
    harness = asyncio.all_tasks()
    broker = IbBroker("127.0.0.1", sim.port, client_id=21, timeout=2.0)
    rec = Recorder(broker)
    await broker.start()
    await rec.until_state(ConnectionState.CONNECTED)
    first = await broker.snapshot()
    sim.sim.fill(ACCOUNT, c.AAPL, Decimal(1), Decimal(190))
    key = (ACCOUNT, c.AAPL.con_id)
    await rec.until(lambda: BrokerEvent(BrokerEventKind.EXECUTION, key) in rec.events)
    second = await broker.snapshot(frozenset({key}))
    await broker.stop()
    return {
        "first_complete": first.complete,
        "first_positions": len(first.positions),
        "second_complete": second.complete,
        "second_quantity": str(second.positions[0].quantity),
        "state": broker.status.state.value,
        "leftover_tasks": len(asyncio.all_tasks() - harness),
    }


def main() -> None:
    app = QApplication([])
    sim = SimulatorThread("single").start()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)  # ib_insync reads the policy's loop (STYLE.md traps)
    try:
        result = loop.run_until_complete(asyncio.wait_for(scenario(sim), 20))
    finally:
        loop.close()
        sim.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
