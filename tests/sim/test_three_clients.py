"""ib_insync, ib_async and IBKR's ibapi, each in its own process, see the same broker.

ib_async and ib_insync both ship a top-level `eventkit`, so ib_async lives in its own target
directory (.venv/extra-ib_async, installed by `.ci/dev`) and runs with PYTHONPATH pointing there.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.sim import fields as wire
from app.sim.model import Execution, Holding
from app.sim.runner import SimulatorThread
from app.sim.state import SimState
from tests.sim.probes.common import NOTICE_CODES, num, qty, realized

REPO = Path(__file__).resolve().parents[2]
IB_ASYNC_DIR = REPO / ".venv" / "extra-ib_async"


def _double(value: Decimal | None) -> float | None:
    """What a client reads from our text for this double."""
    return num(float(wire.double(value)))


class Probe:
    """A client probe subprocess whose JSON lines are read with timeouts."""

    def __init__(self, name: str, args: list[str], extra_path: list[Path]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([*map(str, extra_path), str(REPO)])
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, kind: str, timeout: float = 30.0) -> Any:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{self.name}: no {kind!r} line in {timeout} s") from None
            if line is None:
                stderr = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"{self.name} exited before {kind!r}:\n{stderr[-3000:]}")
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            if message["kind"] == kind:
                return message["data"]

    def finish(self) -> None:
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def expected_snapshot(state: SimState) -> dict[str, Any]:
    managed = state.managed_accounts()

    def position(h: Holding) -> list[Any]:
        return [h.account, h.contract.con_id, qty(h.quantity), _double(h.avg_cost)]

    def portfolio(h: Holding) -> list[Any]:
        price, value, unrealized = state.valuation(h)
        return [
            h.account, h.contract.con_id, qty(h.quantity), _double(price), _double(value),
            _double(h.avg_cost), _double(unrealized), _double(h.realized_pnl),
        ]  # fmt: skip

    def execution(e: Execution) -> list[Any]:
        real = None if e.realized_pnl is None else realized(float(wire.double(e.realized_pnl)))
        return [
            e.exec_id, e.account, e.contract.con_id, e.side, qty(e.shares),
            float(wire.double(e.price)), float(wire.double(e.commission)),
            e.commission_currency, real,
            e.time.astimezone(UTC).replace(microsecond=0).isoformat(),
        ]  # fmt: skip

    return {
        "accounts": managed,
        "positions": sorted(position(h) for h in state.holdings.values()),
        "portfolio": sorted(portfolio(h) for h in state.holdings.values() if h.account in managed),
        "account_values": sorted(
            [account, key, value, currency]
            for account in managed
            for key, value, currency in state.account_values(account)
        ),
        "executions": sorted(execution(e) for e in state.executions.values()),
    }


@pytest.fixture
def probes(basic: SimulatorThread) -> Iterator[list[Probe]]:
    if not (IB_ASYNC_DIR / "ib_async").is_dir():
        pytest.fail(f"ib_async is not installed in {IB_ASYNC_DIR}; run `.ci/dev test` once")
    port = str(basic.port)
    started = [
        Probe("ib_insync", ["-m", "tests.sim.probes.insync_like", "ib_insync", port, "11"], []),
        Probe(
            "ib_async",
            ["-m", "tests.sim.probes.insync_like", "ib_async", port, "12"],
            [IB_ASYNC_DIR],
        ),
        Probe("ibapi", ["-m", "tests.sim.probes.ibapi_probe", port, "13"], []),
    ]
    yield started
    for probe in started:
        probe.finish()


def test_three_clients_receive_the_same_snapshot_and_live_pushes(
    basic: SimulatorThread, probes: list[Probe]
) -> None:
    snapshots = {p.name: p.expect("snapshot") for p in probes}
    for probe in probes:
        probe.expect("ready")

    expected = basic.sim.call(expected_snapshot)
    opening = basic.sim.call(
        lambda s: {e.exec_id: e.realized_pnl is None for e in s.executions.values()}
    )
    for name, snapshot in snapshots.items():
        realized_unset = snapshot.pop("realized_unset", None)
        for part, rows in expected.items():
            assert snapshot[part] == rows, f"{name}: {part} differ"
        if realized_unset is not None:  # ibapi keeps TWS's unset; the others turn it into 0.0
            assert realized_unset == opening
    assert any(q == "0.3" for _, _, q, _ in expected["positions"])  # fractional, exact
    assert any(q.startswith("-") for _, _, q, _ in expected["positions"])  # a short

    account = expected["accounts"][-1]  # the account every probe subscribed to last
    execution = basic.sim.fill(account, 265598, Decimal(-4), Decimal("191.0"))
    holding = basic.sim.call(lambda s: s.holding(account, 265598))
    price = basic.sim.call(lambda s: s.prices[265598])
    assert execution.realized_pnl is not None

    for probe in probes:
        live = probe.expect("live")
        assert live["exec"] == [[execution.exec_id, 265598, "SLD", "4", 191.0]], probe.name
        assert live["comm"] == [
            [execution.exec_id, float(execution.commission), float(execution.realized_pnl)]
        ], probe.name
        assert [account, 265598, qty(holding.quantity), _double(holding.avg_cost)] in live["pos"]
        assert [
            account, 265598, qty(holding.quantity), _double(price), _double(holding.avg_cost)
        ] in live["pf"], probe.name  # fmt: skip
        assert set(live["errors"]) <= NOTICE_CODES, probe.name
        assert not live.get("log"), f"{probe.name} logged: {live.get('log')}"
