"""The fields of one Flex row: numbers, times and contracts, converted once (IB's text → the
ledger's exact values). A field that cannot be used raises RowError; the document reader adds
the file, line and row to its message."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.domain.values import ONE, Contract

DERIVATIVES = frozenset({"OPT", "FOP", "FUT", "WAR", "IOPT", "FSFOP", "FSOPT"})
"""Asset categories whose Flex `symbol` is the contract's local symbol (e.g. "ESZ6", the OCC
option symbol) and whose API `symbol` is Flex's `underlyingSymbol`."""

_ZONE_NAMES = {"EST": "America/New_York", "EDT": "America/New_York", "ET": "America/New_York"}

_MOMENT = re.compile(
    r"^(\d{4})-?(\d{2})-?(\d{2})"  # yyyyMMdd or yyyy-MM-dd
    r"(?:[;, ]\s*(\d{2}):?(\d{2}):?(\d{2}))?"  # ;HHmmss or ;HH:mm:ss (also "," or " ")
    r"(?:\s+([A-Za-z][A-Za-z0-9/_+-]*))?$"  # a zone, when the statement names one
)


class RowError(Exception):
    """One row's field cannot be used (the message says which and why)."""


def required(attrs: dict[str, str], name: str) -> str:
    """The attribute's text; RowError when the query left it out or empty."""
    value = attrs.get(name, "").strip()
    if not value:
        raise RowError(f"has no {name} (add it to the Flex query's fields)")
    return value


def number(attrs: dict[str, str], name: str) -> Decimal:
    """The attribute as an exact decimal (IB's own digits)."""
    text = required(attrs, name).replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowError(f"{name} {text!r} is not a number") from None
    if not value.is_finite():
        raise RowError(f"{name} {text!r} is not a finite number")
    return value


def moment(text: str, zone: ZoneInfo, *, date_only_at: time | None = None) -> datetime:
    """A Flex date/time (`yyyyMMdd;HHmmss`, in `zone` unless it names its own) as UTC.

    A row that carries a date only is read at `date_only_at` (local) when the caller says what
    that means for it, else refused. A local time inside the hour the clocks skip does not
    exist: refused. One in the hour they repeat is read as the earlier (the same rules as live
    execution times, app.broker).
    """
    match = _MOMENT.match(text.strip())
    if match is None or (match[4] is None and date_only_at is None):
        raise RowError(f"dateTime {text!r} is not yyyyMMdd;HHmmss")
    year, month, day, hour, minute, second, named = match.groups()
    if hour is None:
        assert date_only_at is not None
        hour, minute = str(date_only_at.hour), str(date_only_at.minute)
        second = str(date_only_at.second)
    if named:
        try:
            zone = ZoneInfo(_ZONE_NAMES.get(named.upper(), named))
        except (ZoneInfoNotFoundError, ValueError):
            raise RowError(f"dateTime {text!r} names an unknown time zone") from None
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except ValueError:
        raise RowError(f"dateTime {text!r} is not a real date and time") from None
    utc = local.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise RowError(f"dateTime {text!r} does not exist in {zone.key} (the clocks skip it)")
    return utc


def contract(attrs: dict[str, str]) -> Contract:
    """The row's contract, named as the API names it (conId, symbol, localSymbol, …)."""
    con_id_text = required(attrs, "conid")
    if not con_id_text.isdigit() or int(con_id_text) <= 0:
        raise RowError(f"conid {con_id_text!r} is not an IB contract id")
    sec_type = attrs.get("assetCategory", "").strip() or "STK"
    symbol = required(attrs, "symbol")
    underlying = attrs.get("underlyingSymbol", "").strip()
    api_symbol = underlying if sec_type in DERIVATIVES and underlying else symbol
    multiplier = ONE
    if attrs.get("multiplier", "").strip():
        multiplier = number(attrs, "multiplier")
        if multiplier <= 0:
            raise RowError(f"multiplier {attrs['multiplier']} is not positive")
    strike = None
    if sec_type in DERIVATIVES and attrs.get("strike", "").strip():
        strike = number(attrs, "strike") or None
    right = attrs.get("putCall", "").strip()[:1].upper()
    return Contract(
        con_id=int(con_id_text),
        symbol=api_symbol,
        sec_type=sec_type,
        currency=required(attrs, "currency"),
        exchange=attrs.get("listingExchange", "").strip(),
        local_symbol=symbol,
        multiplier=multiplier,
        expiry=re.sub(r"\D", "", attrs.get("expiry", "")),
        strike=strike,
        right=right if right in ("C", "P") else "",
    )
