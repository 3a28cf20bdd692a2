"""Chart series from the stored history: realized P&L per currency and local day, and one
lifecycle's path.

Pure and exact: sums stay Decimal (the window turns them into pixels only when painting).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, tzinfo
from decimal import Decimal

from app.domain.book import sign
from app.domain.money import RealizedTotals, amount_totals
from app.domain.records import StoredEvent
from app.domain.values import ZERO, CostBasis, EventKind, Fill, Lifecycle, PnlBasis, Side


@dataclass(frozen=True, slots=True)
class RealizedAmount:
    """The realized P&L one event booked, with what a chart groups it by.

    `amount` is None where the event could not be priced (basis `unknown`); `basis` None is a
    ledger row from before bases were recorded (exact, as its lifecycle's totals say). Which
    figure `amount` is (average cost or FIFO) is the reader's choice (setting `cost_basis`).
    `position_id` names the lifecycle (None where the reader did not say)."""

    account: str
    currency: str
    occurred_at: datetime
    amount: Decimal | None
    basis: PnlBasis | None = None
    position_id: int | None = None


@dataclass(frozen=True, slots=True)
class DayPnl:
    """Realized P&L of one local calendar day in one currency, and the running total up to and
    including it; `estimated` is the part of `realized` resting on estimates, `unknown` the
    number of that day's amounts that could not be priced (in no figure)."""

    day: date
    realized: Decimal
    cumulative: Decimal
    estimated: Decimal = ZERO
    unknown: int = 0

    @property
    def exact(self) -> Decimal:
        """The part of `realized` booked from fills with price and commission known."""
        return self.realized - self.estimated


@dataclass(frozen=True, slots=True)
class RealizedByDay:
    """The daily series of one currency of one account (or all), oldest day first; only days
    that realized. One currency only: amounts of different currencies are never added."""

    days: tuple[DayPnl, ...] = ()
    currency: str = ""
    account: str | None = None

    @property
    def total(self) -> Decimal:
        """Realized P&L over every day."""
        return self.days[-1].cumulative if self.days else ZERO

    @property
    def estimated(self) -> Decimal:
        """The part of `total` resting on estimates."""
        return sum((d.estimated for d in self.days), ZERO)

    @property
    def unknown(self) -> int:
        """How many amounts could not be priced (in no figure)."""
        return sum(d.unknown for d in self.days)


@dataclass(frozen=True, slots=True)
class DailyRealized:
    """One daily series per currency (sorted by currency), of one account or all, summed from
    the figure `cost_basis` names (average cost or FIFO lots)."""

    by_currency: Mapping[str, RealizedByDay] = field(default_factory=dict)
    account: str | None = None
    cost_basis: CostBasis = CostBasis.AVERAGE

    @property
    def currencies(self) -> tuple[str, ...]:
        """The currencies that realized something, sorted."""
        return tuple(self.by_currency)

    def series(self, currency: str) -> RealizedByDay:
        """That currency's series (an empty one where it realized nothing)."""
        return self.by_currency.get(currency) or RealizedByDay((), currency, self.account)


def daily_realized(
    amounts: Iterable[RealizedAmount],
    *,
    account: str | None = None,
    tz: tzinfo | None = None,
    cost_basis: CostBasis = CostBasis.AVERAGE,
) -> DailyRealized:
    """Sum realized P&L by currency and by the local day it was booked (in `tz`; None: this
    machine's zone), exact and estimated apart.

    A day counts when any event realized on it, even a zero or an unpriced amount (a break-even
    close is still a trading day); days with no realizing event are left out rather than drawn
    as zero. Currencies are never added: each gets its own series. `cost_basis` only names
    which figure `amounts` hold (the reader chose it), so the chart can say so.
    """
    by_day: dict[str, dict[date, RealizedTotals]] = {}
    for item in amounts:
        if account is not None and item.account != account:
            continue
        # astimezone(None) converts with the local zone's rules for that instant (DST-correct).
        day = item.occurred_at.astimezone(tz).date()
        days = by_day.setdefault(item.currency, {})
        part = amount_totals(item.currency, item.amount, item.basis)
        known = days.get(day)
        days[day] = part if known is None else known.plus(part)
    series: dict[str, RealizedByDay] = {}
    for currency in sorted(by_day):
        days_of = by_day[currency]
        rows: list[DayPnl] = []
        running = ZERO
        for day in sorted(days_of):
            t = days_of[day]
            running += t.total
            rows.append(DayPnl(day, t.total, running, t.estimated, t.unknown_count))
        series[currency] = RealizedByDay(tuple(rows), currency, account)
    return DailyRealized(series, account, cost_basis)


@dataclass(frozen=True, slots=True)
class PathPoint:
    """From `at` on (until the next point), the lifecycle held `quantity` at `average_price`."""

    at: datetime
    quantity: Decimal
    average_price: Decimal


@dataclass(frozen=True, slots=True)
class FillMark:
    """One fill of the lifecycle, drawn at its time and price."""

    at: datetime
    price: Decimal
    shares: Decimal
    bought: bool


@dataclass(frozen=True, slots=True)
class LifecyclePath:
    """A lifecycle's quantity and average price over time, and its fills."""

    points: tuple[PathPoint, ...]
    end: datetime
    """Where the chart ends: the close, or now for an OPEN lifecycle."""
    fills: tuple[FillMark, ...] = ()


def lifecycle_path(
    life: Lifecycle,
    events: Sequence[StoredEvent],
    fills: Sequence[Fill],
    now: datetime,
) -> LifecyclePath:
    """Replay a lifecycle's events into quantity and average-price steps.

    Events do not store the average, so it is rebuilt with the book's average-cost rules
    (app.domain.book): an opening or an add moves it (its fills' commissions included, looked up
    by execId), a reduction leaves it, a split takes the broker's new average. IB's average is
    the ledger's authority while a position is open (DESIGN "Lifecycle"), so the last point of an
    OPEN lifecycle shows the stored average, as the tables do.
    """
    multiplier = life.contract.multiplier
    commissions = {f.exec_id: f.commission or ZERO for f in fills}
    points: list[PathPoint] = []
    average = ZERO
    for event in sorted(events, key=lambda e: e.id):
        after = event.quantity_after
        commission = sum((commissions.get(x, ZERO) for x in event.exec_ids), ZERO)
        if event.kind is EventKind.OPENED and after != 0:
            price = event.price if event.price is not None else life.average_price
            average = price + sign(after) * commission / (abs(after) * multiplier)
        elif event.kind is EventKind.INCREASED and event.price is not None and after != 0:
            held = abs(event.quantity_before)
            added = abs(after) - held
            cost = held * average + added * event.price + sign(after) * commission / multiplier
            average = cost / abs(after)
        elif event.kind is EventKind.SPLIT and event.price is not None:
            average = event.price
        points.append(PathPoint(event.occurred_at, after, average))
    if not points:  # a lifecycle from before events were recorded (a seed-era row)
        points.append(PathPoint(life.opened_at, life.quantity, life.average_price))
    end = life.closed_at if life.closed_at is not None else max(now, points[-1].at)
    if life.is_open and points[-1].quantity == life.quantity:
        points[-1] = replace(points[-1], average_price=life.average_price)
    marks = tuple(
        FillMark(f.time, f.price, f.shares, f.side is Side.BOUGHT)
        for f in sorted(fills, key=lambda f: (f.time, f.exec_id))
    )
    return LifecyclePath(tuple(points), end, marks)
