"""BrokerPort's vocabulary (errors, connection states, events), imported in this one place.

They live in app.domain.connection (pure values shared with app.sync and app.ui).
"""

from __future__ import annotations

from app.domain.connection import (
    BrokerEvent,
    BrokerEventKind,
    BrokerUnavailableError,
    ConnectionState,
    ConnectionStatus,
    IncompleteSnapshotError,
)

__all__ = [
    "BrokerEvent",
    "BrokerEventKind",
    "BrokerUnavailableError",
    "ConnectionState",
    "ConnectionStatus",
    "IncompleteSnapshotError",
]
