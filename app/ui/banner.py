"""The banner that always tells the truth: what the cache is, and how fresh.

`banner_state()` is pure (tested without Qt); `SyncBanner` paints it with colour plus words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy

from app.domain.connection import ConnectionState, ConnectionStatus
from app.sync.results import SyncResult
from app.ui import formatting as fmt


class Level(StrEnum):
    """The banner's colour, by how much the trader should worry."""

    LIVE = "live"
    SYNCING = "syncing"
    OFFLINE = "offline"
    WARNING = "warning"
    ERROR = "error"


COLOURS = {
    Level.LIVE: ("#e6f4ea", "#1b5e20", "#81c995"),
    Level.SYNCING: ("#e8f0fe", "#174ea6", "#8ab4f8"),
    Level.OFFLINE: ("#f1f3f4", "#3c4043", "#bdc1c6"),
    Level.WARNING: ("#fef7e0", "#8a4b00", "#fdd663"),
    Level.ERROR: ("#fce8e6", "#a50e0e", "#f28b82"),
}


@dataclass(frozen=True, slots=True)
class BannerState:
    """What the banner shows."""

    level: Level
    text: str


@dataclass(frozen=True, slots=True)
class DataGaps:
    """What the latest committed full sync lacked (issue 16), as the banner tells it.

    `stale` maps each account whose prices TWS did not refresh to (why, when they were last
    refreshed: the end of the previous full sync that had them, None before this session);
    `fills_unavailable` says why the executions answer was missing.
    """

    stale: dict[str, tuple[str, datetime | None]]
    fills_unavailable: str | None = None
    fresh_at: datetime | None = None  # the end of the latest full sync (prices of the others)


def note_result(gaps: DataGaps | None, result: SyncResult) -> DataGaps | None:
    """The gaps after `result`: only a committed full sync says which prices are current."""
    if not result.ok or result.selective:
        return gaps
    before = gaps.stale if gaps is not None else {}
    fresh_before = gaps.fresh_at if gaps is not None else None
    stale = {
        account: (reason, before[account][1] if account in before else fresh_before)
        for account, reason in result.stale_prices
    }
    return DataGaps(stale, result.fills_unavailable, result.finished_at)


def gap_text(gaps: DataGaps | None, now: datetime) -> str:
    """` · ⚠ prices stale for …` and ` · ⚠ fills unavailable …`, or "" when nothing lacked."""
    if gaps is None:
        return ""
    text = ""
    for account, (reason, as_of) in sorted(gaps.stale.items()):
        since = f"as of {fmt.local_time(as_of)}" if as_of else "from before this session"
        text += f" · ⚠ prices stale for {account} ({since}): {reason}"
    if gaps.fills_unavailable:
        text += (
            " · ⚠ fills unavailable — changes since are estimates until they arrive "
            f"({gaps.fills_unavailable})"
        )
    return text


def _cache_age(last_synced: datetime | None, now: datetime) -> str:
    if last_synced is None:
        return "no complete sync yet"
    return (
        f"cached positions from {fmt.local_time(last_synced)} "
        f"({fmt.age(fmt.since(last_synced, now))} old)"
    )


def banner_state(
    status: ConnectionStatus,
    *,
    running: bool,
    last_result: SyncResult | None,
    last_synced: datetime | None,
    missing: int,
    now: datetime,
    gaps: DataGaps | None = None,
) -> BannerState:
    """The banner for this moment (a pure function of the app's state)."""
    cache = _cache_age(last_synced, now)
    if status.state is ConnectionState.CLIENT_ID_IN_USE:
        state = BannerState(Level.ERROR, f"Client id in use — {status.message} · {cache}")
    elif status.state is ConnectionState.IB_LOST:
        state = BannerState(
            Level.WARNING,
            f"Broker lost connection to IB — syncing paused until TWS reconnects · {cache}",
        )
    elif status.state is not ConnectionState.CONNECTED:
        reason = status.message or "TWS not reachable"
        state = BannerState(Level.OFFLINE, f"Offline — TWS not reachable; {cache}. {reason}")
    elif running:
        synced = (
            f"last synced {fmt.age(fmt.since(last_synced, now))} ago" if last_synced else "first"
        )
        state = BannerState(Level.SYNCING, f"Syncing… ({synced})")
    elif last_result is not None and not last_result.ok and not last_result.superseded:
        state = BannerState(Level.ERROR, f"Sync failed — {last_result.error} · {cache}")
    elif last_synced is None:
        state = BannerState(Level.SYNCING, "Connected — waiting for the first complete sync")
    else:
        state = BannerState(Level.LIVE, f"Live — synced {fmt.age(fmt.since(last_synced, now))} ago")
    gap = gap_text(gaps, now) if status.state is ConnectionState.CONNECTED else ""
    if gap:
        level = Level.WARNING if state.level is Level.LIVE else state.level
        state = BannerState(level, state.text + gap)
    if missing:
        plural = "s" if missing != 1 else ""
        text = f"{state.text} · ⚠ {missing} position{plural} missing at broker"
        level = Level.WARNING if state.level is Level.LIVE else state.level
        state = BannerState(level, text)
    return state


class SyncBanner(QLabel):
    """The banner widget (objectName `syncBanner`)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("syncBanner")
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.state: BannerState | None = None

    def show_state(self, state: BannerState) -> None:
        """Paint `state` (colour plus words; the level is also in the accessible name)."""
        if state == self.state:
            return
        self.state = state
        background, foreground, border = COLOURS[state.level]
        self.setStyleSheet(
            f"QLabel#syncBanner {{ background: {background}; color: {foreground};"
            f" border: 1px solid {border}; border-radius: 4px; padding: 6px 10px;"
            " font-weight: 600; }"
        )
        self.setText(state.text)
        self.setAccessibleName(f"Sync status: {state.level.value}")
        self.setToolTip(state.text)
