"""The JSON documents scripts read (`status --json`, `positions --json`, the local API).

One definition shared by the command line and the local API, so both print the same document.
Decimals are written as text (exact, no float noise) and times as ISO 8601 UTC with a Z suffix,
so a script never loses a digit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from app.domain.decimals import decimal_text
from app.domain.records import LedgerStatus, SyncRun, SyncStats
from app.domain.values import Lifecycle

if TYPE_CHECKING:
    # An annotation only: app.domain.lots brings the FIFO fold (issue 19: not before the first
    # paint of the cached ledger).
    from app.domain.lots import OpenLot


def dec(value: Decimal | None) -> str | None:
    """Exact decimal text without exponent or trailing zeros (None stays None)."""
    return decimal_text(value) if value is not None else None


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z suffix."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def lifecycle_json(p: Lifecycle) -> dict[str, Any]:
    """One cached position as the `positions --json` document lists it."""
    c = p.contract
    return {
        "id": p.id,
        "account": p.account,
        "con_id": c.con_id,
        "symbol": c.symbol,
        "sec_type": c.sec_type,
        "currency": c.currency,
        "exchange": c.exchange,
        "local_symbol": c.local_symbol,
        "multiplier": dec(c.multiplier),
        "expiry": c.expiry or None,
        "strike": dec(c.strike),
        "right": c.right or None,
        "quantity": dec(p.quantity),
        "average_price": dec(p.average_price),
        "average_cost": dec(p.average_cost),
        "current_price": dec(p.current_price),
        "market_value": dec(p.market_value),
        "unrealized_pnl": dec(p.unrealized_pnl),
        "unrealized_pnl_pct": dec(p.unrealized_pnl_pct),
        "realized_pnl": dec(p.realized_pnl),
        "status": p.status.value,
        "opened_at": iso(p.opened_at),
        "closed_at": iso(p.closed_at),
        "close_reason": p.close_reason.value if p.close_reason else None,
        "last_synced_at": iso(p.last_synced_at),
        "missing_since": iso(p.missing_since),
        "entry_trade_id": p.entry_trade_id,
        "exit_trade_id": p.exit_trade_id,
        # Last, so the export's columns keep their places (its column order is this one).
        "realized_pnl_estimated": dec(p.realized_pnl_estimated),
        "pnl_basis": p.pnl_basis.value if p.pnl_basis else None,
    }


def lot_json(item: OpenLot, as_of: datetime) -> dict[str, Any]:
    """One open FIFO lot as `positions --lots --json` and `export --lots` list it: cost basis
    incl. commission in the contract's currency (a short's is negative: its proceeds), and how
    far it can be trusted (`basis`: exact from a fill, estimated from IB's average)."""
    p, lot = item.lifecycle, item.lot
    c = p.contract
    return {
        "position_id": p.id,
        "account": p.account,
        "con_id": c.con_id,
        "symbol": c.symbol,
        "local_symbol": c.local_symbol,
        "sec_type": c.sec_type,
        "currency": c.currency,
        "multiplier": dec(c.multiplier),
        "acquired_at": iso(lot.acquired_at),
        "quantity": dec(lot.quantity),
        "cost_basis": dec(lot.cost),
        "unit_cost": dec(lot.unit_cost(c.multiplier)),
        "basis": lot.basis.value,
        "holding_days": lot.holding_days(as_of),
        "term": "long" if lot.long_term(as_of) else "short",
        "exec_id": lot.exec_id,
    }


def run_json(run: SyncRun | None) -> dict[str, Any] | None:
    """One sync run."""
    if run is None:
        return None
    return {
        "id": run.id,
        "trigger": run.trigger.value,
        "status": run.status.value,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "duration_ms": run.duration_ms,
        "positions_seen": run.positions_seen,
        "opened": run.opened,
        "updated": run.updated,
        "closed": run.closed,
        "missing": run.missing,
        "error": run.error,
    }


def stats_json(stats: SyncStats) -> dict[str, Any]:
    """Run statistics over the recent window."""
    return {
        "runs": stats.runs,
        "ok": stats.ok,
        "failed": stats.failed,
        "skipped": stats.skipped,
        "success_rate": stats.success_rate,
        "mean_duration_ms": stats.mean_duration_ms,
        "max_duration_ms": stats.max_duration_ms,
    }


def realized_json(status: LedgerStatus) -> dict[str, Any]:
    """The status document's realized P&L: per currency (never one figure of several), the
    estimated part and the count of unpriced amounts apart, and a base-currency figure only
    where IB's rates cover every currency."""
    by = status.realized_by_currency
    conversion = status.realized_in_base
    base = conversion.total
    return {
        "cost_basis": status.cost_basis.value,
        "realized_pnl_by_currency": {cur: dec(t.total) for cur, t in by.items()},
        "realized_pnl_estimated_by_currency": {cur: dec(t.estimated) for cur, t in by.items()},
        "realized_pnl_unknown_by_currency": {cur: t.unknown_count for cur, t in by.items()},
        "realized_pnl_base": None
        if base is None
        else {
            "currency": base.base_currency,
            "total": dec(base.total),
            "estimated": dec(base.estimated),
            "unknown": base.unknown_count,
            "rates_at": iso(base.rates_at),
            "rates": [
                {
                    "account": r.account,
                    "currency": r.currency,
                    "rate": dec(r.rate),
                    "at": iso(r.at),
                }
                for r in base.rates
            ],
        },
        "realized_pnl_base_unavailable": conversion.reason if by else None,
    }


def account_values_json(status: LedgerStatus, now: datetime) -> list[dict[str, Any]]:
    """IB's NetLiq and cash values per account, as stored: the text IB sent, with its time and
    age. Listed, never summed: a script adds what it may (one currency at a time)."""
    accounts: dict[str, list[dict[str, Any]]] = {}
    for v in status.account_values:
        accounts.setdefault(v.account, []).append(
            {
                "tag": v.tag,
                "currency": v.currency,
                "value": v.value,
                "reported_at": iso(v.at),
                "age_seconds": round((now - v.at).total_seconds(), 1),
            }
        )
    return [
        {"account": code, "base_currency": status.base_currencies.get(code), "values": rows}
        for code, rows in accounts.items()
    ]


def status_json(status: LedgerStatus, now: datetime) -> dict[str, Any]:
    """The `status --json` document (documented in the README)."""
    synced = status.last_success.finished_at if status.last_success else None
    return {
        "database": status.database,
        "revision": status.revision,
        "accounts": list(status.accounts),
        "open_positions": status.open_positions,
        "closed_positions": status.closed_positions,
        **realized_json(status),
        "last_synced_at": iso(synced),
        "last_synced_age_seconds": round((now - synced).total_seconds(), 1) if synced else None,
        "last_run": run_json(status.last_run),
        "stats": stats_json(status.stats),
        "missing_at_broker": [
            {
                "id": p.id,
                "account": p.account,
                "con_id": p.contract.con_id,
                "symbol": p.contract.symbol,
                "local_symbol": p.contract.local_symbol,
                "quantity": dec(p.quantity),
                "missing_since": iso(p.missing_since),
            }
            for p in status.missing_at_broker
        ],
        "stale_prices": [
            {
                "account": stale.account,
                "reason": stale.reason,
                "prices_as_of": iso(stale.as_of),
                "prices_age_seconds": (
                    round((now - stale.as_of).total_seconds(), 1) if stale.as_of else None
                ),
            }
            for stale in status.stale_prices
        ],
        "fills_unavailable": status.last_success.fills_unavailable if status.last_success else None,
        "account_values": account_values_json(status, now),
    }
