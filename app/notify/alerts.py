"""AlertTracker: which conditions are NEW and deserve a notification, decided without Qt.

The window feeds it every sync result, every connection status and, after syncs, the ledger's
missing-at-broker warnings; it answers with the alerts to show. Each condition is told once:
  - a missing-at-broker warning not seen before (a lifecycle and the moment it went missing;
    the warnings present when the window starts are the baseline, not news);
  - syncing failing `failure_threshold` times in a row (once; a successful sync re-arms it;
    skipped runs — TWS not reachable — neither count nor re-arm: the banner says that);
  - a drop of a working connection that the app did not ask for, during US market hours (once
    per drop; reconnecting re-arms it);
  - a realized-P&L difference from IB not seen before (by account, contract and fills).
What was seen is remembered even while a kind is switched off, so switching it on never
replays old news.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from app.domain.connection import ConnectionState, ConnectionStatus
from app.domain.decimals import decimal_text
from app.domain.plan import PnlMismatch
from app.domain.values import Lifecycle, SyncStatus
from app.notify.market_hours import is_market_hours
from app.settings import Settings
from app.sync.results import SyncResult

LISTED = 5
"""Items named in one alert's text; the rest are counted."""


class AlertKind(StrEnum):
    """What a notification is about (each kind has its own switch in the settings)."""

    MISSING = "missing"
    SYNC_FAILURES = "sync_failures"
    DISCONNECT = "disconnect"
    PNL_MISMATCH = "pnl_mismatch"


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification: a short title and a sentence or two saying what to do."""

    kind: AlertKind
    title: str
    message: str


@dataclass(frozen=True, slots=True)
class AlertOptions:
    """Which kinds are shown (app.settings' `notify_*`)."""

    missing: bool = True
    sync_failures: bool = True
    failure_threshold: int = 3
    disconnect: bool = True
    pnl_mismatch: bool = True


def alert_options(settings: Settings) -> AlertOptions:
    """The switches from the user's settings."""
    return AlertOptions(
        missing=settings.notify_missing,
        sync_failures=settings.notify_sync_failures,
        failure_threshold=settings.notify_failure_threshold,
        disconnect=settings.notify_disconnect,
        pnl_mismatch=settings.notify_pnl_mismatch,
    )


_MissingId = tuple[int | None, datetime | None]
_MismatchId = tuple[str, int, tuple[str, ...]]


class AlertTracker:
    """Remembers what was already told; each `observe_*` returns the alerts for what is new."""

    def __init__(self, options: AlertOptions | None = None) -> None:
        self.options = options or AlertOptions()
        self._missing: set[_MissingId] | None = None  # None: no baseline yet
        self._failures = 0
        self._failure_told = False
        self._mismatches: set[_MismatchId] = set()
        self._connected = False

    # ------------------------------------------------------------------ missing at broker
    def observe_missing(self, warnings: Iterable[Lifecycle]) -> list[Alert]:
        """The ledger's current missing-at-broker warnings; the first call sets the baseline."""
        current = {(p.id, p.missing_since): p for p in warnings}
        known, self._missing = self._missing, set(current)
        if known is None:
            return []
        new = [p for ident, p in current.items() if ident not in known]
        if not new or not self.options.missing:
            return []
        lines = [
            f"{p.account} {p.contract.local_symbol or p.contract.symbol} {decimal_text(p.quantity)}"
            for p in new[:LISTED]
        ]
        more = f" and {len(new) - LISTED} more" if len(new) > LISTED else ""
        title = (
            "A position is missing at IB"
            if len(new) == 1
            else f"{len(new)} positions missing at IB"
        )
        return [
            Alert(
                AlertKind.MISSING,
                title,
                f"No longer reported by the broker: {', '.join(lines)}{more}. They stay open in "
                "the ledger: check their fills, then Mark closed or wait for them to reappear.",
            )
        ]

    # ------------------------------------------------------------------ sync results
    def observe_result(self, result: SyncResult) -> list[Alert]:
        """A finished sync run: failure streaks and new realized-P&L differences."""
        alerts: list[Alert] = []
        if result.status is SyncStatus.OK:
            self._failures, self._failure_told = 0, False
        elif result.status is SyncStatus.FAILED:
            self._failures += 1
            if self._failures >= self.options.failure_threshold and not self._failure_told:
                self._failure_told = True
                if self.options.sync_failures:
                    alerts.append(
                        Alert(
                            AlertKind.SYNC_FAILURES,
                            "Syncing is failing",
                            f"The last {self._failures} syncs failed; the latest: "
                            f"{result.error or 'no reason given'}. The ledger is unchanged "
                            "since the last good sync.",
                        )
                    )
        new = [m for m in result.pnl_mismatches if _mismatch_id(m) not in self._mismatches]
        self._mismatches.update(_mismatch_id(m) for m in new)
        if new and self.options.pnl_mismatch:
            lines = [
                f"{m.symbol} in {m.account}: ours {decimal_text(m.ours)}, "
                f"IB {decimal_text(m.broker)}"
                for m in new[:LISTED]
            ]
            more = f"; and {len(new) - LISTED} more" if len(new) > LISTED else ""
            alerts.append(
                Alert(
                    AlertKind.PNL_MISMATCH,
                    "Realized P&L differs from IB",
                    f"{'; '.join(lines)}{more}. The position's history shows IB's figure "
                    "beside ours.",
                )
            )
        return alerts

    # ------------------------------------------------------------------ connection
    def reset_missing_baseline(self) -> None:
        """The next `observe_missing` is a new baseline (another ledger, or a fresh start)."""
        self._missing = None

    def expect_disconnect(self) -> None:
        """The app itself is about to disconnect (quitting, new settings): not news."""
        self._connected = False

    def observe_status(self, status: ConnectionStatus, now: datetime | None = None) -> list[Alert]:
        """A connection status change; `now` (aware) decides market hours."""
        if status.state is ConnectionState.CONNECTED:
            self._connected = True
            return []
        if not self._connected:
            return []  # still offline, or retrying after a drop already judged
        self._connected = False
        moment = now or datetime.now(UTC)
        if not self.options.disconnect or not is_market_hours(moment):
            return []
        if status.state is ConnectionState.IB_LOST:
            title = "TWS lost its connection to IB"
            what = "Syncing is paused until IB is back"
        else:
            title = "Disconnected from TWS"
            what = "The window shows cached positions; syncing resumes when TWS is back"
        detail = f" ({status.message})" if status.message else ""
        message = f"The connection dropped during market hours{detail}. {what}."
        return [Alert(AlertKind.DISCONNECT, title, message)]


def _mismatch_id(mismatch: PnlMismatch) -> _MismatchId:
    return (mismatch.account, mismatch.con_id, tuple(sorted(mismatch.exec_ids)))
