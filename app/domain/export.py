"""Exports of the ledger (CSV, JSON): which rows, which columns, and the text.

Pure: domain values in, text out. Decimals are written as their exact text (no float noise),
times as ISO 8601 in UTC with a `Z` (app.domain.documents' `dec` and `iso`, as every `--json`
document); the column names are DESIGN.md's database contract, with `account` holding the IB
account code where the table stores an `account_id`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from app.domain.documents import dec, iso, lifecycle_json, lot_json
from app.domain.records import StoredEvent
from app.domain.values import Fill, Lifecycle

if TYPE_CHECKING:
    # An annotation only: app.domain.lots brings the FIFO fold, which the window's menus (built
    # from ExportKind before the first paint, issue 19) do not need.
    from app.domain.lots import OpenLot

Cell = str | int | None
"""One exported value: exact text, an integer id, or None (an empty CSV cell, JSON null)."""


class ExportKind(StrEnum):
    """What an export holds."""

    POSITIONS = "positions"  # OPEN lifecycles
    ALL = "all"  # every lifecycle, open and closed
    EVENTS = "events"  # every lifecycle's events, with the lifecycle's account and contract
    FILLS = "fills"  # every stored execution
    LOTS = "lots"  # the open FIFO lots of every OPEN lifecycle


class ExportFormat(StrEnum):
    """How an export is written."""

    CSV = "csv"
    JSON = "json"


LIFECYCLE_COLUMNS = (
    "id", "account", "con_id", "symbol", "sec_type", "currency", "exchange", "local_symbol",
    "multiplier", "expiry", "strike", "right", "quantity", "average_price", "average_cost",
    "current_price", "market_value", "unrealized_pnl", "unrealized_pnl_pct", "realized_pnl",
    "status", "opened_at", "closed_at", "close_reason", "last_synced_at", "missing_since",
    "entry_trade_id", "exit_trade_id",
    # Appended (columns keep their places): the part of realized_pnl resting on estimates, and
    # the least trustworthy basis of the lifecycle's realizing events.
    "realized_pnl_estimated", "pnl_basis",
)  # fmt: skip

EVENT_COLUMNS = (
    "id", "position_id", "account", "con_id", "symbol", "local_symbol", "currency",
    "sync_run_id", "kind", "occurred_at", "quantity_before", "quantity_after", "price",
    "price_source", "realized_pnl", "broker_realized_pnl", "exec_ids", "note",
    "pnl_basis",  # appended: exact | estimated | unknown, empty where nothing was realized
    "realized_pnl_fifo", "pnl_basis_fifo",  # appended: the same event under FIFO lots
)  # fmt: skip

FILL_COLUMNS = (
    "exec_id", "account", "con_id", "symbol", "side", "shares", "price", "time", "perm_id",
    "order_ref", "commission", "commission_currency", "realized_pnl",
)  # fmt: skip

LOT_COLUMNS = (
    "position_id", "account", "con_id", "symbol", "local_symbol", "sec_type", "currency",
    "multiplier", "acquired_at", "quantity", "cost_basis", "unit_cost", "basis", "holding_days",
    "term", "exec_id",
)  # fmt: skip

COLUMNS: Mapping[ExportKind, tuple[str, ...]] = {
    ExportKind.POSITIONS: LIFECYCLE_COLUMNS,
    ExportKind.ALL: LIFECYCLE_COLUMNS,
    ExportKind.EVENTS: EVENT_COLUMNS,
    ExportKind.FILLS: FILL_COLUMNS,
    ExportKind.LOTS: LOT_COLUMNS,
}


def event_record(e: StoredEvent, life: Lifecycle | None) -> dict[str, Cell]:
    """One `position_events` row with its lifecycle's account and contract (for joins)."""
    c = life.contract if life is not None else None
    return {
        "id": e.id,
        "position_id": e.position_id,
        "account": life.account if life is not None else None,
        "con_id": c.con_id if c is not None else None,
        "symbol": c.symbol if c is not None else None,
        "local_symbol": c.local_symbol if c is not None else None,
        "currency": c.currency if c is not None else None,
        "sync_run_id": e.sync_run_id,
        "kind": e.kind.value,
        "occurred_at": iso(e.occurred_at),
        "quantity_before": dec(e.quantity_before),
        "quantity_after": dec(e.quantity_after),
        "price": dec(e.price),
        "price_source": e.price_source.value if e.price_source else None,
        "realized_pnl": dec(e.realized_pnl),
        "broker_realized_pnl": dec(e.broker_realized_pnl),
        # As the column stores them: comma-separated, so both formats carry the same text.
        "exec_ids": ",".join(e.exec_ids) or None,
        "note": e.note or None,
        "pnl_basis": e.pnl_basis.value if e.pnl_basis else None,
        "realized_pnl_fifo": dec(e.realized_pnl_fifo),
        "pnl_basis_fifo": e.pnl_basis_fifo.value if e.pnl_basis_fifo else None,
    }


