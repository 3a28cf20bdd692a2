"""The user's own resolution: mark an OPEN lifecycle closed at a price they give.

A Mark closed is decided on what the window showed, which a sync may have changed since (item 8
of issue 15: a fill booked between the window's load and the click made the close use the old
quantity). So the window sends the `LifecycleVersion` it displayed with its request, and the
write (app.db.manual) re-reads the lifecycle under the sync's locks and refuses with
`LifecycleChangedError` unless it is still exactly that version (`decide_mark_closed`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from app.domain.book import sign
from app.domain.plan import LifecycleChange, PlannedEvent
from app.domain.records import StoredEvent
from app.domain.values import (
    CloseReason,
    EventKind,
    Lifecycle,
    PnlBasis,
    PositionStatus,
    PriceSource,
    worse_basis,
)


class MarkClosedError(ValueError):
    """The lifecycle cannot be marked closed (already closed, bad price or time)."""


class LifecycleChangedError(MarkClosedError):
    """The lifecycle is no longer what the user saw: reload and decide again."""


@dataclass(frozen=True, slots=True)
class LifecycleVersion:
    """What the user saw of one stored lifecycle when deciding to close it.

    `last_event_id` is the identity that matters: events are append-only and every write of a
    sync or a manual change that moves a lifecycle adds one, so an unchanged last event id means
    nothing was booked since. Quantity and realized P&L are compared as well, so the refusal can
    say what changed (and so a row written without an event would still be caught).
    """

    position_id: int
    account: str
    symbol: str
    quantity: Decimal
    realized_pnl: Decimal
    last_event_id: int | None

    @classmethod
    def of(cls, position: Lifecycle, last_event_id: int | None) -> LifecycleVersion:
        """The version of a stored lifecycle as displayed, with the last event the user saw."""
        if position.id is None:
            raise MarkClosedError("only a stored position can be marked closed")
        contract = position.contract
        return cls(
            position_id=position.id,
            account=position.account,
            symbol=contract.local_symbol or contract.symbol,
            quantity=position.quantity,
            realized_pnl=position.realized_pnl,
            last_event_id=last_event_id,
        )


@dataclass(frozen=True, slots=True)
class MarkClosedRequest:
    """The user's Mark closed: the version they decided on, and the exit they gave."""

    seen: LifecycleVersion
    exit_price: Decimal
    at: datetime
    """Aware: the close time the user gave."""
    note: str = ""


def last_known_price(position: Lifecycle) -> Decimal:
    """The price to prefill in the Mark closed dialog: last market price, else the average."""
    price = position.current_price
    if price is not None and price.is_finite() and price > 0:
        return price
    return position.average_price


_WHY = {
    EventKind.OPENED: "a sync opened it again",
    EventKind.INCREASED: "a sync booked a fill",
    EventKind.REDUCED: "a sync booked a fill",
    EventKind.CLOSED: "a sync closed it",
    EventKind.SPLIT: "a sync booked a split",
    EventKind.ADJUSTED: "a sync adjusted its average",
    EventKind.MISSING: "a sync found it missing at the broker",
    EventKind.REAPPEARED: "the broker reports it again",
    EventKind.MARKED_CLOSED: "it was marked closed meanwhile",
}


def _why(last_event: StoredEvent | None) -> str:
    if last_event is None:
        return "its history changed"
    why = _WHY.get(last_event.kind, f"a {last_event.kind.value} event was booked")
    if last_event.kind in (EventKind.INCREASED, EventKind.REDUCED) and not last_event.exec_ids:
        why = "a sync booked a change no fill explains"
    return why


def _amount(value: Decimal) -> str:
    return f"{value:,.2f}"


def version_changes(
    seen: LifecycleVersion, current: Lifecycle | None, last_event: StoredEvent | None
) -> str | None:
    """What changed since the user saw `seen` (one sentence), or None when nothing did."""
    if current is None:
        return f"{seen.symbol} is no longer in the ledger. Reload and decide again."
    changes: list[str] = []
    if not current.is_open:
        changes.append("it was closed")
    if current.quantity != seen.quantity:
        changes.append(f"quantity {seen.quantity} → {current.quantity}")
    if current.realized_pnl != seen.realized_pnl:
        changes.append(f"realized {_amount(seen.realized_pnl)} → {_amount(current.realized_pnl)}")
    current_event_id = last_event.id if last_event is not None else None
    if not changes and current_event_id != seen.last_event_id:
        changes.append("new events in its history")
    if not changes:
        return None
    return (
        f"{seen.symbol} changed since you looked: {', '.join(changes)} ({_why(last_event)}). "
        "Reload and decide again."
    )


def mark_closed(
    position: Lifecycle,
    exit_price: Decimal,
    at: datetime,
    note: str = "",
) -> LifecycleChange:
    """Close `position` as the user says: MARKED_CLOSED with realized P&L at `exit_price`.

    The amount rests on the user's price, not a fill: it is `estimated` (DESIGN.md "Every
    realized amount has a basis"), and the lifecycle's estimated part grows by it.
    """
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
        realized_pnl_estimated=position.realized_pnl_estimated + realized,
        pnl_basis=worse_basis(position.pnl_basis, PnlBasis.ESTIMATED),
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
        pnl_basis=PnlBasis.ESTIMATED,
    )
    return LifecycleChange(position, after, (event,))


def decide_mark_closed(
    request: MarkClosedRequest, current: Lifecycle | None, last_event: StoredEvent | None
) -> LifecycleChange:
    """The Mark closed to write, when the lifecycle read now is still what the user saw.

    Raises LifecycleChangedError (naming the symbol and what changed) otherwise.
    """
    changed = version_changes(request.seen, current, last_event)
    if changed is not None:
        raise LifecycleChangedError(changed)
    assert current is not None
    return mark_closed(current, request.exit_price, request.at, request.note)
