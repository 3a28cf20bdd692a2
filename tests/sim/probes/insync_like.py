"""Probe for ib_insync or ib_async (same API): snapshot, then live events, as JSON lines.

usage: python -m tests.sim.probes.insync_like LIB PORT CLIENT_ID
Prints a `snapshot` line, then `ready`, waits for the test to make a fill in the last managed
account, and prints a `live` line with the events it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import sys
from typing import Any

from tests.sim.probes.common import emit, num, qty, realized


async def probe(lib: Any, port: int, client_id: int) -> None:
    ib = lib.IB()
    errors: list[int] = []
    live: dict[str, list[Any]] = {"exec": [], "comm": [], "pos": [], "pf": []}
    complete = asyncio.Event()

    def add(kind: str, row: list[Any]) -> None:
        live[kind].append(row)
        if all(live.values()):
            complete.set()

    ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=10, readonly=True)
    accounts = ib.managedAccounts()
    for account in accounts:  # one subscription per client: each call replaces the last
        await ib.reqAccountUpdatesAsync(account)
    fills = ib.fills()
    snapshot = {
        "accounts": accounts,
        "positions": sorted(
            [p.account, p.contract.conId, qty(p.position), num(p.avgCost)] for p in ib.positions()
        ),
        "portfolio": sorted(
            [
                p.account,
                p.contract.conId,
                qty(p.position),
                num(p.marketPrice),
                num(p.marketValue),
                num(p.averageCost),
                num(p.unrealizedPNL),
                num(p.realizedPNL),
            ]
            for p in ib.portfolio()
        ),
        "account_values": sorted(
            [v.account, v.tag, v.value, v.currency] for v in ib.accountValues() if not v.modelCode
        ),
        "executions": sorted(
            [
                f.execution.execId,
                f.execution.acctNumber,
                f.contract.conId,
                f.execution.side,
                qty(f.execution.shares),
                f.execution.price,
                f.commissionReport.commission,
                f.commissionReport.currency,
                realized(f.commissionReport.realizedPNL),
                f.execution.time.isoformat(),
            ]
            for f in fills
        ),
    }
    emit("snapshot", snapshot)

    ib.execDetailsEvent += lambda trade, fill: add(
        "exec",
        [
            fill.execution.execId,
            fill.contract.conId,
            fill.execution.side,
            qty(fill.execution.shares),
            fill.execution.price,
        ],
    )
    ib.commissionReportEvent += lambda trade, fill, report: add(
        "comm", [report.execId, report.commission, realized(report.realizedPNL)]
    )
    ib.positionEvent += lambda p: add(
        "pos", [p.account, p.contract.conId, qty(p.position), num(p.avgCost)]
    )
    ib.updatePortfolioEvent += lambda p: add(
        "pf", [p.account, p.contract.conId, qty(p.position), num(p.marketPrice), num(p.averageCost)]
    )
    emit("ready", None)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(complete.wait(), 15)
    emit("live", {**live, "errors": sorted(set(errors))})
    ib.disconnect()


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)
    lib_name, port, client_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lib = importlib.import_module(lib_name)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(asyncio.wait_for(probe(lib, port, client_id), 40))


if __name__ == "__main__":
    main()
