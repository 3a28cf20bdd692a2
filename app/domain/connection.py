"""The broker connection's vocabulary: its states, its live events, and why a snapshot failed.

Pure values shared by the broker adapter (which produces them) and the sync service and window
(which react to them).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.domain.values import PositionKey


class IncompleteSnapshotError(Exception):
    """The broker could not deliver a complete snapshot (DESIGN rule 1); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BrokerUnavailableError(IncompleteSnapshotError):
    """Not connected (TWS closed, refused, client id in use, or IB connectivity lost)."""


class ConnectionState(StrEnum):
    """The broker connection as the banner tells it."""

    DISCONNECTED = "disconnected"  # TWS not reachable; retrying
    CONNECTING = "connecting"
    CONNECTED = "connected"
    IB_LOST = "ib_lost"  # 1100: TWS is up but lost its link to IB; syncing paused
    CLIENT_ID_IN_USE = "client_id_in_use"  # 326: another API client holds our client id


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """A connection state with a human explanation (what to do, when it matters)."""

    state: ConnectionState
    message: str = ""


class BrokerEventKind(StrEnum):
    """A live push from the broker; POSITION and EXECUTION trigger a (debounced) sync."""

    POSITION = "position"  # a position row (quantity or average) was pushed
    MARKET = "market"  # a portfolio row: market price/value moved (no sync needed for it)
    EXECUTION = "execution"  # a fill or its commission report arrived


@dataclass(frozen=True, slots=True)
class BrokerEvent:
    """One live push; `key` lets the service sync just that contract."""

    kind: BrokerEventKind
    key: PositionKey | None
