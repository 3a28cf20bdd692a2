"""The Charts tab: a known ledger charts the right daily and cumulative totals (offline, from the
cache), per account; the selected lifecycle's path; and the charts follow a sync that realizes
P&L — real widgets offscreen, the qasync loop driven as in test_window."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from PySide6.QtGui import QColor

from app.db import repository
from app.db.migrate import open_database
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.sim.state import SimState
from app.ui.charts.axes import nice_ticks, tick_label
from app.ui.charts.position_chart import time_ticks
from app.ui.models.keyed import GAIN, LOSS
from tests.db.test_repository import commit
from tests.domain.ledger_fixture import AAPL, MSFT, D, fill, pos, snapshot
from tests.ui.conftest import eventually, free_port

DAY = 24 * 60  # minutes
BOTH = ("DU111", "DU222")


def known_ledger(path) -> None:
    """Three UTC days of realized P&L over two accounts: +399, −601, +2.6."""
    with open_database(path) as db:
        commit(
            db,
            snapshot(
                pos(AAPL, "100", "150"), pos(MSFT, "0.5", "400", account="DU222"), accounts=BOTH
            ),
        )
        sell = fill(AAPL, "SLD", "40", "160", commission="1", minutes=10)  # 24 Nov: +399
        commit(
            db,
            snapshot(
                pos(AAPL, "60", "150"),
                pos(MSFT, "0.5", "400", account="DU222"),
                fills=(sell,),
                accounts=BOTH,
                minutes=11,
            ),
        )
        close = fill(AAPL, "SLD", "60", "140", commission="1", minutes=DAY + 10)  # 25 Nov: −601
        commit(
            db,
            snapshot(
                pos(MSFT, "0.5", "400", account="DU222"),
                fills=(close,),
                accounts=BOTH,
                minutes=DAY + 11,
            ),
        )
        frac = fill(MSFT, "SLD", "0.25", "410.4", account="DU222", minutes=2 * DAY + 10)  # +2.6
        commit(
            db,
            snapshot(
                pos(MSFT, "0.25", "400", account="DU222"),
                fills=(frac,),
                accounts=BOTH,
                minutes=2 * DAY + 11,
            ),
        )


def days_of(chart) -> list[tuple[date, Decimal, Decimal]]:
    return [(d.day, d.realized, d.cumulative) for d in chart.series.days]


def painted(widget, colour: QColor) -> int:
    """How many pixels of exactly `colour` the widget paints (bars are solid fills)."""
    image = widget.grab().toImage()
    rgb = colour.rgb()
    return sum(
        1
        for y in range(0, image.height(), 2)
        for x in range(0, image.width(), 2)
        if image.pixel(x, y) == rgb
    )


def test_known_ledger_daily_and_cumulative_totals_offline(make_app, qloop, tmp_path):
    known_ledger(tmp_path / "ledger.sqlite")
    app = make_app(free_port())  # nothing listens there: offline, from the cache alone
    app.controller.charts.tz = UTC  # the test's days are UTC days, whatever this machine's zone
    w = app.window
    chart = w.charts.pnl_chart

    async def scenario():
        await app.start()
        assert not chart.series.days  # not loaded while the tab is hidden
        w.tabs.setCurrentWidget(w.charts)
        await eventually(lambda: chart.series.days)
        assert days_of(chart) == [
            (date(2026, 11, 24), D("399"), D("399")),
            (date(2026, 11, 25), D("-601"), D("-202")),
            (date(2026, 11, 26), D("2.6"), D("-199.4")),
        ]
        total = app.runtime.db.run_sync(repository.realized_total)
        assert chart.series.total == total["USD"].total == D("-199.4") and list(total) == ["USD"]
        assert chart.series.currency == "USD" and not w.charts.pnl_currency.isEnabled()
        assert "total <b>-199.40</b> USD" in w.charts.pnl_title.text()
        assert "3 trading days" in w.charts.pnl_title.text()
        # The bars are really painted, in both colours.
        w.charts.pnl_chart.resize(600, 300)
        assert painted(chart, GAIN) > 20 and painted(chart, LOSS) > 20

        # The window's account filter filters the chart too.
        w.account_filter.setCurrentText("DU222")
        await eventually(lambda: chart.series.account == "DU222")
        assert days_of(chart) == [(date(2026, 11, 26), D("2.6"), D("2.6"))]
        assert "DU222" in w.charts.pnl_title.text()
        w.account_filter.setCurrentIndex(0)
        await eventually(lambda: chart.series.account is None)
        assert chart.series.total == D("-199.4")

        # The closed AAPL lifecycle: 100 → 60 → 0 at an average of 150, two sells marked.
        (aapl,) = w.closed_model.values()
        w.closed_table.selectRow(w.closed_model.row_of(aapl.id))
        path_chart = w.charts.position_chart
        await eventually(lambda: path_chart.path is not None)
        points = [(p.quantity, p.average_price) for p in path_chart.path.points]
        assert points == [(D(100), D(150)), (D(60), D(150)), (D(0), D(150))]
        assert [(m.shares, m.price, m.bought) for m in path_chart.path.fills] == [
            (D(40), D(160), False),
            (D(60), D(140), False),
        ]
        assert path_chart.path.end == aapl.closed_at
        assert "AAPL" in w.charts.position_title.text()
        assert "-202.00 USD" in w.charts.position_title.text()
        path_chart.resize(600, 300)
        assert painted(path_chart, LOSS) > 0  # the sell markers
        w.closed_table.clearSelection()
        await eventually(lambda: path_chart.path is None)

    qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


ACCOUNT = "DU7000007"


def book() -> SimState:
    state = SimState()
    state.add_account(ACCOUNT, "USD")
    state.set_position(ACCOUNT, c.AAPL, D(100), D(150), D(152))
    state.set_position(ACCOUNT, c.MSFT, D("0.3"), D(310), D(415))
    return state


def test_charts_follow_a_sync_that_realizes_pnl(make_app, qloop):
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port)
        app.controller.charts.tz = UTC
        w = app.window
        feed = app.controller.charts
        chart = w.charts.pnl_chart

        async def scenario():
            await app.start()
            await eventually(lambda: app.controller.state.last_synced is not None)
            w.tabs.setCurrentWidget(w.charts)
            await eventually(lambda: feed.loads > 0)
            assert chart.series.days == ()  # nothing realized yet

            # Select AAPL: its chart is one step at 100.
            aapl_key = (ACCOUNT, c.AAPL.con_id)
            w.cache_table.selectRow(w.cache_model.row_of(aapl_key))
            await eventually(lambda: w.charts.position_chart.path is not None)
            assert [p.quantity for p in w.charts.position_chart.path.points] == [D(100)]

            # A partial close at the broker: the sync it triggers realizes 399, and the chart
            # (visible) and the selected position's path follow without anyone asking. (IB
            # stamps fills to the second; the history lists fills from the lifecycle's opening
            # on, so the fill must not share the opening sync's second.)
            await asyncio.sleep(1.1)
            sim.fill(ACCOUNT, c.AAPL, -40, "160", commission=D(1))
            await eventually(lambda: chart.series.total == D(399), 15)
            today = datetime.now(UTC).date()
            assert days_of(chart) == [(today, D(399), D(399))]
            await eventually(
                lambda: [p.quantity for p in w.charts.position_chart.path.points] == [100, 60]
            )
            assert len(w.charts.position_chart.path.fills) == 1

            # While another tab shows, a sync only marks the chart stale: no database reads.
            w.tabs.setCurrentIndex(0)
            loads = feed.loads
            sim.fill(ACCOUNT, c.MSFT, "-0.1", "420", commission=D(0))
            await eventually(
                lambda: (
                    app.runtime.db.run_sync(repository.realized_total)["USD"].total
                    == D("399") + D("11")
                )
            )
            await asyncio.sleep(0.5)
            assert feed.loads == loads and chart.series.total == D(399)
            w.tabs.setCurrentWidget(w.charts)  # shown again: reloaded at once
            await eventually(lambda: chart.series.total == D(410))
            assert days_of(chart) == [(today, D(410), D(410))]

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_axis_ticks_enclose_the_values_at_round_steps():
    """Regression: the top tick once stopped below the largest value, so the tallest bar and
    the largest quantity were drawn above the plot."""
    for low, high in [(-12000, 700), (0, 45), (123.5, 125.2), (-0.3, 0.2), (0.001, 0.0042)]:
        ticks = nice_ticks(low, high)
        assert ticks[0] <= low and ticks[-1] >= high
        steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
        assert len(steps) == 1
    assert nice_ticks(0, 45) == [0, 10, 20, 30, 40, 50]
    ticks = nice_ticks(5, 5)  # a flat line still gets an axis around it
    assert ticks[0] < 5 < ticks[-1]
    assert [tick_label(t, [0, 0.25]) for t in (0, 0.25, 1250)] == ["0", "0.25", "1,250.00"]


def test_time_ticks_fall_on_local_midnights_for_long_spans():
    start = datetime(2026, 11, 20, 17, 46, tzinfo=UTC)
    ticks = time_ticks(start, start + timedelta(days=5), 5)
    assert [t.astimezone().time() for t in ticks] == [time(0)] * len(ticks)
    assert all(start < t <= start + timedelta(days=5) for t in ticks)
    short = time_ticks(start, start + timedelta(hours=6), 3)
    assert short == [start, start + timedelta(hours=3), start + timedelta(hours=6)]


def two_currency_ledger(path) -> None:
    """AAPL (USD) closed at −202 exact; SAP (EUR) still open with +100 realized, all of it an
    estimate (written as the fold writes one: the lifecycle's estimated part and the event's
    basis, columns of revision 0007)."""
    import sqlalchemy as sa

    from app.domain.values import Contract

    sap = Contract(14204, "SAP", currency="EUR", exchange="IBIS", local_symbol="SAP")
    with open_database(path) as db:
        commit(db, snapshot(pos(AAPL, "100", "150"), pos(sap, "10", "100")))
        sells = (
            fill(AAPL, "SLD", "40", "160", commission="1", minutes=10),  # +399 USD
            fill(sap, "SLD", "4", "125", commission="0", minutes=10),  # +100 EUR
        )
        commit(db, snapshot(pos(AAPL, "60", "150"), pos(sap, "6", "100"), fills=sells, minutes=11))
        close = fill(AAPL, "SLD", "60", "140", commission="1", minutes=DAY + 10)  # −601 USD
        commit(db, snapshot(pos(sap, "6", "100"), fills=(close,), minutes=DAY + 11))

        def estimate(session) -> None:
            session.execute(
                sa.text(
                    "UPDATE positions SET realized_pnl_estimated = realized_pnl, "
                    "pnl_basis = 'estimated' WHERE symbol = 'SAP'"
                )
            )
            session.execute(
                sa.text(
                    "UPDATE position_events SET pnl_basis = 'estimated' WHERE realized_pnl IS "
                    "NOT NULL AND position_id = (SELECT id FROM positions WHERE symbol = 'SAP')"
                )
            )

        db.run_sync(estimate)


def test_currencies_charted_apart_and_estimates_marked(make_app, qloop, tmp_path):
    """Guards: the daily chart and the Closed view's totals adding USD and EUR into one figure
    (issue 15, item 5), and an estimated amount shown as if exact (item 10)."""
    two_currency_ledger(tmp_path / "ledger.sqlite")
    app = make_app(free_port())
    app.controller.charts.tz = UTC
    w = app.window
    chart = w.charts.pnl_chart
    picker = w.charts.pnl_currency

    async def scenario():
        await app.start()
        # The Closed view: per currency, exact and estimated apart, never one sum.
        await eventually(lambda: "closed positions" in w.closed_totals.text())
        totals = w.closed_totals.text()
        assert (
            "<b>1</b> closed positions · realized P&amp;L, <b>average cost</b>: USD <b>-202.00</b>"
            in totals
        )
        assert (
            "partial closes of open positions: EUR <b>100.00</b> "
            "(exact 0.00, <i>estimated 100.00</i>)" in totals
        )
        assert "-102" not in totals and "298" not in totals  # no cross-currency sums

        w.tabs.setCurrentWidget(w.charts)
        await eventually(lambda: chart.series.days)
        assert [picker.itemText(i) for i in range(picker.count())] == ["EUR", "USD"]
        assert picker.isEnabled() and chart.series.currency == "EUR"
        (day,) = chart.series.days
        assert (day.realized, day.exact, day.estimated) == (D(100), D(0), D(100))
        caption = w.charts.pnl_title.text()
        assert "total <b>100.00</b> EUR (<i>estimated 100.00</i>, hatched)" in caption
        assert "also realized in USD" in caption
        assert "estimated 100.00" in chart.day_tip(day) and "EUR" in chart.day_tip(day)
        w.charts.pnl_chart.resize(600, 300)
        assert painted(chart, GAIN) > 0  # drawn (hatched) without error

        picker.setCurrentText("USD")
        await eventually(lambda: chart.series.currency == "USD")
        assert days_of(chart) == [
            (date(2026, 11, 24), D("399"), D("399")),
            (date(2026, 11, 25), D("-601"), D("-202")),
        ]
        assert chart.series.estimated == 0 and "also realized in EUR" in w.charts.pnl_title.text()
        # A reload keeps the picked currency.
        app.controller.charts.ledger_changed()
        loads = app.controller.charts.loads
        await eventually(lambda: app.controller.charts.loads > loads)
        assert chart.series.currency == "USD" and picker.currentText() == "USD"

    qloop.run_until_complete(scenario())
