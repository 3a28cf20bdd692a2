"""The user's own resolution: mark an OPEN lifecycle closed at a price they give."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from app.domain.book import sign
from app.domain.plan import LifecycleChange, PlannedEvent
from app.domain.values import (
    CloseReason,
    EventKind,
    Lifecycle,
    PositionStatus,
    PriceSource,
)


class MarkClosedError(ValueError):
    """The lifecycle cannot be marked closed (already closed, bad price or time)."""


def last_known_price(position: Lifecycle) -> Decimal:
    """The price to prefill in the Mark closed dialog: last market price, else the average."""
    price = position.current_price
    if price is not None and price.is_finite() and price > 0:
        return price
    return position.average_price


def mark_closed(
    position: Lifecycle,
    exit_price: Decimal,
    at: datetime,
    note: str = "",
) -> LifecycleChange:
    """Close `position` as the user says: MARKED_CLOSED with realized P&L at `exit_price`."""
    if not position.is_open or position.id is None:
        raise MarkClosedError("only a stored OPEN position can be marked closed")
    if not exit_price.is_finite() or exit_price < 0:
        raise MarkClosedError(f"exit price must be a non-negative number, not {exit_price}")
    if at.tzinfo is None:
        raise MarkClosedError("the close time must carry a time zone")
    if at < position.opened_at:
        raise MarkClosedError("the close time is before the position was opened")
    quantity = position.quantity
    multiplier = position.contract.multiplier
    realized = (exit_price - position.average_price) * abs(quantity) * multiplier * sign(quantity)
    after = replace(
        position,
        quantity=Decimal(0),
        status=PositionStatus.CLOSED,
        closed_at=at,
        close_reason=CloseReason.MANUAL,
        realized_pnl=position.realized_pnl + realized,
        missing_since=None,
    )
    event = PlannedEvent(
        kind=EventKind.MARKED_CLOSED,
        occurred_at=at,
        quantity_before=quantity,
        quantity_after=Decimal(0),
        price=exit_price,
        price_source=PriceSource.MANUAL,
        realized_pnl=realized,
        note=note,
    )
    return LifecycleChange(position, after, (event,))
