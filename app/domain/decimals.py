"""The one canonical text form of an exact decimal (storage, JSON, exports), and the fixed scale
of every decimal the ledger derives."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

DERIVED_SCALE = Decimal("1E-10")
"""Derived decimals — averages, implied prices, VWAPs, realized P&L — carry at most 10 decimal
places: a result with more is rounded half-even to 10 when it is computed (one with fewer is
kept as it is). Inputs (IB's quantities, prices, avgCost,
commissions) are stored exactly as IB sent them. Without a fixed scale a division such as
`4 / 100` inside an average carried 28-digit artifacts (`0.03999999999999999999999999`) into
the database and exports; 10 places keep a per-share average of a 1e-4-share lot exact to well
below a thousandth of a cent."""


_FITS = 17
"""Values whose leading digit is below 10**_FITS round to DERIVED_SCALE within 28 digits."""


def derived(value: Decimal) -> Decimal:
    """`value` at the ledger's fixed scale for derived decimals (DERIVED_SCALE)."""
    # Most values derived by a division carry 28 digits: rounded, they differ from themselves,
    # which settles it without `as_tuple()` (a tuple of every digit; ~1.5 µs of each of the
    # 20,000 unrealized P&L percentages of a full sync). Equal, the exponent decides. Only
    # below 1e17, where the rounded value fits the context's 28 digits (beyond, quantize
    # would raise for a value the exponent check keeps).
    if value.is_finite() and value.adjusted() < _FITS:
        rounded = value.quantize(DERIVED_SCALE, rounding=ROUND_HALF_EVEN)
        if rounded != value:
            return rounded
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -10:
        return value
    return value.quantize(DERIVED_SCALE, rounding=ROUND_HALF_EVEN)


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
