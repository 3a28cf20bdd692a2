"""The floors our figures are compared with: plain `sqlite3`, and ib_insync alone.

- `sqlite_upsert`: the same position rows (every column, as the ledger stores them) upserted
  with one `executemany` on a plain `sqlite3` connection into a file with the ledger's schema,
  in one transaction, with the ledger's pragmas (WAL, synchronous=NORMAL). Rows are converted to
  text before the clock starts: the floor is the database alone.
- `ib_snapshot`: a plain ib_insync client receiving the same snapshot our adapter requests
  (positions, the portfolio of every account, executions) from the same simulator.
- `ib_process`: the same as a fresh process (start, import, connect, snapshot, exit), the floor
  of a headless `position-sync sync`.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.db.migrate import open_database
from app.domain.decimals import decimal_text
from app.domain.values import BrokerPosition, BrokerSnapshot

COLUMNS = (
    "account_id", "con_id", "symbol", "sec_type", "currency", "exchange", "local_symbol",
    "multiplier", "expiry", "strike", "right", "quantity", "average_price", "average_cost",
    "current_price", "market_value", "unrealized_pnl", "unrealized_pnl_pct", "realized_pnl",
    "status", "opened_at", "closed_at", "close_reason", "last_synced_at", "missing_since",
    "entry_trade_id", "exit_trade_id",
)  # fmt: skip
_KEY = ("account_id", "con_id")
_NAMES = ", ".join(f'"{c}"' for c in COLUMNS)
_VALUES = ", ".join("?" for _ in COLUMNS)
_SET = ", ".join(f'"{c}" = excluded."{c}"' for c in COLUMNS if c not in _KEY)
UPSERT = (
    f"INSERT INTO positions ({_NAMES}) VALUES ({_VALUES}) "
    f"ON CONFLICT (account_id, con_id) WHERE status = 'OPEN' DO UPDATE SET {_SET}"
)


def _text(value: Decimal | None) -> str | None:
    return None if value is None or not value.is_finite() else decimal_text(value)


def _stamp(moment: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format, naive UTC.
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def position_rows(snapshot: BrokerSnapshot, account_ids: dict[str, int]) -> list[tuple[Any, ...]]:
    """The rows a sync of `snapshot` stores, as plain text/int tuples in COLUMNS order."""
    at = _stamp(snapshot.taken_at)
    rows = []
    for p in snapshot.positions:
        rows.append(_row(p, account_ids[p.account], at))
    return rows


def _row(p: BrokerPosition, account_id: int, at: str) -> tuple[Any, ...]:
    c = p.contract
    basis = abs(p.quantity) * p.average_cost
    pct = p.unrealized_pnl / basis * 100 if p.unrealized_pnl is not None and basis else None
    return (
        account_id, c.con_id, c.symbol, c.sec_type, c.currency, c.exchange, c.local_symbol,
        _text(c.multiplier), c.expiry or None, _text(c.strike), c.right or None,
        _text(p.quantity), _text(p.average_price), _text(p.average_cost), _text(p.market_price),
        _text(p.market_value), _text(p.unrealized_pnl), _text(pct), "0", "OPEN", at, None, None,
        at, None, None, None,
    )  # fmt: skip


class SqliteFloor:
    """A ledger-schema file and a plain sqlite3 connection to upsert into."""

    def __init__(self, path: Path, accounts: frozenset[str]) -> None:
        open_database(path).close()  # the ledger's schema, by its own migrations
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.executemany(
            "INSERT INTO accounts (code) VALUES (?)", [(a,) for a in sorted(accounts)]
        )
        self.account_ids = dict(self.connection.execute("SELECT code, id FROM accounts"))

    def upsert(self, snapshot: BrokerSnapshot) -> float:
        """Seconds for one transaction upserting the snapshot's rows."""
        rows = position_rows(snapshot, self.account_ids)
        started = time.perf_counter()
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.executemany(UPSERT, rows)
        self.connection.execute("COMMIT")
        return time.perf_counter() - started

    def close(self) -> None:
        self.connection.close()


# ---------------------------------------------------------------------------- ib_insync alone
async def ib_snapshot(port: int, client_id: int, rounds: int) -> tuple[float, list[float]]:
    """(connect seconds, [seconds per snapshot]) for a plain ib_insync client."""
    from ib_insync import IB

    ib = IB()
    started = time.perf_counter()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=120, readonly=True)
    connect = time.perf_counter() - started
    figures = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            await _receive_snapshot(ib)
            figures.append(time.perf_counter() - started)
    finally:
        ib.disconnect()
    return connect, figures


async def _receive_snapshot(ib: Any) -> None:
    await ib.reqPositionsAsync()
    for account in ib.managedAccounts():
        await ib.reqAccountUpdatesAsync(account)
    await ib.reqExecutionsAsync()


IB_PROCESS = """\
import asyncio, sys
from ib_insync import IB
async def main():
    ib = IB()
    await ib.connectAsync("127.0.0.1", int(sys.argv[1]), clientId=int(sys.argv[2]),
                          timeout=120, readonly=True)  # positions, account values, executions
    for account in ib.managedAccounts():
        await ib.reqAccountUpdatesAsync(account)  # the portfolio rows (market data)
    ib.disconnect()
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
loop.run_until_complete(main())
"""


def ib_process(port: int, client_id: int) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of a fresh process receiving the snapshot via ib_insync."""
    return timed_process([sys.executable, "-c", IB_PROCESS, str(port), str(client_id)])


# A small process runs the command and reports its wall time and peak RSS: a child forked from
# the (large) benchmark process would report the benchmark's own size as its peak (Linux keeps
# the pre-exec high-water mark in ru_maxrss).
LAUNCHER = """\
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump([time.perf_counter() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status)],
              out)
"""


def timed_process(argv: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of a child process; raises if it fails."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        log = Path(folder) / "output.log"
        with log.open("wb") as output:
            subprocess.run(
                [sys.executable, "-S", "-c", LAUNCHER, str(report), *argv],
                cwd=cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=True,
            )
        elapsed, peak_kib, code = json.loads(report.read_text())
        if code != 0:
            text = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(argv[:4])}… exited {code}: {text}")
    return float(elapsed), peak_kib / 1024  # Linux reports KiB
