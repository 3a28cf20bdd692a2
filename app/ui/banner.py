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
from app.ui.palette import LIGHT, Colours


class Level(StrEnum):
    """The banner's colour, by how much the trader should worry."""

    LIVE = "live"
    SYNCING = "syncing"
    OFFLINE = "offline"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class BannerState:
    """What the banner shows."""

    level: Level
    text: str


READING = "reading the cached ledger…"
DEMO_PREFIX = "DEMO (made-up positions, the demo's own ledger) · "


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


def _cache_age(last_synced: datetime | None, now: datetime, *, ledger_read: bool) -> str:
    if last_synced is None:
        # Before the ledger is read, its last sync is not known yet: never claim there is none.
        return "no complete sync yet" if ledger_read else READING
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
    ledger_read: bool = True,
    demo: bool = False,
    gaps: DataGaps | None = None,
    syncer: str | None = None,
) -> BannerState:
    """The banner for this moment (a pure function of the app's state).

    `ledger_read` is false until the cached ledger (and its last sync) has been read;
    `demo` prefixes every text with DEMO (the demo gateway and the demo's own ledger);
    `syncer` names the process that syncs the ledger when this window only views it."""
    if syncer is not None:
        state = _viewer_state(syncer, running, last_result, last_synced, now, ledger_read)
    else:
        state = _connection_state(status, running, last_result, last_synced, now, ledger_read)
    gap = gap_text(gaps, now) if status.state is ConnectionState.CONNECTED else ""
    if gap:
        level = Level.WARNING if state.level is Level.LIVE else state.level
        state = BannerState(level, state.text + gap)
    if missing:
        plural = "s" if missing != 1 else ""
        text = f"{state.text} · ⚠ {missing} position{plural} missing at broker"
        level = Level.WARNING if state.level is Level.LIVE else state.level
        state = BannerState(level, text)
    if demo:
        state = BannerState(state.level, DEMO_PREFIX + state.text)
    return state


def _viewer_state(
    syncer: str,
    running: bool,
    last_result: SyncResult | None,
    last_synced: datetime | None,
    now: datetime,
    ledger_read: bool,
) -> BannerState:
    """Another process syncs the ledger (app.ownership): say which, and how fresh it is."""
    cache = _cache_age(last_synced, now, ledger_read=ledger_read)
    who = f"{syncer} syncs this ledger; this window views it and takes over when it exits"
    if running:
        return BannerState(Level.SYNCING, f"Viewer — asked {syncer} to sync… · {cache}")
    if last_result is not None and not last_result.ok and not last_result.superseded:
        return BannerState(Level.ERROR, f"Viewer — sync failed: {last_result.error} · {who}")
    if last_synced is None:
        return BannerState(Level.SYNCING, f"Viewer — {cache} · {who}")
    return BannerState(
        Level.LIVE, f"Viewer — synced {fmt.age(fmt.since(last_synced, now))} ago · {who}"
    )


def _connection_state(
    status: ConnectionStatus,
    running: bool,
    last_result: SyncResult | None,
    last_synced: datetime | None,
    now: datetime,
    ledger_read: bool,
) -> BannerState:
    cache = _cache_age(last_synced, now, ledger_read=ledger_read)
    if not ledger_read and status.state is not ConnectionState.CONNECTED:
        return BannerState(Level.SYNCING, f"Starting — {cache}")
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
    elif last_synced is None and not ledger_read:
        state = BannerState(Level.SYNCING, f"Connected — {cache}")
    elif last_synced is None:
        state = BannerState(Level.SYNCING, "Connected — waiting for the first complete sync")
    else:
        state = BannerState(Level.LIVE, f"Live — synced {fmt.age(fmt.since(last_synced, now))} ago")
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
        self.colours = LIGHT

    def set_colours(self, colours: Colours) -> None:
        """Use the colours of the palette in use (light or dark); repaints."""
        if colours == self.colours:
            return
        self.colours = colours
        state, self.state = self.state, None
        if state is not None:
            self.show_state(state)

    def show_state(self, state: BannerState) -> None:
        """Paint `state` (colour plus words; the level is also in the accessible name)."""
        if state == self.state:
            return
        self.state = state
        background, foreground, border = self.colours.banner[state.level.value]
        self.setStyleSheet(
            f"QLabel#syncBanner {{ background: {background}; color: {foreground};"
            f" border: 1px solid {border}; border-radius: 4px; padding: 6px 10px;"
            " font-weight: 600; }"
        )
        self.setText(state.text)
        self.setAccessibleName(f"Sync status: {state.level.value}")
        self.setToolTip(state.text)
