"""Models of one position's history (its events and fills) and of the sync log."""

from __future__ import annotations

from typing import Any

from app.ui import estimates
from app.ui import formatting as fmt
from app.ui.models.keyed import Column, KeyedTableModel
from app.ui.models.lots import FIFO_COLUMN


class EventsModel(KeyedTableModel):
    """`position_events` of the selected lifecycle."""

    default_order = staticmethod(lambda e: e.id)

    columns = (
        Column(
            "When",
            lambda e: e.occurred_at,
            lambda e: fmt.local_time(e.occurred_at, True),
            width=120,
        ),
        Column("Event", lambda e: e.kind.value, lambda e: e.kind.value.replace("_", " ").title()),
        Column(
            "Qty before",
            lambda e: e.quantity_before,
            lambda e: fmt.quantity(e.quantity_before),
            numeric=True,
        ),
        Column(
            "Qty after",
            lambda e: e.quantity_after,
            lambda e: fmt.quantity(e.quantity_after),
            numeric=True,
        ),
        Column("Price", lambda e: e.price, lambda e: fmt.price(e.price), numeric=True),
        Column(
            "Price from",
            lambda e: e.price_source.value if e.price_source else "",
            lambda e: e.price_source.value.replace("_", " ") if e.price_source else "",
        ),
        Column(
            "Realized",
            lambda e: e.realized_pnl,
            estimates.event_text,
            numeric=True,
            pnl=True,
            tooltip=estimates.LEGEND,
            basis=lambda e: e.pnl_basis,
            why=estimates.event_why,
        ),
        FIFO_COLUMN,
        Column(
            "IB realized",
            lambda e: e.broker_realized_pnl,
            lambda e: fmt.money(e.broker_realized_pnl),
            numeric=True,
            pnl=True,
            tooltip="IB's own per-fill realized P&L, kept beside ours",
        ),
        Column("Note", lambda e: e.note, lambda e: e.note),
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(lambda e: e.id, parent)


class FillsModel(KeyedTableModel):
    """`executions` of the selected contract."""

    default_order = staticmethod(lambda f: (f.time, f.exec_id))

    columns = (
        Column("Time", lambda f: f.time, lambda f: fmt.local_time(f.time, True), width=120),
        Column("Side", lambda f: f.side.value, lambda f: f.side.value),
        Column("Shares", lambda f: f.shares, lambda f: fmt.quantity(f.shares), numeric=True),
        Column("Price", lambda f: f.price, lambda f: fmt.price(f.price), numeric=True),
        Column(
            "Commission", lambda f: f.commission, lambda f: fmt.money(f.commission), numeric=True
        ),
        Column(
            "IB realized",
            lambda f: f.realized_pnl,
            lambda f: fmt.money(f.realized_pnl),
            numeric=True,
            pnl=True,
        ),
        Column("Exec id", lambda f: f.exec_id, lambda f: f.exec_id),
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(lambda f: f.exec_id, parent)


class RunsModel(KeyedTableModel):
    """`sync_runs`, newest first."""

    default_order = staticmethod(lambda r: -r.id)

    columns = (
        Column(
            "Started",
            lambda r: r.started_at,
            lambda r: fmt.local_time(r.started_at, True),
            width=120,
        ),
        Column("Trigger", lambda r: r.trigger.value, lambda r: r.trigger.value.replace("_", " ")),
        Column("Result", lambda r: r.status.value, lambda r: r.status.value),
        Column("ms", lambda r: r.duration_ms, lambda r: str(r.duration_ms or ""), numeric=True),
        Column("Seen", lambda r: r.positions_seen, lambda r: str(r.positions_seen), numeric=True),
        Column("Opened", lambda r: r.opened, lambda r: str(r.opened), numeric=True),
        Column("Updated", lambda r: r.updated, lambda r: str(r.updated), numeric=True),
        Column("Closed", lambda r: r.closed, lambda r: str(r.closed), numeric=True),
        Column("Missing", lambda r: r.missing, lambda r: str(r.missing), numeric=True),
        Column("Error", lambda r: r.error or "", lambda r: r.error or ""),
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(lambda r: r.id, parent)
