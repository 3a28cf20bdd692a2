"""Average-cost bookkeeping for one (account, conId): lifecycles, events and realized P&L.

`KeyBook` starts from the cached OPEN lifecycle (or none), takes quantity changes in time order —
fills, or a residual change the fills do not explain — and yields the lifecycle changes and
events. Realized P&L follows TWS's average-cost method: the average includes opening
commissions, a reduction realizes `(exit − average) × qty × multiplier` (negated for a short)
minus its own commission, and a fill through zero closes one lifecycle and opens the other side.
(For a short, "average" is the average proceeds: commissions lower it.)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from app.domain.plan import LifecycleChange, PlannedEvent
from app.domain.values import (
    ZERO,
    CloseReason,
    Contract,
    EventKind,
    Fill,
    Lifecycle,
    PositionStatus,
    PriceSource,
)

_MERGEABLE = frozenset({EventKind.INCREASED, EventKind.REDUCED})


def sign(value: Decimal) -> int:
    """-1, 0 or 1."""
    return (value > 0) - (value < 0)


@dataclass(slots=True)
class _Open:
    """The mutable working copy of the lifecycle being built."""

    before: Lifecycle | None
    state: Lifecycle
    events: list[PlannedEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Change:
    """One quantity change to book: a fill, or an unexplained (residual) change."""

    delta: Decimal
    price: Decimal
    time: datetime
    source: PriceSource | None
    commission: Decimal = ZERO
    exec_id: str | None = None
    broker_realized_pnl: Decimal | None = None
    note: str = ""
    close_reason: CloseReason = CloseReason.BROKER
    """Why the lifecycle ends if this change takes it exactly to zero."""

    @classmethod
    def from_fill(cls, fill: Fill) -> Change:
        """The change a fill makes."""
        return cls(
            delta=fill.signed_shares,
            price=fill.price,
            time=fill.time,
            source=PriceSource.FILLS,
            commission=fill.commission or ZERO,
            exec_id=fill.exec_id,
            broker_realized_pnl=fill.realized_pnl,
        )


class KeyBook:
    """Books quantity changes for one key; collects the resulting lifecycle changes."""

    def __init__(
        self,
        account: str,
        contract: Contract,
        cached: Lifecycle | None,
        *,
        calculate_realized_pnl: bool = True,
    ) -> None:
        self.account = account
        self.contract = contract
        self._pnl = calculate_realized_pnl
        self._done: list[LifecycleChange] = []
        self._open: _Open | None = None
        if cached is not None:
            self._open = _Open(before=cached, state=cached)

    # ------------------------------------------------------------------ reading
    @property
    def quantity(self) -> Decimal:
        """The booked quantity now (0 when flat)."""
        return self._open.state.quantity if self._open else ZERO

    @property
    def average_price(self) -> Decimal:
        """The booked average price per unit (0 when flat)."""
        return self._open.state.average_price if self._open else ZERO

    @property
    def current(self) -> Lifecycle | None:
        """The OPEN lifecycle being built, if any."""
        return self._open.state if self._open else None

    @property
    def multiplier(self) -> Decimal:
        """Contract multiplier (1 for stocks)."""
        return self.contract.multiplier

    # ------------------------------------------------------------------ booking
    def book(self, change: Change) -> None:
        """Apply one quantity change in time order."""
        if change.delta == 0:
            return
        held = self.quantity
        if held == 0:
            self._start(change, change.delta, change.commission)
        elif sign(change.delta) == sign(held):
            self._increase(change)
        else:
            self._reduce(change)

    def _start(self, change: Change, quantity: Decimal, commission: Decimal) -> None:
        # Commission raises a long's average cost and lowers a short's average proceeds.
        average = change.price + sign(quantity) * commission / (abs(quantity) * self.multiplier)
        state = Lifecycle(
            id=None,
            account=self.account,
            contract=self.contract,
            quantity=quantity,
            average_price=average,
            average_cost=average * self.multiplier,
            status=PositionStatus.OPEN,
            opened_at=change.time,
            entry_trade_id=change.exec_id,
        )
        self._open = _Open(before=None, state=state)
        self._event(
            EventKind.OPENED,
            change,
            before=ZERO,
            after=quantity,
            realized=None,
            broker=None,
        )

    def _increase(self, change: Change) -> None:
        assert self._open is not None
        state = self._open.state
        held = abs(state.quantity)
        added = abs(change.delta)
        cost = held * state.average_price + added * change.price
        cost += sign(change.delta) * change.commission / self.multiplier
        average = cost / (held + added)
        self._open.state = replace(
            state,
            quantity=state.quantity + change.delta,
            average_price=average,
            average_cost=average * self.multiplier,
        )
        self._event(
            EventKind.INCREASED,
            change,
            before=state.quantity,
            after=state.quantity + change.delta,
            realized=None,
            broker=None,
        )

    def _reduce(self, change: Change) -> None:
        assert self._open is not None
        state = self._open.state
        held = abs(state.quantity)
        moved = abs(change.delta)
        closing = min(moved, held)
        # A fill through zero splits its commission pro rata between the two lifecycles.
        closing_commission = change.commission * closing / moved
        realized = ZERO
        if self._pnl:
            gross = (change.price - state.average_price) * closing * self.multiplier
            realized = gross * sign(state.quantity) - closing_commission
        closing_delta = -state.quantity if moved >= held else change.delta
        after_qty = state.quantity + closing_delta
        self._open.state = replace(
            state,
            quantity=after_qty,
            realized_pnl=state.realized_pnl + realized,
        )
        # IB's per-fill figure belongs to the closing part (IB reports none for openings).
        broker = change.broker_realized_pnl
        if after_qty != 0:
            self._event(EventKind.REDUCED, change, state.quantity, after_qty, realized, broker)
            return
        self._event(EventKind.CLOSED, change, state.quantity, ZERO, realized, broker)
        remainder = moved - closing
        reason = CloseReason.FLIP if remainder > 0 else change.close_reason
        self.close(change.time, reason, exit_trade_id=change.exec_id)
        if remainder > 0:
            self._start(
                change, remainder * sign(change.delta), change.commission - closing_commission
            )

    def _event(
        self,
        kind: EventKind,
        change: Change,
        before: Decimal,
        after: Decimal,
        realized: Decimal | None,
        broker: Decimal | None,
    ) -> None:
        assert self._open is not None
        event = PlannedEvent(
            kind=kind,
            occurred_at=change.time,
            quantity_before=before,
            quantity_after=after,
            price=change.price,
            price_source=change.source,
            realized_pnl=realized,
            broker_realized_pnl=broker,
            exec_ids=(change.exec_id,) if change.exec_id else (),
            note=change.note,
        )
        events = self._open.events
        if events and _can_merge(events[-1], event):
            events[-1] = _merge(events[-1], event)
        else:
            events.append(event)

    # ------------------------------------------------------------------ other transitions
    def note_event(self, event: PlannedEvent) -> None:
        """Record an event that moves no quantity (MISSING, REAPPEARED, ADJUSTED, SPLIT)."""
        assert self._open is not None
        self._open.events.append(event)

    def set_state(self, **changes: object) -> None:
        """Replace fields of the OPEN lifecycle (market data, IB's average, missing flag)."""
        assert self._open is not None
        self._open.state = replace(self._open.state, **changes)  # type: ignore[arg-type]

    def close(
        self,
        at: datetime,
        reason: CloseReason,
        *,
        exit_trade_id: str | None = None,
    ) -> None:
        """End the OPEN lifecycle (its closing event is already booked)."""
        assert self._open is not None
        state = self._open.state
        self._open.state = replace(
            state,
            status=PositionStatus.CLOSED,
            closed_at=at,
            close_reason=reason,
            exit_trade_id=exit_trade_id or state.exit_trade_id,
            missing_since=None,
        )
        self._finish()

    def _finish(self) -> None:
        assert self._open is not None
        work = self._open
        self._open = None
        if work.before is not None and work.state == work.before and not work.events:
            return
        self._done.append(LifecycleChange(work.before, work.state, tuple(work.events)))

    def changes(self) -> list[LifecycleChange]:
        """Every lifecycle this book changed, in the order they happened."""
        if self._open is not None:
            self._finish()
        return self._done


def _can_merge(last: PlannedEvent, new: PlannedEvent) -> bool:
    """Consecutive adds (or consecutive reductions) of one kind read as one event."""
    return (
        last.kind is new.kind
        and last.kind in _MERGEABLE
        and last.price_source is new.price_source
        and not last.note
        and not new.note
    )


def _merge(a: PlannedEvent, b: PlannedEvent) -> PlannedEvent:
    qa = abs(a.quantity_after - a.quantity_before)
    qb = abs(b.quantity_after - b.quantity_before)
    price = None
    if a.price is not None and b.price is not None and qa + qb > 0:
        price = (a.price * qa + b.price * qb) / (qa + qb)  # VWAP of the merged fills
    return replace(
        a,
        occurred_at=b.occurred_at,
        quantity_after=b.quantity_after,
        price=price,
        realized_pnl=_add(a.realized_pnl, b.realized_pnl),
        # IB's figure is comparable only when every merged fill carried one.
        broker_realized_pnl=(
            a.broker_realized_pnl + b.broker_realized_pnl
            if a.broker_realized_pnl is not None and b.broker_realized_pnl is not None
            else None
        ),
        exec_ids=a.exec_ids + b.exec_ids,
    )


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b
