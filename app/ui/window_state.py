"""WindowState: the few facts several of the window's presenters read, in one explicit place.

Each field names who writes it; everyone else only reads. No Qt: plain values the presenters
(app/ui/presenters) and the controller share instead of reaching into one another.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from app.domain.connection import ConnectionState, ConnectionStatus
from app.sync.results import SyncResult
from app.ui.banner import DataGaps


def connecting() -> ConnectionStatus:
    """The status shown before a (new) broker has said anything."""
    return ConnectionStatus(ConnectionState.CONNECTING, "Connecting to TWS…")


@dataclass
class WindowState:
    """Shared by the controller and the presenters (one per window)."""

    status: ConnectionStatus = field(default_factory=connecting)
    """The broker's connection (written by the broker feed)."""
    running: bool = False
    """A sync is running (written by the controller, from the sync service)."""
    reloading: int = 0
    """reload_everything runs in progress (written by the controller)."""
    loaded: asyncio.Event = field(default_factory=asyncio.Event)
    """The ledger has been read and painted once (set by the controller's start)."""
    broker_loaded: bool = False
    """The broker side holds a full live view (written by the broker feed)."""
    missing: int = 0
    """Cached positions the broker does not report: the banner's count (differences)."""
    last_result: SyncResult | None = None
    """The last sync's result (controller)."""
    last_synced: datetime | None = None
    """When the ledger last synced successfully (controller)."""
    gaps: DataGaps | None = None
    """Stale prices / unavailable fills for the banner (controller)."""
