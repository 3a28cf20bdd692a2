"""What every fault test checks afterwards, read with plain sqlite3 (not through the app).

`projection()` is the ledger's content minus what legitimately differs between two runs that
commit the same snapshot at different moments (times, durations): two ledgers with equal
projections hold the same positions, lifecycles, events, fills and runs. `audit()` counts the
failures the issue names — rows lost, false closes, duplicate fills — against what the
simulated broker holds.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

TABLES = ("accounts", "positions", "position_events", "executions", "sync_runs")
Key = tuple[str, int]


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A plain connection, as any tool opening the file after a crash would (it recovers the WAL).

    `read_only` for a file the app still has open in this process: such a reader never writes
    or checkpoints, so the app keeps the only writing connection (STYLE.md's WAL trap).
    """
    if read_only:
        return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    return sqlite3.connect(path, timeout=30, isolation_level=None)


def integrity(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(`PRAGMA integrity_check` rows, `PRAGMA foreign_key_check` rows)."""
    connection = connect(path)
    try:
        checked = [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
        broken = [tuple(row) for row in connection.execute("PRAGMA foreign_key_check")]
    finally:
        connection.close()
    return checked, broken


def assert_intact(path: Path) -> None:
    """integrity_check says ok and every foreign key resolves."""
    checked, broken = integrity(path)
    assert checked == ["ok"], f"{path}: integrity_check {checked[:5]}"
    assert broken == [], f"{path}: foreign_key_check {broken[:5]}"


def _volatile(column: str) -> bool:
    # Times and durations move between two runs committing the same snapshot.
    return column.endswith(("_at", "_ms", "_since"))


Projection = dict[str, tuple[tuple[Any, ...], ...]]


def projection(path: Path, *, read_only: bool = False) -> Projection:
    """Every row of the ledger's tables without its volatile columns (`missing_since` → a flag).

    Columns are read from the schema, so columns added later are compared too.
    """
    connection = connect(path, read_only=read_only)
    try:
        result: Projection = {}
        for table in TABLES:
            names = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            columns = [
                "missing_since IS NOT NULL" if name == "missing_since" else name
                for name in names
                if name == "missing_since" or not _volatile(name)
            ]
            query = f"SELECT {', '.join(columns)} FROM {table} ORDER BY id"
            result[table] = tuple(connection.execute(query))
        return result
    finally:
        connection.close()


def describe_difference(a: Projection, b: Projection) -> str:
    """Which tables differ, and how (for an assertion message)."""
    parts = []
    for table in TABLES:
        if a[table] != b[table]:
            first = next(
                (i for i, (x, y) in enumerate(zip(a[table], b[table], strict=False)) if x != y),
                min(len(a[table]), len(b[table])),
            )
            parts.append(f"{table}: {len(a[table])} vs {len(b[table])} rows, first at {first}")
    return "; ".join(parts) or "equal"


@dataclass(frozen=True, slots=True)
class Audit:
    """The issue's three counts for one ledger against the broker's book."""

    rows_lost: int
    false_closes: int
    duplicate_fills: int
    details: tuple[str, ...] = ()

    def assert_clean(self) -> None:
        assert (self.rows_lost, self.false_closes, self.duplicate_fills) == (0, 0, 0), (
            f"rows lost {self.rows_lost}, false closes {self.false_closes}, "
            f"duplicate fills {self.duplicate_fills}: {list(self.details[:10])}"
        )


def base_exec_id(exec_id: str) -> str:
    head, dot, _ = exec_id.rpartition(".")
    return head if dot else exec_id


def audit(
    path: Path,
    holdings: Mapping[Key, Decimal],
    exec_ids: Iterable[str],
    *,
    synced: bool = True,
    read_only: bool = False,
) -> Audit:
    """Count rows lost, false closes and duplicate fills in the ledger at `path`.

    `holdings`: the broker's non-zero quantities by (account, conId); `exec_ids`: every
    execution the broker reported. With `synced` (the last sync saw the broker as it is now),
    every holding must be an OPEN lifecycle of exactly that quantity and every execution stored.
    """
    connection = connect(path, read_only=read_only)
    try:
        lifecycles = connection.execute(
            "SELECT a.code, p.con_id, p.quantity, p.status, p.close_reason, p.id "
            "FROM positions p JOIN accounts a ON a.id = p.account_id ORDER BY p.id"
        ).fetchall()
        stored = [row[0] for row in connection.execute("SELECT exec_id FROM executions")]
        booked = [
            (row[0], row[1])
            for row in connection.execute(
                "SELECT exec_ids, kind FROM position_events WHERE exec_ids IS NOT NULL"
            )
        ]
    finally:
        connection.close()
    details: list[str] = []
    open_rows: dict[Key, list[Decimal]] = {}
    closed_keys: dict[Key, list[str | None]] = {}
    for code, con_id, quantity, status, reason, _ in lifecycles:
        key = (str(code), int(con_id))
        if status == "OPEN":
            open_rows.setdefault(key, []).append(Decimal(str(quantity)))
        else:
            closed_keys.setdefault(key, []).append(reason)

    rows_lost = 0
    false_closes = 0
    for key, quantity in holdings.items():
        if quantity == 0:
            continue
        held = open_rows.get(key, [])
        if not held:
            if key in closed_keys:
                false_closes += 1
                details.append(f"{key}: held {quantity} at the broker but closed in the ledger")
            elif synced:
                rows_lost += 1
                details.append(f"{key}: held {quantity} at the broker, no lifecycle")
        elif synced and held != [quantity]:
            rows_lost += 1
            details.append(f"{key}: broker {quantity}, ledger {held}")
    for key, rows in open_rows.items():
        if len(rows) > 1:
            rows_lost += 1
            details.append(f"{key}: {len(rows)} OPEN lifecycles")
    for key, reasons in closed_keys.items():
        if "missing" in reasons:  # closed for absence alone (mark_missing_as_closed is off)
            false_closes += 1
            details.append(f"{key}: closed because it was missing")

    wanted = {base_exec_id(e) for e in exec_ids}
    have = Counter(base_exec_id(e) for e in stored)
    duplicate_fills = sum(n - 1 for n in have.values() if n > 1)
    lost = wanted - set(have)
    if synced and lost:
        rows_lost += len(lost)
        details.append(f"executions not stored: {sorted(lost)[:5]}")
    # An execution moves quantity once: it appears in one event, or in the CLOSED + OPENED
    # pair of a flip.
    uses: dict[str, list[str]] = {}
    for ids, kind in booked:
        for exec_id in str(ids).split(","):
            uses.setdefault(base_exec_id(exec_id), []).append(str(kind))
    for exec_id, kinds in uses.items():
        if len(kinds) > 1 and sorted(kinds) != ["CLOSED", "OPENED"]:
            duplicate_fills += len(kinds) - 1
            details.append(f"execution {exec_id} booked {len(kinds)} times: {kinds}")
    return Audit(rows_lost, false_closes, duplicate_fills, tuple(details))


def broker_book(state: Any) -> tuple[dict[Key, Decimal], list[str]]:
    """(non-zero holdings, execIds) of a simulator's SimState (call it on the simulator's loop)."""
    holdings = {
        (h.account, h.contract.con_id): h.quantity
        for h in state.holdings.values()
        if h.quantity != 0 and h.account in state.accounts and not h.empty_quantity
    }
    return holdings, [e.exec_id for e in state.executions.values()]
