"""US equity market hours, as the disconnect notification understands them.

Regular session 09:30–16:00 America/New_York, Monday to Friday. Exchange holidays and early
closes are not known here: a disconnect on a holiday afternoon still notifies (harmless).
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
OPEN = time(9, 30)
CLOSE = time(16, 0)


def is_market_hours(now: datetime) -> bool:
    """Whether `now` (timezone-aware, any zone) falls in the regular US equity session."""
    if now.tzinfo is None:
        raise ValueError("is_market_hours needs a timezone-aware datetime")
    local = now.astimezone(NEW_YORK)
    return local.weekday() < 5 and OPEN <= local.time() < CLOSE
