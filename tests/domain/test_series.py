"""Chart series (pure): realized P&L by local day and account, and a lifecycle's path."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.domain.records import StoredEvent
from app.domain.series import RealizedAmount, daily_realized, lifecycle_path
from app.domain.values import (
    CloseReason,
    EventKind,
    Lifecycle,
    PnlBasis,
    PositionStatus,
    PriceSource,
)
from tests.domain.ledger_fixture import AAPL, ES, D, fill

NY = ZoneInfo("America/New_York")


def amount(
    account: str,
    when: datetime,
    value: str | None,
    currency: str = "USD",
    basis: PnlBasis | None = None,
) -> RealizedAmount:
    return RealizedAmount(account, currency, when, D(value) if value is not None else None, basis)


def test_days_totals_and_cumulative_exact():
    day1 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    amounts = [
        amount("DU1", day1, "100.10"),
        amount("DU1", day1 + timedelta(hours=1), "-0.05"),
        amount("DU2", day1 + timedelta(days=2), "0.1"),
        amount("DU1", day1 + timedelta(days=2), "0.2"),
        amount("DU1", day1 + timedelta(days=3), "0"),  # a break-even close is still a day
    ]
    every = daily_realized(amounts, tz=UTC)
    assert every.currencies == ("USD",)
    series = every.series("USD")
    assert [(d.day, d.realized, d.cumulative) for d in series.days] == [
        (date(2026, 11, 23), D("100.05"), D("100.05")),
        (date(2026, 11, 25), D("0.3"), D("100.35")),  # 0.1 + 0.2 exactly, no float noise
        (date(2026, 11, 26), D("0"), D("100.35")),
    ]
    assert series.total == D("100.35") and series.currency == "USD"
    only = daily_realized(amounts, account="DU2", tz=UTC).series("USD")
    assert [(d.day, d.realized) for d in only.days] == [(date(2026, 11, 25), D("0.1"))]
    assert only.account == "DU2" and daily_realized([], tz=UTC).series("USD").total == 0


def test_the_day_is_the_local_day():
    """02:30 UTC on the 25th is still the evening of the 24th in New York."""
    late = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
    ny = daily_realized([amount("DU1", late, "5")], tz=NY).series("USD")
    utc = daily_realized([amount("DU1", late, "5")], tz=UTC).series("USD")
    assert ny.days[0].day == date(2026, 11, 24) and utc.days[0].day == date(2026, 11, 25)


def test_currencies_are_never_added():
    """Guards: a daily series that summed USD, EUR and JPY into one bar (issue 15, item 5)."""
    t = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    amounts = [
        amount("DU1", t, "1"),
        amount("DU1", t, "2", "EUR"),
        amount("DU1", t + timedelta(days=1), "300", "JPY"),
        amount("DU1", t + timedelta(days=1), "4", "EUR"),
    ]
    daily = daily_realized(amounts, tz=UTC)
    assert daily.currencies == ("EUR", "JPY", "USD")
    assert [(d.day, d.realized) for d in daily.series("EUR").days] == [
        (date(2026, 11, 23), D(2)),
        (date(2026, 11, 24), D(4)),
    ]
    assert daily.series("EUR").total == 6 and daily.series("JPY").total == 300
    assert daily.series("USD").total == 1 and daily.series("GBP").days == ()


def test_estimated_and_unknown_amounts_kept_apart():
    """Guards: an estimated (market-priced) amount drawn as exact, and an unpriced one dropped
    silently: each day says how much of it is estimated and how many amounts are unknown."""
    t = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    amounts = [
        amount("DU1", t, "100", basis=PnlBasis.EXACT),
        amount("DU1", t, "-30", basis=PnlBasis.ESTIMATED),
        amount("DU1", t, None, basis=PnlBasis.UNKNOWN),
        amount("DU1", t + timedelta(days=1), "5"),  # no basis: a row from before bases
    ]
    series = daily_realized(amounts, tz=UTC).series("USD")
    first, second = series.days
    assert (first.realized, first.exact, first.estimated, first.unknown) == (
        D(70),
        D(100),
        D(-30),
        1,
    )
    assert (second.exact, second.estimated, second.unknown, second.cumulative) == (
        D(5),
        D(0),
        0,
        D(75),
    )
    assert (series.total, series.estimated, series.unknown) == (D(75), D(-30), 1)


T = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)


def event(n: int, kind: EventKind, before: str, after: str, price: str | None, *ids: str, **kw):
    return StoredEvent(
        id=n,
        position_id=1,
        sync_run_id=n,
        kind=kind,
        occurred_at=T + timedelta(minutes=n),
        quantity_before=D(before),
        quantity_after=D(after),
        price=D(price) if price is not None else None,
        price_source=PriceSource.FILLS if ids else None,
        realized_pnl=kw.get("realized"),
        broker_realized_pnl=None,
        exec_ids=ids,
        note="",
    )


def test_lifecycle_path_replays_the_average_with_commissions():
    buy = fill(AAPL, "BOT", "100", "150", commission="1", exec_id="e1")
    add = fill(AAPL, "BOT", "50", "156", commission="0.5", exec_id="e2")
    sell = fill(AAPL, "SLD", "150", "160", commission="1.5", exec_id="e3")
    life = Lifecycle(
        id=1,
        account="DU111",
        contract=AAPL,
        quantity=D(0),
        average_price=D("152.01"),
        status=PositionStatus.CLOSED,
        opened_at=T + timedelta(minutes=1),
        closed_at=T + timedelta(minutes=3),
        close_reason=CloseReason.BROKER,
    )
    events = [
        event(3, EventKind.CLOSED, "150", "0", "160", "e3", realized=D("1346.5")),
        event(1, EventKind.OPENED, "0", "100", "150", "e1"),
        event(2, EventKind.INCREASED, "100", "150", "156", "e2"),
    ]
    path = lifecycle_path(life, events, [buy, add, sell], now=T + timedelta(days=1))
    assert [(p.quantity, p.average_price) for p in path.points] == [
        (D(100), D("150.01")),  # 150 + 1/100
        (D(150), D("152.01")),  # (100 × 150.01 + 50 × 156 + 0.5) / 150
        (D(0), D("152.01")),  # a reduction keeps the average
    ]
    assert path.end == life.closed_at  # a closed lifecycle ends at its close, not now
    assert [(m.price, m.bought) for m in path.fills] == [
        (D(150), True),
        (D(156), True),
        (D(160), False),
    ]


def test_open_short_ends_at_the_stored_average_and_now():
    life = Lifecycle(
        id=1,
        account="DU111",
        contract=ES,
        quantity=D(-2),
        average_price=D("4500.26"),  # IB's, a cent from the replay: the table shows this one
        status=PositionStatus.OPEN,
        opened_at=T + timedelta(minutes=1),
    )
    events = [event(1, EventKind.OPENED, "0", "-2", "4500.25")]
    now = T + timedelta(hours=5)
    path = lifecycle_path(life, events, [], now=now)
    assert [(p.quantity, p.average_price) for p in path.points] == [(D(-2), D("4500.26"))]
    assert path.end == now and path.fills == ()


def test_lifecycle_without_events_is_one_point():
    life = Lifecycle(1, "DU111", AAPL, D(10), D(150), PositionStatus.OPEN, T)
    path = lifecycle_path(life, [], [], now=T)
    assert [(p.at, p.quantity) for p in path.points] == [(T, D(10))]


def test_a_split_takes_the_brokers_new_average():
    life = Lifecycle(1, "DU111", AAPL, D(20), D(75), PositionStatus.OPEN, T)
    events = [
        event(1, EventKind.OPENED, "0", "10", "150"),
        event(2, EventKind.SPLIT, "10", "20", "75"),
    ]
    path = lifecycle_path(life, events, [], now=T)
    assert [(p.quantity, p.average_price) for p in path.points] == [(10, 150), (20, 75)]
