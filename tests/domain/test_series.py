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
    PositionStatus,
    PriceSource,
)
from tests.domain.ledger_fixture import AAPL, ES, D, fill

NY = ZoneInfo("America/New_York")


def amount(account: str, when: datetime, value: str, currency: str = "USD") -> RealizedAmount:
    return RealizedAmount(account, currency, when, D(value))


def test_days_totals_and_cumulative_exact():
    day1 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    amounts = [
        amount("DU1", day1, "100.10"),
        amount("DU1", day1 + timedelta(hours=1), "-0.05"),
        amount("DU2", day1 + timedelta(days=2), "0.1"),
        amount("DU1", day1 + timedelta(days=2), "0.2"),
        amount("DU1", day1 + timedelta(days=3), "0"),  # a break-even close is still a day
    ]
    series = daily_realized(amounts, tz=UTC)
    assert [(d.day, d.realized, d.cumulative) for d in series.days] == [
        (date(2026, 11, 23), D("100.05"), D("100.05")),
        (date(2026, 11, 25), D("0.3"), D("100.35")),  # 0.1 + 0.2 exactly, no float noise
        (date(2026, 11, 26), D("0"), D("100.35")),
    ]
    assert series.total == D("100.35") and series.currencies == ("USD",)
    only = daily_realized(amounts, account="DU2", tz=UTC)
    assert [(d.day, d.realized) for d in only.days] == [(date(2026, 11, 25), D("0.1"))]
    assert only.account == "DU2" and daily_realized([], tz=UTC).total == 0


def test_the_day_is_the_local_day():
    """02:30 UTC on the 25th is still the evening of the 24th in New York."""
    late = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
    assert daily_realized([amount("DU1", late, "5")], tz=NY).days[0].day == date(2026, 11, 24)
    assert daily_realized([amount("DU1", late, "5")], tz=UTC).days[0].day == date(2026, 11, 25)


def test_mixed_currencies_are_reported():
    t = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    series = daily_realized([amount("DU1", t, "1"), amount("DU1", t, "2", "EUR")], tz=UTC)
    assert series.currencies == ("EUR", "USD")


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
