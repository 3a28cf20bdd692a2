"""Probe for IBKR's official `ibapi` client: same output as insync_like.

usage: python -m tests.sim.probes.ibapi_probe PORT CLIENT_ID
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ibapi.client import EClient
from ibapi.execution import ExecutionFilter
from ibapi.wrapper import EWrapper

from tests.sim.probes.common import emit, num, qty, realized

EXEC_REQ_ID = 9001


class ErrorLog(logging.Handler):
    """ibapi reports field-count mismatches only through logging ("diff len fields")."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage()[:200])


class Probe(EWrapper, EClient):
    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.ready = threading.Event()
        self.done: dict[str, threading.Event] = {}
        self.accounts: list[str] = []
        self.positions_: dict[tuple[str, int], list[Any]] = {}
        self.portfolio: dict[tuple[str, int], list[Any]] = {}
        self.values: dict[tuple[str, str, str], list[Any]] = {}
        self.execs: dict[str, dict[str, Any]] = {}
        self.errors: list[int] = []
        self.live_phase = False
        self.live: dict[str, list[Any]] = {"exec": [], "comm": [], "pos": [], "pf": []}

    def event(self, name: str) -> threading.Event:
        return self.done.setdefault(name, threading.Event())

    # connection
    def nextValidId(self, orderId: int) -> None:
        self.ready.set()

    def managedAccounts(self, accountsList: str) -> None:
        self.accounts = [a for a in accountsList.split(",") if a]

    def error(
        self,
        reqId: Any,
        errorTime: int,
        errorCode: int,
        errorString: str,
        advancedOrderRejectJson: str = "",
    ) -> None:
        self.errors.append(errorCode)

    # positions
    def position(self, account: str, contract: Any, position: Any, avgCost: float) -> None:
        row = [account, contract.conId, qty(position), num(avgCost)]
        self.positions_[(account, contract.conId)] = row
        if self.live_phase:
            self.live["pos"].append(row)

    def positionEnd(self) -> None:
        self.event("positions").set()

    # account updates
    def updateAccountValue(self, key: str, val: str, currency: str, accountName: str) -> None:
        self.values[(accountName, key, currency)] = [accountName, key, val, currency]

    def updatePortfolio(
        self,
        contract: Any,
        position: Any,
        marketPrice: float,
        marketValue: float,
        averageCost: float,
        unrealizedPNL: float,
        realizedPNL: float,
        accountName: str,
    ) -> None:
        key = (accountName, contract.conId)
        row = [
            accountName,
            contract.conId,
            qty(position),
            num(marketPrice),
            num(marketValue),
            num(averageCost),
            num(unrealizedPNL),
            num(realizedPNL),
        ]
        self.portfolio[key] = row
        if self.live_phase:
            self.live["pf"].append(
                [accountName, contract.conId, qty(position), num(marketPrice), num(averageCost)]
            )

    def accountDownloadEnd(self, accountName: str) -> None:
        self.event(f"account:{accountName}").set()

    # executions
    def execDetails(self, reqId: int, contract: Any, execution: Any) -> None:
        zone_text = execution.time.rsplit(" ", 1)
        when = datetime.strptime(zone_text[0], "%Y%m%d %H:%M:%S").replace(
            tzinfo=ZoneInfo(zone_text[1])
        )
        self.execs[execution.execId] = {
            "row": [
                execution.execId,
                execution.acctNumber,
                contract.conId,
                execution.side,
                qty(execution.shares),
                execution.price,
            ],
            "time": when.astimezone(UTC).isoformat(),
        }
        if reqId == -1 and self.live_phase:
            self.live["exec"].append(
                [
                    execution.execId,
                    contract.conId,
                    execution.side,
                    qty(execution.shares),
                    execution.price,
                ]
            )

    def execDetailsEnd(self, reqId: int) -> None:
        self.event(f"exec:{reqId}").set()

    def commissionAndFeesReport(self, report: Any) -> None:
        entry = self.execs.setdefault(report.execId, {})
        entry["comm"] = [
            report.commissionAndFees,
            report.currency,
            realized(report.realizedPNL),
            report.realizedPNL,
        ]
        if self.live_phase:
            self.live["comm"].append(
                [report.execId, report.commissionAndFees, realized(report.realizedPNL)]
            )


def wait(event: threading.Event, what: str) -> None:
    if not event.wait(10):
        raise TimeoutError(f"ibapi probe: no {what}")


def main() -> None:
    log = ErrorLog()
    logging.getLogger().addHandler(log)
    logging.getLogger().setLevel(logging.WARNING)
    port, client_id = int(sys.argv[1]), int(sys.argv[2])
    app = Probe()
    app.connect("127.0.0.1", port, client_id)
    threading.Thread(target=app.run, daemon=True).start()
    wait(app.ready, "nextValidId")
    app.reqPositions()
    wait(app.event("positions"), "positionEnd")
    for account in app.accounts:
        app.reqAccountUpdates(True, account)
        wait(app.event(f"account:{account}"), f"accountDownloadEnd {account}")
    app.reqExecutions(EXEC_REQ_ID, ExecutionFilter())
    wait(app.event(f"exec:{EXEC_REQ_ID}"), "execDetailsEnd")
    executions = []
    unset_flags = {}
    for exec_id, entry in app.execs.items():
        commission, currency, real, raw = entry["comm"]
        executions.append([*entry["row"], commission, currency, real, entry["time"]])
        unset_flags[exec_id] = raw >= sys.float_info.max
    emit(
        "snapshot",
        {
            "accounts": app.accounts,
            "positions": sorted(app.positions_.values()),
            "portfolio": sorted(app.portfolio.values()),
            "account_values": sorted(app.values.values()),
            "executions": sorted(executions),
            "realized_unset": unset_flags,
        },
    )
    app.live_phase = True
    emit("ready", None)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(app.live.values()):
        time.sleep(0.02)
    emit("live", {**app.live, "errors": sorted(set(app.errors)), "log": log.lines})
    app.disconnect()


if __name__ == "__main__":
    main()
