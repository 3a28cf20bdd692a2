"""Which conditions deserve a desktop notification: pure decisions, no Qt (app/ui shows them)."""

from __future__ import annotations

from app.notify.alerts import Alert, AlertKind, AlertOptions, AlertTracker, alert_options
from app.notify.market_hours import is_market_hours

__all__ = [
    "Alert",
    "AlertKind",
    "AlertOptions",
    "AlertTracker",
    "alert_options",
    "is_market_hours",
]
