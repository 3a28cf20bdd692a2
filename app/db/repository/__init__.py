"""The ledger repository: load cached state, apply a sync plan in one transaction, queries.

Every function takes the Session that `Database.run` / `run_sync` opens inside one transaction
(so a plan, its events, its fills and its `sync_runs` row commit together — DESIGN rule 7).
Rows are read with Core selects and turned into domain values here; ORM rows never leave.

Split by concern; `queries`, `writes` and `round_trip` share only `rows`:
- `rows`: row mapping, the only code that knows column order (columns ↔ domain values);
- `queries`: reads — a sync's state and histories, and what every reader of the ledger asks;
- `writes`: a sync plan, a re-fold, a Mark closed, fills and observations (the bulk paths);
- `round_trip`: the Python copy of the database round trip behind app.db.store's kept copy.

This module re-exports the names callers outside the package use (`repository.positions(…)`).
A test or probe that replaces a function must patch it where it is called from (the
submodule), not here.
"""

from __future__ import annotations

from app.db.repository.queries import (
    account_codes,
    all_events,
    all_fills,
    events,
    fills_for,
    known_fills,
    last_success,
    ledger_status,
    lifecycles_for,
    load_histories,
    load_state,
    missing_at_broker,
    position,
    position_order,
    positions,
    positions_besides,
    realized_amounts,
    realized_total,
    sync_runs,
    sync_stats,
)
from app.db.repository.round_trip import as_stored, with_last_synced, with_market
from app.db.repository.writes import (
    account_ids,
    apply_manual_change,
    apply_plan,
    apply_refold,
    insert_fills,
    record_observation,
    record_run,
)

__all__ = [
    "account_codes",
    "account_ids",
    "all_events",
    "all_fills",
    "apply_manual_change",
    "apply_plan",
    "apply_refold",
    "as_stored",
    "events",
    "fills_for",
    "insert_fills",
    "known_fills",
    "last_success",
    "ledger_status",
    "lifecycles_for",
    "load_histories",
    "load_state",
    "missing_at_broker",
    "position",
    "position_order",
    "positions",
    "positions_besides",
    "realized_amounts",
    "realized_total",
    "record_observation",
    "record_run",
    "sync_runs",
    "sync_stats",
    "with_last_synced",
    "with_market",
]
