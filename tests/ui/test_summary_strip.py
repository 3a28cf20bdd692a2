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
