"""How values are written into TWS fields: plain decimals, Java-style doubles, unset markers."""

from __future__ import annotations

import math
from decimal import Decimal

# Java's Double.toString(Double.MAX_VALUE): what TWS sends for "unset" (tws-protocol.md §2).
UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INT = "2147483647"


def quantity(value: Decimal) -> str:
    """A Decimal-typed field (positions, shares): plain text, never an exponent."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def double(value: Decimal | float | None) -> str:
    """A double-typed field. None is TWS's unset; NaN and infinities use Java's spelling."""
    if value is None:
        return UNSET_DOUBLE
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    text = repr(number)
    if "e" in text or "E" in text:
        # Python writes 1e-05 / 1e+16; keep the wire free of exponents like TWS's own doubles.
        text = format(Decimal(text), "f")
    return text


def money(value: Decimal) -> str:
    """An account value (free text on the wire): two decimals, as TWS shows cash amounts."""
    if not value.is_finite():
        return double(value)
    return f"{value:.2f}"


def boolean(value: bool) -> str:
    """Booleans are `0`/`1`: clients parse them with int()."""
    return "1" if value else "0"


def mask_account(account: str) -> str:
    """An account code for log lines: at most its last three characters."""
    return "…" + account[-3:] if account else "<none>"
