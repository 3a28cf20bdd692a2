"""The API's own JSON documents (the ledger's are app.domain.documents, shared with the CLI)."""

from __future__ import annotations

from typing import Any

from app.domain.documents import dec, iso
from app.sync.results import SyncResult


def sync_result_json(result: SyncResult) -> dict[str, Any]:
    """One sync run's outcome, as `POST /api/sync/positions` answers it."""
    return {
        "ok": result.ok,
        "status": result.status.value,
        "trigger": result.trigger.value,
        "run_id": result.run_id,
        "started_at": iso(result.started_at),
        "finished_at": iso(result.finished_at),
        "duration_ms": result.duration_ms,
        "positions_seen": result.positions_seen,
        "opened": result.opened,
        "updated": result.updated,
        "closed": result.closed,
        "missing": result.missing,
        "skipped_rows": result.skipped_rows,
        "error": result.error,
        "pnl_mismatches": [
            {
                "account": m.account,
                "con_id": m.con_id,
                "symbol": m.symbol,
                "ours": dec(m.ours),
                "broker": dec(m.broker),
                "exec_ids": list(m.exec_ids),
            }
            for m in result.pnl_mismatches
        ],
        "summary": result.summary(),
    }