def fill_record(f: Fill) -> dict[str, Cell]:
    """One `executions` row."""
    return {
        "exec_id": f.exec_id,
        "account": f.account,
        "con_id": f.contract.con_id,
        "symbol": f.contract.symbol,
        "side": f.side.value,
        "shares": dec(f.shares),
        "price": dec(f.price),
        "time": iso(f.time),
        "perm_id": f.perm_id or None,  # the column holds NULL where IB sent none
        "order_ref": f.order_ref or None,
        "commission": dec(f.commission),
        "commission_currency": f.commission_currency or None,
        "realized_pnl": dec(f.realized_pnl),
    }


def _lifecycle_record(p: Lifecycle) -> dict[str, Cell]:
    # The same record `positions --json` and the local API print, so the three never drift.
    record: dict[str, Cell] = lifecycle_json(p)
    return record


@dataclass(frozen=True, slots=True)
class ExportTable:
    """An export before it is written: its columns (in order) and one record per row."""

    kind: ExportKind
    columns: tuple[str, ...]
    rows: tuple[dict[str, Cell], ...]


def export_table(
    kind: ExportKind,
    *,
    lifecycles: Sequence[Lifecycle] = (),
    events: Iterable[StoredEvent] = (),
    fills: Iterable[Fill] = (),
    lots: Iterable[OpenLot] = (),
    account: str | None = None,
    as_of: datetime | None = None,
) -> ExportTable:
    """The rows of one export; `account` keeps one IB account's rows only.

    POSITIONS keeps the OPEN lifecycles of `lifecycles`; ALL keeps them all; EVENTS joins each
    event to its lifecycle by `position_id` (so `lifecycles` must hold every one of them).
    """
    rows: list[dict[str, Cell]]
    if kind is ExportKind.POSITIONS or kind is ExportKind.ALL:
        rows = [
            _lifecycle_record(p)
            for p in lifecycles
            if (kind is ExportKind.ALL or p.is_open) and account in (None, p.account)
        ]
    elif kind is ExportKind.EVENTS:
        by_id = {p.id: p for p in lifecycles}
        rows = []
        for event in events:
            life = by_id.get(event.position_id)
            if account is None or (life is not None and life.account == account):
                rows.append(event_record(event, life))
    elif kind is ExportKind.LOTS:
        if as_of is None:
            raise ValueError("a lots export needs the time its holding periods run to")
        rows = [lot_json(x, as_of) for x in lots if account in (None, x.lifecycle.account)]
    else:
        rows = [fill_record(f) for f in fills if account in (None, f.account)]
    return ExportTable(kind, COLUMNS[kind], tuple(rows))


FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make spreadsheets (Excel, LibreOffice Calc, Google Sheets) read a CSV
cell as a formula — OWASP "CSV Injection"; CWE-1236 (https://cwe.mitre.org/data/definitions/
1236.html) names = + - @, and tab and carriage return lead formulas in some of them too."""

_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def csv_cell(value: Cell) -> str | int:
    """A cell as written to CSV: text a spreadsheet would run as a formula gets a leading `'`
    (the spreadsheets' own "this is text" mark, not shown in the cell).

    A plain number keeps its sign and stays a number ("-12.5" is how every negative quantity
    and loss is written, and a spreadsheet reads it as −12.5, not as a formula); anything else
    starting with = + - @ (a note typed into Mark closed: "=HYPERLINK(…)", "-1+2", "@SUM(…)"),
    a tab or a carriage return is neutralised. JSON exports keep the exact text.
    """
    if value is None:
        return ""
    if isinstance(value, int):
        return value
    if value.startswith(FORMULA_LEADS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def to_csv(table: ExportTable) -> str:
    """RFC 4180 CSV: a header row of column names, then one line per row (None → empty);
    formula-leading text neutralised (`csv_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([csv_cell(row[name]) for name in table.columns])
    return out.getvalue()


def to_json(table: ExportTable, exported_at: datetime) -> str:
    """The JSON document (README "Export"): kind, time, column order, and the rows."""
    document = {
        "export": table.kind.value,
        "exported_at": iso(exported_at),
        "columns": list(table.columns),
        "rows": [{name: row[name] for name in table.columns} for row in table.rows],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render(table: ExportTable, fmt: ExportFormat, exported_at: datetime) -> str:
    """The export's text in `fmt`."""
    return to_csv(table) if fmt is ExportFormat.CSV else to_json(table, exported_at)
