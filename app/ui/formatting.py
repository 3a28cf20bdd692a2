"""How numbers, times and ages read in the window (locale-neutral, exact where it matters)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from app.domain.decimals import decimal_text

_CENT = Decimal("0.01")


def quantity(value: Decimal | None) -> str:
    """Exact: a quantity is never rounded (0.0001 steps stay visible)."""
    return decimal_text(value) if value is not None and value.is_finite() else ""


def money(value: Decimal | None) -> str:
    """Two decimals with thousands separators: 1,234.57 / -12.00."""
    if value is None or not value.is_finite():
        return ""
    return f"{value.quantize(_CENT, ROUND_HALF_EVEN):,.2f}"


def price(value: Decimal | None) -> str:
    """Up to four decimals, at least two: 150.25 / 152.0067 / 0.7500."""
    if value is None or not value.is_finite():
        return ""
    rounded = value.quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
    text = f"{rounded:,.4f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac.ljust(2, '0')}"


def percent(value: Decimal | None) -> str:
    """A percentage with two decimals."""
    if value is None or not value.is_finite():
        return ""
    return f"{value.quantize(_CENT, ROUND_HALF_EVEN):,.2f} %"


def local_time(value: datetime | None, with_seconds: bool = False) -> str:
    """A UTC instant in the workstation's time zone: 24 Nov 10:32."""
    if value is None:
        return ""
    local = value.astimezone()
    return local.strftime("%d %b %H:%M:%S" if with_seconds else "%d %b %H:%M")


def age(seconds: float) -> str:
    """A human age: 8 s, 4 min, 3 h 10 min, 2 d."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        minutes = rest // 60
        return f"{hours:.0f} h {minutes:.0f} min" if minutes else f"{hours:.0f} h"
    return f"{seconds / 86400:.0f} d"


def since(value: datetime, now: datetime | None = None) -> float:
    """Seconds from `value` to now."""
    return ((now or datetime.now(UTC)) - value).total_seconds()
