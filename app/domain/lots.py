"""FIFO tax lots beside average cost: per-event FIFO realized P&L and the open lots.

DESIGN.md "Lifecycle and realized P&L" (FIFO lots). The average-cost ledger is the fold's
(app.domain.fold); FIFO is derived from the *same* inputs — the fold's events, in order, and the
fills their execIds name — so it is re-derived whenever the key is folded, and the two methods
always account for the same cash flows: over a key's lifecycles, FIFO realized − open lots'
cost = average-cost realized − open quantity × average × multiplier = the net cash of the fills
(tests/domain/test_lots.py holds this over random fill sequences).

Each opening fill is a lot (acquired at the fill's time; cost basis = price × quantity ×
multiplier + its commission; for a short the basis is the proceeds less commission, kept signed
negative). A reduction releases the oldest lots first. A fill through zero splits its commission
pro rata between the lifecycle it closes and the one it opens, as the fold does.

Honest bases: a lot opened without a fill (a residual priced from IB's average, a position held
before the app's first sync) has an *estimated* basis — IB's average says nothing about which
prices the individual lots had, nor when they were bought — and so has anything realized against
it. A FIFO amount is never more certain than the fold's amount for the same event: where the fold
says estimated or unknown, the FIFO figure says the same (or worse).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from app.domain.decimals import decimal_text, derived
from app.domain.fold import Folded, FoldedLifecycle, KeyHistory
from app.domain.history import EventFacts, StoredHistory, same_event_before_fifo
from app.domain.plan import PlannedEvent
from app.domain.values import ZERO, EventKind, Fill, Lifecycle, PnlBasis, worse_basis

LONG_TERM = timedelta(days=365)
"""Held longer than a year: long-term for US tax reporting (IRS Publication 550: "more than
1 year"); the holding period shown is the plain number of days, the label only a convenience."""

FIFO_TOLERANCE = Decimal("0.01")
"""Ours and IB's FIFO figure for the same fills agree within a cent (as the average-cost check,
app.domain.fold.BROKER_PNL_TOLERANCE); beyond it the difference is flagged."""


@dataclass(frozen=True, slots=True)
class Lot:
    """One open FIFO lot: what is left of one opening."""

    acquired_at: datetime
    """UTC; for a lot opened without a fill, when the ledger first saw it (estimated)."""
    quantity: Decimal
    """Signed like the position (negative: a short lot)."""
    cost: Decimal | None
    """Signed cost basis incl. commission in the contract's currency (a short: −(proceeds −
    commission)); None when no price is known."""
    basis: PnlBasis
    """EXACT from a fill with its commission; ESTIMATED otherwise; UNKNOWN without a price."""
    exec_id: str | None = None

    def unit_cost(self, multiplier: Decimal) -> Decimal | None:
        """Cost basis per unit (comparable with a price), commission included."""
        if self.cost is None or self.quantity == 0:
            return None
        return derived(self.cost / (self.quantity * multiplier))

    def holding_days(self, as_of: datetime) -> int:
        """Whole days held up to `as_of`."""
        return max((as_of - self.acquired_at).days, 0)

    def long_term(self, as_of: datetime) -> bool:
        """True when held more than a year (see LONG_TERM)."""
        return as_of - self.acquired_at > LONG_TERM


@dataclass(frozen=True, slots=True)
class FifoAmount:
    """What one event realizes under FIFO (None/None where it realizes nothing)."""

    realized: Decimal | None = None
    basis: PnlBasis | None = None
    ibs: Decimal | None = None
    """IB's `fifoPnlRealized` where it differs from ours by more than FIFO_TOLERANCE."""


@dataclass(frozen=True, slots=True)
class LifecycleLots:
    """The FIFO view of one lifecycle: one amount per event (same order), and the open lots."""

    amounts: tuple[FifoAmount, ...]
    lots: tuple[Lot, ...]

    @property
    def open_cost(self) -> Decimal | None:
        """Σ of the open lots' cost (None if any is unknown)."""
        total = ZERO
        for lot in self.lots:
            if lot.cost is None:
                return None
            total += lot.cost
        return total


class _Portion(NamedTuple):
    """Part of an event's quantity change: from one fill, or the rest no fill explains (a
    tuple: made once per fill of every fold, and a frozen dataclass's __init__ is slower)."""

    quantity: Decimal  # unsigned
    price: Decimal | None
    commission: Decimal
    time: datetime
    exec_id: str | None
    exact: bool


_NOTHING = FifoAmount()


def lifecycle_lots(
    events: Sequence[EventFacts],
    fills: Mapping[str, Fill],
    multiplier: Decimal,
    *,
    held_average: Decimal | None = None,
) -> LifecycleLots:
    """FIFO lots and amounts of one lifecycle from its events (oldest first) and the fills by
    execId. `held_average`: per-unit average of a quantity held before the first event (a
    lifecycle the ledger adopted without its history), booked as one estimated lot."""
    lots: list[Lot] = []
    amounts: list[FifoAmount] = []
    if events and events[0].quantity_before != 0:
        held = events[0].quantity_before
        cost = None if held_average is None else held * held_average * multiplier
        basis = PnlBasis.ESTIMATED if cost is not None else PnlBasis.UNKNOWN
        lots.append(Lot(events[0].occurred_at, held, cost, basis))
    for event in events:
        before, after = event.quantity_before, event.quantity_after
        if event.kind is EventKind.SPLIT:
            lots = _split(lots, before, after)
            amounts.append(_NOTHING)
        elif event.kind is EventKind.CONVERTED and after == 0:
            # Converted into another conId: nothing sold, so nothing realized under FIFO either
            # (the fold's 0 and its basis); the holding goes on as the new key's lifecycle,
            # whose opening is one lot at the carried average (estimated: which lots it was
            # made of is not carried across keys).
            lots = []
            amounts.append(FifoAmount(event.realized_pnl, event.pnl_basis))
        elif before == after:
            if event.kind is EventKind.ADJUSTED:
                # IB's average moved with no fills: trades unseen or a basis adjustment; which
                # lots it touched is not known.
                lots = [_estimated(lot) for lot in lots]
            amounts.append(_NOTHING)
        elif before == 0 or (_sign(after) == _sign(before) and abs(after) > abs(before)):
            sign = _sign(after)
            for part in _portions(event, fills, abs(after - before), opening=True):
                lots.append(_lot(part, sign, multiplier))
            amounts.append(_NOTHING)
        else:
            amounts.append(_release(event, fills, lots, abs(before - after), multiplier))
    return LifecycleLots(tuple(amounts), tuple(lots))


def _lot(part: _Portion, sign: int, multiplier: Decimal) -> Lot:
    quantity = part.quantity * sign
    if part.price is None:
        return Lot(part.time, quantity, None, PnlBasis.UNKNOWN, part.exec_id)
    cost = quantity * part.price * multiplier + part.commission
    basis = PnlBasis.EXACT if part.exact else PnlBasis.ESTIMATED
    return Lot(part.time, quantity, cost, basis, part.exec_id)


def _release(
    event: EventFacts,
    fills: Mapping[str, Fill],
    lots: list[Lot],
    closing: Decimal,
    multiplier: Decimal,
) -> FifoAmount:
    """Close `closing` units from the oldest lots (in place); what that realizes."""
    if not lots:
        return FifoAmount(None, PnlBasis.UNKNOWN)
    sign = _sign(lots[0].quantity)
    proceeds: Decimal | None = ZERO
    basis: PnlBasis | None = PnlBasis.EXACT
    for part in _portions(event, fills, closing, opening=False):
        if part.price is None or proceeds is None:
            proceeds = None
        else:
            proceeds += sign * part.quantity * part.price * multiplier - part.commission
        if not part.exact:
            basis = worse_basis(basis, PnlBasis.ESTIMATED)
    released: Decimal | None = ZERO
    left = closing
    while left > 0 and lots:
        lot = lots[0]
        size = abs(lot.quantity)
        take = min(size, left)
        if lot.basis is not PnlBasis.EXACT:
            basis = worse_basis(basis, lot.basis)
        if take == size:
            part_cost = lot.cost
            lots.pop(0)
        else:
            part_cost = None if lot.cost is None else derived(lot.cost * take / size)
            rest = None if lot.cost is None or part_cost is None else lot.cost - part_cost
            lots[0] = Lot(lot.acquired_at, lot.quantity - sign * take, rest, lot.basis, lot.exec_id)
        released = None if released is None or part_cost is None else released + part_cost
        left -= take
    if left > 0:  # more closed than the lots hold: the events disagree with themselves
        released = None
    if event.pnl_basis is None and event.realized_pnl is not None:
        return FifoAmount(event.realized_pnl, None)  # realized P&L switched off: as the fold
    if event.pnl_basis is not PnlBasis.EXACT:
        basis = worse_basis(basis, event.pnl_basis)
    ours = None if proceeds is None or released is None else derived(proceeds - released)
    theirs = _ibs_fifo(event, fills)
    if theirs is not None:
        if ours is None or basis is not PnlBasis.EXACT:
            # Our lots are a guess (opened from IB's average) but IB booked these fills
            # against its own lots: IB's figure is the fact.
            return FifoAmount(theirs, PnlBasis.EXACT)
        if abs(ours - theirs) > FIFO_TOLERANCE:
            # Every input known and still a difference: IB matched other lots (trades the
            # ledger never saw). Ours is kept, flagged, and not called exact.
            return FifoAmount(ours, PnlBasis.ESTIMATED, ibs=theirs)
    if ours is None or event.realized_pnl is None:
        return FifoAmount(None, PnlBasis.UNKNOWN)
    return FifoAmount(ours, basis)


def _ibs_fifo(event: EventFacts, fills: Mapping[str, Fill]) -> Decimal | None:
    """IB's FIFO figure for a closing event: the sum of its fills' `fifoPnlRealized` when a
    statement gave it for every one (a fill through zero: IB's figure is all its closing
    part's, the opening part realizes nothing)."""
    if not event.exec_ids:
        return None
    total = ZERO
    for exec_id in event.exec_ids:
        fill = fills.get(exec_id)
        if fill is None or fill.fifo_realized_pnl is None:
            return None
        total += fill.fifo_realized_pnl
    return total


def _portions(
    event: EventFacts, fills: Mapping[str, Fill], quantity: Decimal, *, opening: bool
) -> list[_Portion]:
    """Split an event's quantity change into the fills it names (a fill through zero counts
    only its part on this side, with its commission pro rata) and the rest at the event's
    price (no fill explains it)."""
    parts: list[_Portion] = []
    left = quantity
    for exec_id in event.exec_ids:
        fill = fills.get(exec_id)
        if fill is None or left <= 0:
            continue
        take = min(fill.shares, left)
        commission = ZERO
        if fill.commission is not None:
            commission = (
                fill.commission if take == fill.shares else fill.commission * take / fill.shares
            )
        parts.append(
            _Portion(take, fill.price, commission, fill.time, exec_id, fill.commission is not None)
        )
        left -= take
    if left > 0:
        # No fill: an opening is priced from IB's average (which lots it stands for is not
        # known); a closing at the event's exit price, as exact as the fold says it is
        # (an expiry at 0 is exact, a market or user price is not).
        exact = not opening and event.pnl_basis is PnlBasis.EXACT and not event.exec_ids
        parts.append(_Portion(left, event.price, ZERO, event.occurred_at, None, exact))
    return parts


def _split(lots: list[Lot], before: Decimal, after: Decimal) -> list[Lot]:
    """Scale every lot's quantity by the split's ratio (cost unchanged); a reverse split's lost
    fraction comes off the newest lot so the lots sum to the quantity after."""
    if before == 0 or not lots:
        return lots
    ratio = after / before
    scaled = [replace(lot, quantity=derived(lot.quantity * ratio)) for lot in lots]
    rest = after - sum((lot.quantity for lot in scaled), ZERO)
    if rest:
        last = scaled[-1]
        scaled[-1] = replace(last, quantity=last.quantity + rest)
    return scaled


def with_fifo(folded: Folded, history: KeyHistory, stored: StoredHistory | None = None) -> Folded:
    """The fold of `history` with each event's FIFO amount and basis filled in.

    `stored`: what the ledger holds for the key (the fold's lifecycles line up with its
    lifecycles, index by index, as the caller compares them). A lifecycle whose stored events
    already say what the fold derived, from the same fills, keeps its stored FIFO figures
    instead of being computed again (`_Stored.fifo`): a late commission report on one fill of a
    key traded 1,000 times changes one lifecycle of dozens.
    """
    by_id = {fill.exec_id: fill for fill in history.fills}
    multiplier = history.contract.multiplier
    reuse = _Stored(stored, by_id, multiplier) if stored is not None else None
    lifecycles = []
    for index, folded_life in enumerate(folded.lifecycles):
        events = folded_life.events
        known = reuse.fifo(index, events) if reuse is not None else None
        if known is not None:
            amounts: Sequence[FifoAmount] = known
        else:
            # Only a fold resumed from a stored lifecycle (no history before it) starts held.
            base = history.base if index == 0 else None
            held = base.average_price if base is not None else None
            amounts = lifecycle_lots(events, by_id, multiplier, held_average=held).amounts
        lifecycles.append(
            FoldedLifecycle(
                folded_life.lifecycle,
                tuple(_with_amount(e, a) for e, a in zip(events, amounts, strict=True)),
            )
        )
    return replace(folded, lifecycles=tuple(lifecycles))


class _Stored:
    """The stored FIFO figures a fold may keep (see `fifo`)."""

    def __init__(
        self, stored: StoredHistory, fills: Mapping[str, Fill], multiplier: Decimal
    ) -> None:
        self.stored = stored
        self.fills = fills
        self.multiplier = multiplier
        folded_from = stored.fills if stored.folded_from is None else stored.folded_from
        self.stored_fills = {fill.exec_id: fill for fill in folded_from}

    def fifo(self, index: int, events: Sequence[PlannedEvent]) -> list[FifoAmount] | None:
        """The stored FIFO amounts of the `index`-th stored lifecycle when they are provably
        what `lifecycle_lots` would derive for `events` now; None: derive them.

        `lifecycle_lots` is a function of one lifecycle's events (what `same_event_before_fifo`
        compares), the fills they name, the multiplier, and a held average only for a fold
        resumed from a stored lifecycle (never with a stored history). Lots never cross
        lifecycles: each starts flat, or held at its first event's quantity_before. Stored
        events are written only from a fold with its FIFO figures (reconcile, refold), so
        when all of those inputs are the ones the stored figures were derived from — the same
        events, every fill they name the very object they were folded from (a correction, a
        late report or a statement's completion is a new Fill; see
        StoredHistory.folded_from), the same multiplier — the stored figures are the answer.
        Events from before FIFO had a basis (revision 0010 left NULL: a realizing event without
        a FIFO basis) are derived, as a fold always did.
        """
        stored = self.stored
        if index >= len(stored.lifecycles):
            return None
        old = stored.lifecycles[index]
        kept = stored.events.get(old.id or 0, ())
        if len(kept) != len(events) or old.contract.multiplier != self.multiplier:
            return None
        fills, stored_fills = self.fills, self.stored_fills
        amounts = []
        for event, stored_event in zip(events, kept, strict=True):
            if not same_event_before_fifo(event, stored_event):
                return None
            if _before_fifo(stored_event):
                return None
            for exec_id in event.exec_ids:
                if fills.get(exec_id) is not stored_fills.get(exec_id):
                    return None
            if stored_event.realized_pnl_fifo is None and stored_event.pnl_basis_fifo is None:
                amounts.append(_NOTHING)
            else:
                amounts.append(
                    FifoAmount(stored_event.realized_pnl_fifo, stored_event.pnl_basis_fifo)
                )
        return amounts


def _before_fifo(event: EventFacts) -> bool:
    """Whether a stored event realizes something but has no FIFO figure a fold gives such an
    event: stored before revision 0010 (which left both NULL until the key is folded again).
    A fold gives a realizing event a FIFO basis, or — realized P&L switched off, no basis —
    its FIFO amount."""
    if event.pnl_basis_fifo is not None:
        return False
    return event.pnl_basis is not None or (
        event.realized_pnl is not None and event.realized_pnl_fifo is None
    )


def _with_amount(event: PlannedEvent, amount: FifoAmount) -> PlannedEvent:
    if amount.realized is None and amount.basis is None and event.realized_pnl_fifo is None:
        return event  # realizes nothing (most events): no copy (a fold of 1,000 fills: 570)
    note = event.note
    if amount.ibs is not None and amount.realized is not None:
        flag = (
            f"FIFO realized {decimal_text(amount.realized)} differs from IB's fifoPnlRealized "
            f"{decimal_text(amount.ibs)}"
        )
        note = f"{note}; {flag}" if note else flag
    # Positional, not dataclasses.replace (several times slower, once per realizing event).
    return PlannedEvent(
        event.kind, event.occurred_at, event.quantity_before, event.quantity_after, event.price,
        event.price_source, event.realized_pnl, event.broker_realized_pnl, event.exec_ids, note,
        event.pnl_basis, amount.realized, amount.basis,
    )  # fmt: skip


def _estimated(lot: Lot) -> Lot:
    return lot if lot.basis is not PnlBasis.EXACT else replace(lot, basis=PnlBasis.ESTIMATED)


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


@dataclass(frozen=True, slots=True)
class OpenLot:
    """One open lot with the lifecycle it belongs to (what `positions --lots` lists)."""

    lifecycle: Lifecycle
    lot: Lot


def open_lots_of(
    life: Lifecycle, events: Sequence[EventFacts], fills: Mapping[str, Fill]
) -> list[OpenLot]:
    """The open lots of a stored OPEN lifecycle from its stored events and fills. A lifecycle
    without events (adopted from a seed database) is one estimated lot at its average."""
    multiplier = life.contract.multiplier
    if not events:
        cost = life.quantity * life.average_price * multiplier
        lots: Sequence[Lot] = (Lot(life.opened_at, life.quantity, cost, PnlBasis.ESTIMATED),)
    else:
        lots = lifecycle_lots(events, fills, multiplier, held_average=life.average_price).lots
    return [OpenLot(life, lot) for lot in lots]
