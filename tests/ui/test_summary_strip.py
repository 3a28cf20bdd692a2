"""The summary strip over a known ledger (two accounts, two currencies, an estimate), offline
from the cache, following the account filter (issue 19)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.db.migrate import open_database
from app.domain.money import RealizedTotals
from app.domain.values import Contract
from app.ui.palette import LIGHT
from app.ui.summary_strip import summary_html
from tests.db.test_repository import commit
from tests.domain.ledger_fixture import AAPL, MSFT, T0, fill, pos, snapshot
from tests.ui.conftest import eventually, free_port

D = Decimal
SAP = Contract(14204, "SAP", currency="EUR", exchange="IBIS", local_symbol="SAP")
BOTH = ("DU111", "DU222")


def _minutes_ago(minutes: float) -> float:
    """`minutes` before now (but not before local midnight), as ledger_fixture's offset."""
    now = datetime.now(UTC)
    midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    moment = max(now - timedelta(minutes=minutes), midnight.astimezone(UTC) + timedelta(seconds=1))
    return (moment - T0).total_seconds() / 60


def seed_today(path) -> None:
    """DU111: AAPL 100 → 60 by a fill (+399 exact) and MSFT 10 → 6 with no fill (≈ +80 at the
    market price); DU222: SAP in EUR, nothing realized."""
    start, later = _minutes_ago(20), _minutes_ago(10)
    with open_database(path) as db:
        sap = pos(SAP, "10", "100", account="DU222", market="90")
        commit(
            db,
            snapshot(
                pos(AAPL, "100", "150", market="160"),
                pos(MSFT, "10", "300", market="320"),
                sap,
                accounts=BOTH,
                minutes=start,
            ),
        )
        sell = fill(AAPL, "SLD", "40", "160", commission="1", minutes=later - 1)
        commit(
            db,
            snapshot(
                pos(AAPL, "60", "150", market="160"),
                pos(MSFT, "6", "300", market="320"),
                sap,
                fills=(sell,),
                accounts=BOTH,
                minutes=later,
            ),
        )


def test_summary_strip_per_account_and_currency(make_app, qloop, tmp_path):
    seed_today(tmp_path / "ledger.sqlite")
    app = make_app(free_port())  # offline: the strip comes from the cache
    w = app.window
    strip = w.summary_strip

    async def scenario():
        await app.start()
        await eventually(lambda: strip.summary is not None and strip.summary.currencies)
        summary = strip.summary
        assert summary.account is None
        by = {c.currency: c for c in summary.currencies}
        usd, eur = by["USD"], by["EUR"]
        assert (usd.open_positions, usd.unrealized) == (2, D(600) + D(120))
        assert usd.realized_today == RealizedTotals(D(399), D(80), 0)
        assert usd.realized_total == usd.realized_today
        assert (eur.open_positions, eur.unrealized) == (1, D(-100))
        assert eur.realized_total == RealizedTotals()
        text = strip.text()
        assert "All accounts" in text and "as of the last sync" in text
        assert "+479.00" in text and "≈ 80.00 estimated" in text and "-100.00" in text
        # No rates stored: no sum across USD and EUR, and the strip says why.
        assert "no base-currency figure" in text

        w.account_filter.setCurrentText("DU222")
        await eventually(lambda: strip.summary.account == "DU222")
        assert [c.currency for c in strip.summary.currencies] == ["EUR"]
        assert "DU222" in strip.text() and "USD" not in strip.text()

    qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_summary_html_never_adds_currencies_and_marks_estimates():
    from app.domain.summary import CurrencySummary, Summary

    summary = Summary(
        None,
        (
            CurrencySummary("EUR", 1, 1, D(-30), 0, RealizedTotals(), RealizedTotals(D(5))),
            CurrencySummary("USD", 2, 0, D(10), 1, RealizedTotals(D(1), D(2), 1), RealizedTotals()),
        ),
        None,
        None,
        None,
    )
    text = summary_html(summary, last_synced=None, colours=LIGHT)
    assert "no complete sync yet" in text
    assert "⚠ 1 missing at broker" in text and "(1 without a price)" in text
    assert "+3.00</span> <i>(≈ 2.00 estimated)</i> <i>+ 1 ?</i>" in text
    assert "In the base currency" not in text  # no conversion: nothing added up


