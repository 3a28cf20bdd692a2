"""What one sync attempt produced, as the service publishes it to the window and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domain.plan import PnlMismatch
from app.domain.values import PositionKey, SyncStatus, SyncTrigger


@dataclass(frozen=True, slots=True)
class SyncResult:
    """The outcome of `PositionSyncService.sync_positions`."""

    trigger: SyncTrigger
    status: SyncStatus
    started_at: datetime
    finished_at: datetime
    run_id: int | None = None
    positions_seen: int = 0
    opened: int = 0
    updated: int = 0
    closed: int = 0
    missing: int = 0
    skipped_rows: int = 0
    error: str | None = None
    pnl_mismatches: tuple[PnlMismatch, ...] = ()
    selective: bool = False
    ledger_error: bool = False
    """True when the snapshot was fine but the ledger could not be written (nothing changed)."""
    changed_keys: frozenset[PositionKey] = frozenset()
    """Keys whose lifecycles changed (events written): what a view must reload."""
    superseded: bool = False
    """Another syncer sharing the ledger committed a newer snapshot instead (not a failure)."""
    market_moved: bool = False
    """Market data of unchanged positions moved too (a view reloads everything then)."""
    held_fills: tuple[str, ...] = ()
    """execIds booked ahead of the broker's position rows, which did not show them yet (the
    rows lag the executions answer); the next sync's rows confirm them."""
    stale_prices: tuple[tuple[str, str], ...] = ()
    """(account, why) whose market data could not be refreshed: their last prices stand."""
    fills_unavailable: str | None = None
    """Why there was no executions answer: changes are estimates until the fills arrive."""

    @property
    def ok(self) -> bool:
        """True when a complete snapshot was committed."""
        return self.status is SyncStatus.OK

    @property
    def duration_ms(self) -> int:
        """Wall time in whole milliseconds."""
        return round((self.finished_at - self.started_at).total_seconds() * 1000)

    def summary(self) -> str:
        """One line for the terminal and the log."""
        if not self.ok:
            return f"sync {self.status.value} ({self.trigger.value}): {self.error}"
        text = (
            f"sync ok ({self.trigger.value}) in {self.duration_ms} ms: "
            f"{self.positions_seen} positions seen, {self.opened} opened, "
            f"{self.updated} updated, {self.closed} closed, {self.missing} missing at broker"
        )
        if self.skipped_rows:
            text += f", {self.skipped_rows} bad rows skipped"
        if self.pnl_mismatches:
            text += f", {len(self.pnl_mismatches)} realized P&L differences from IB"
        if self.held_fills:
            text += f", {len(self.held_fills)} fills ahead of the position rows (held)"
        if self.stale_prices:
            # Masked: the summary goes to the log (STYLE house rule 6).
            accounts = ", ".join("…" + a[-3:] for a, _ in self.stale_prices)
            text += f"; prices stale for {accounts} ({self.stale_prices[0][1]})"
        if self.fills_unavailable:
            text += (
                f"; fills unavailable ({self.fills_unavailable}): changes are estimates until "
                "they arrive"
            )
        return text
