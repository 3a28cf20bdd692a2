"""The Python copy of the database round trip: a lifecycle exactly as reading it back would give.

app.db.store keeps the OPEN lifecycles a sync wrote instead of reading 20,000 rows back before
the next sync; the copy is only worth keeping if it equals, digit for digit and time zone for
time zone, what `queries.positions` / `queries.load_state` would read. These functions predict
that without touching the database: the common case field by field, anything unusual through
the SQLite columns' own bind and result processors and `rows.lifecycle_from`.

Apart from the queries and the writes because nothing here runs SQL, and apart from the row
mapping because it is a prediction about one engine (SQLite's ExactDecimal text and UTC
datetimes), used by one caller; the column order it needs comes from `rows`.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from app.db.repository.rows import POSITION_NAMES, P, lifecycle_from_values, position_values
from app.domain.decimals import decimal_text
from app.domain.values import Lifecycle


def as_stored(life: Lifecycle, position_id: int) -> Lifecycle:
    """The lifecycle exactly as `positions()` / `load_state()` would read it back after it was
    written as row `position_id` (SQLite): equal, and with the same Decimal digits and tz.

    The common case is checked field by field: decimals come back as their canonical text
    (`Decimal(decimal_text(v))`, the very object when already canonical), UTC datetimes as they
    are. Anything unusual (another time zone, an empty sec_type, no last_synced_at) takes the
    real round trip through the columns' processors and `rows.lifecycle_from`.
    """
    c = life.contract
    if not (
        c.sec_type
        and life.last_synced_at is not None
        and life.realized_pnl is not None
        and life.realized_pnl_estimated is not None
        and c.multiplier is not None
        and _decimal_kept(c.multiplier)
        and _decimal_kept(c.strike)
        and _utc(life.opened_at)
        and _utc(life.closed_at)
        and _utc(life.last_synced_at)
        and _utc(life.missing_since)
    ):
        return _round_trip(life, position_id)
    return _stored(life, position_id, life.average_price, life.average_cost,
                   life.current_price, life.market_value, life.unrealized_pnl,
                   life.unrealized_pnl_pct, life.last_synced_at)  # fmt: skip


def with_market(
    life: Lifecycle,
    average_price: Decimal,
    average_cost: Decimal | None,
    current_price: Decimal | None,
    market_value: Decimal | None,
    unrealized_pnl: Decimal | None,
    unrealized_pnl_pct: Decimal | None,
    at: datetime,
) -> Lifecycle:
    """`life` (as stored) once a market update and `last_synced_at = at` are written."""
    assert life.id is not None
    if not _utc(at):
        return as_stored(
            replace(
                life,
                average_price=average_price,
                average_cost=average_cost,
                current_price=current_price,
                market_value=market_value,
                unrealized_pnl=unrealized_pnl,
                unrealized_pnl_pct=unrealized_pnl_pct,
                last_synced_at=at,
            ),
            life.id,
        )
    # Only the new values need checking: the rest of `life` is already as stored.
    return Lifecycle(
        life.id, life.account, life.contract, life.quantity, _decimal_back(average_price),
        life.status, life.opened_at, _maybe_back(average_cost), _maybe_back(current_price),
        _maybe_back(market_value), _maybe_back(unrealized_pnl), _maybe_back(unrealized_pnl_pct),
        life.realized_pnl, life.closed_at, life.close_reason, at, life.missing_since,
        life.entry_trade_id, life.exit_trade_id, life.realized_pnl_estimated, life.pnl_basis,
    )  # fmt: skip


def with_last_synced(life: Lifecycle, at: datetime) -> Lifecycle:
    """`life` (as stored) once its `last_synced_at` moved to `at`."""
    if not _utc(at):
        return _round_trip(replace(life, last_synced_at=at), life.id or 0)
    # Positional, not dataclasses.replace: a full sync does this for every position.
    return Lifecycle(
        life.id, life.account, life.contract, life.quantity, life.average_price, life.status,
        life.opened_at, life.average_cost, life.current_price, life.market_value,
        life.unrealized_pnl, life.unrealized_pnl_pct, life.realized_pnl, life.closed_at,
        life.close_reason, at, life.missing_since, life.entry_trade_id, life.exit_trade_id,
        life.realized_pnl_estimated, life.pnl_basis,
    )  # fmt: skip


def _stored(
    life: Lifecycle,
    position_id: int,
    average_price: Decimal,
    average_cost: Decimal | None,
    current_price: Decimal | None,
    market_value: Decimal | None,
    unrealized_pnl: Decimal | None,
    unrealized_pnl_pct: Decimal | None,
    last_synced_at: datetime,
) -> Lifecycle:
    # The contract and the datetimes are already known to come back unchanged.
    return Lifecycle(
        position_id, life.account, life.contract, _decimal_back(life.quantity),
        _decimal_back(average_price), life.status, life.opened_at, _maybe_back(average_cost),
        _maybe_back(current_price), _maybe_back(market_value), _maybe_back(unrealized_pnl),
        _maybe_back(unrealized_pnl_pct), _decimal_back(life.realized_pnl), life.closed_at,
        life.close_reason, last_synced_at, life.missing_since, life.entry_trade_id,
        life.exit_trade_id, _decimal_back(life.realized_pnl_estimated), life.pnl_basis,
    )  # fmt: skip


def _utc(moment: datetime | None) -> bool:
    """True when the database gives `moment` back as the very same value (or it is None)."""
    return moment is None or (
        moment.__class__ is datetime and moment.tzinfo is UTC and not moment.fold
    )


def _decimal_kept(value: Decimal | None) -> bool:
    """True when the database gives `value` back as the same digits (canonical text)."""
    if value is None:
        return True
    if value.__class__ is not Decimal or not value.is_finite():
        return False
    text = str(value)
    last = text[-1]
    if "E" in text or "e" in text:
        return False
    return "0" < last <= "9" or (last == "0" and "." not in text and text != "-0")


def _decimal_back(value: Decimal) -> Decimal:
    """What the database gives back for a stored decimal (ExactDecimal on SQLite)."""
    if _decimal_kept(value):
        return value
    return Decimal(decimal_text(Decimal(value)))  # an int too, as ExactDecimal binds it


def _maybe_back(value: Decimal | None) -> Decimal | None:
    return None if value is None else _decimal_back(value)


def _round_trip(life: Lifecycle, position_id: int) -> Lifecycle:
    """Through the SQLite columns' bind and result processors, then `rows.lifecycle_from`."""
    values = []
    for value, (bind, result) in zip(position_values(life, 0), _sqlite_processors(), strict=True):
        stored = bind(value) if bind is not None and value is not None else value
        values.append(result(stored) if result is not None and stored is not None else stored)
    return lifecycle_from_values(position_id, life.account, values)


@functools.cache
def _sqlite_processors() -> list[tuple[Any, Any]]:
    """(bind, result) processors of the POSITION_NAMES columns on SQLite."""
    dialect = sqlite_dialect()
    out = []
    for name in POSITION_NAMES:
        kind = P.c[name].type.dialect_impl(dialect)
        out.append((kind.bind_processor(dialect), kind.result_processor(dialect, None)))
    return out