def seed_account_values(path, reported_at: datetime) -> None:
    """What IB last said for both accounts, as an OK sync would store it: DU111 (USD base) holds
    USD and EUR cash, DU222 (EUR base) EUR; rates name their base currencies."""
    from app.db import account_values, rates
    from app.domain.values import AccountValue, ExchangeRate

    def v(account: str, tag: str, currency: str, text: str) -> AccountValue:
        return AccountValue(account, tag, currency, text, reported_at)

    values = [
        v("DU111", "NetLiquidation", "USD", "125310.55"),
        v("DU111", "TotalCashValue", "USD", "48950.00"),
        v("DU111", "NetLiquidationByCurrency", "USD", "126400.00"),
        v("DU111", "NetLiquidationByCurrency", "EUR", "-1000.00"),
        v("DU111", "CashBalance", "USD", "50040.00"),
        v("DU111", "CashBalance", "EUR", "-1000.00"),
        v("DU111", "CashBalance", "BASE", "48950.00"),
        v("DU222", "NetLiquidation", "EUR", "20900.00"),
        v("DU222", "TotalCashValue", "EUR", "20000.00"),
        v("DU222", "NetLiquidationByCurrency", "EUR", "20900.00"),
        v("DU222", "CashBalance", "EUR", "20000.00"),
    ]
    fx = [
        ExchangeRate("DU111", "EUR", "USD", D("1.09"), reported_at),
        ExchangeRate("DU222", "USD", "EUR", D("0.92"), reported_at),
    ]
    with open_database(path) as db:
        db.run_sync(rates.store_rates, fx)
        db.run_sync(account_values.store_account_values, values)


def test_summary_strip_shows_ib_netliq_and_cash_offline_with_their_age(make_app, qloop, tmp_path):
    """Issue 19: offline (no TWS), the strip shows IB's NetLiq and cash from the ledger with
    their age — per currency summed over the accounts (EUR cash: -1,000 + 20,000), the totals
    per base currency (USD 125,310.55 and EUR 20,900.00 never added), per account filter.

    Guards: NetLiq and cash missing offline, and two base currencies added into one figure."""
    path = tmp_path / "ledger.sqlite"
    seed_today(path)
    seed_account_values(path, datetime.now(UTC) - timedelta(hours=3, minutes=5))
    app = make_app(free_port())
    w = app.window
    strip = w.summary_strip

    async def scenario():
        await app.start()
        await eventually(lambda: strip.summary is not None and strip.summary.currencies)
        values = strip.summary.account_values
        by = {c.currency: c for c in values.by_currency}
        assert by["EUR"].cash.amount == D("19000.00") and by["USD"].cash.amount == D("50040")
        totals = {c.currency: c for c in values.in_base}
        assert totals["USD"].net_liquidation.amount == D("125310.55")
        assert totals["EUR"].net_liquidation.amount == D("20900.00")
        text = strip.text()
        assert "IB account values as of" in text and "3 h 5 min ago" in text
        assert "<b>EUR</b> 19,000.00" in text and "<b>USD</b> 125,310.55" in text
        assert "<b>EUR</b> 20,900.00 (DU222)" in text and "146,210.55" not in text

        w.account_filter.setCurrentText("DU222")
        await eventually(lambda: strip.summary.account == "DU222")
        text = strip.text()
        assert "<b>EUR</b> 20,900.00" in text and "125,310.55" not in text
        assert "<b>EUR</b> 20,000.00" in text and "3 h 5 min ago" in text

    qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_summary_html_marks_an_older_value_and_never_shows_a_missing_one_as_zero():
    """Guards: a value IB stopped sending shown as current (it says its own time) or as 0."""
    from app.domain.account_values import AccountFigures, CurrencyFigures, Figure
    from app.domain.summary import Summary

    now = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
    fresh, old = now - timedelta(minutes=10), now - timedelta(days=2)
    values = AccountFigures(
        by_currency=(CurrencyFigures("USD", Figure(D(5), fresh, ("DU1",)), None),),
        in_base=(CurrencyFigures("USD", Figure(D(7), old, ("DU1",)), Figure(D(-2), fresh, ())),),
        newest=fresh,
        oldest=old,
        without=("DU9",),
    )
    summary = Summary(None, (), None, None, None, account_values=values)
    text = summary_html(summary, last_synced=None, colours=LIGHT, now=now)
    assert "as of" in text and "10 min ago" in text
    assert "7.00 <i>(of " in text and "2 d ago)</i>" in text  # the older total says so
    assert "<b>Cash</b>: <b>USD</b> <i>unknown</i>" in text  # never 0.00
    assert "nothing from IB yet for DU9" in text
    empty = summary_html(Summary(None, (), None, None, None), last_synced=None, colours=LIGHT)
    assert "no account values from IB in the ledger yet" in empty
