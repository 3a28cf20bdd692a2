"""The one canonical text form of an exact decimal (storage, JSON, exports)."""

from __future__ import annotations

from decimal import Decimal


def decimal_text(value: Decimal) -> str:
    """Fixed point, no exponent, no trailing zeros: `Decimal("150.2500")` → `"150.25"`.

    One text per value keeps SQL `=`, unique constraints and GROUP BY correct where the column is
    TEXT (SQLite), and keeps JSON output free of float noise. `Decimal.normalize()` is not used
    because it rounds to the context's precision and may produce an exponent.
    """
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number: it has no exact decimal form")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
