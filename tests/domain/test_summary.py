"""The summary strip's figures (issue 19): per account and per currency, never added across
currencies; exact and estimated apart; a base-currency line only from IB's rates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from app.domain.money import RealizedTotals
from app.domain.series import RealizedAmount
from app.domain.summary import day_start, summarize
from app.domain.values import (
    Contract,
    ExchangeRate,
    Lifecycle,
    PnlBasis,
    PositionStatus,
)
from tests.domain.ledger_fixture import at

D = Decimal
T = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
AAPL = Contract(265598, "AAPL")
MSFT = Contract(272093, "MSFT")
SAP = Contract(14204, "SAP", currency="EUR")
VOD = Contract(13, "VOD", currency="GBP")


def life(pid, account, contract, *, status=PositionStatus.OPEN, **values) -> Lifecycle:
    return Lifecycle(pid, account, contract, D(10), D(100), status, T, **values)


LEDGER = [
    life(1, "DU1", AAPL, unrealized_pnl=D("120.50"), realized_pnl=D(40), pnl_basis=PnlBasis.EXACT),
    life(2, "DU1", SAP, unrealized_pnl=D("-30"), missing_since=T),
    life(
        3, "DU2", MSFT, unrealized_pnl=D("10"), realized_pnl=D(80),
        realized_pnl_estimated=D(80), pnl_basis=PnlBasis.ESTIMATED,
    ),
    life(4, "DU2", SAP, status=PositionStatus.CLOSED, realized_pnl=D("-15.5"),
         pnl_basis=PnlBasis.EXACT),
    life(5, "DU2", AAPL, unrealized_pnl=None),  # no market data yet
]  # fmt: skip
TODAY = [
    RealizedAmount("DU1", "USD", T, D(40), PnlBasis.EXACT),
    RealizedAmount("DU2", "USD", T, D(80), PnlBasis.ESTIMATED),
    RealizedAmount("DU2", "EUR", T, None, PnlBasis.UNKNOWN),
]
RATES = [
    ExchangeRate("DU1", "EUR", "USD", D("1.08"), T),
    ExchangeRate("DU2", "EUR", "USD", D("1.10"), T.replace(hour=10)),
]


def test_all_accounts_per_currency():
    s = summarize(LEDGER, TODAY, RATES)
    assert s.account is None
    by_currency = {c.currency: c for c in s.currencies}
    usd, eur = by_currency["USD"], by_currency["EUR"]
    assert [c.currency for c in s.currencies] == ["EUR", "USD"]
    assert (usd.open_positions, usd.missing, usd.unrealized, usd.unrealized_unknown) == (
        3, 0, D("130.50"), 1,
    )  # fmt: skip
    assert usd.realized_today == RealizedTotals(D(40), D(80), 0)
    assert usd.realized_total == RealizedTotals(D(40), D(80), 0)
    assert (eur.open_positions, eur.missing, eur.unrealized) == (1, 1, D(-30))
    assert eur.realized_today == RealizedTotals(unknown_count=1)
    assert eur.realized_total == RealizedTotals(D("-15.5"), D(0), 0)
    # In USD with IB's newest EUR rate (1.10, DU2's): never a sum of raw amounts.
    assert s.unrealized_base is not None and s.unrealized_base.total is not None
    assert s.unrealized_base.total.exact == D("130.50") + D(-30) * D("1.10")
    total = s.realized_total_base
    assert total is not None and total.total is not None
    assert (total.total.exact, total.total.estimated) == (D(40) + D("-15.5") * D("1.10"), D(80))


def test_one_account_only():
    s = summarize(LEDGER, TODAY, RATES, account="DU1")
    assert [(c.currency, c.open_positions) for c in s.currencies] == [("EUR", 1), ("USD", 1)]
    usd = next(c for c in s.currencies if c.currency == "USD")
    assert usd.realized_today == RealizedTotals(D(40), D(0), 0)
    # DU1's own rate, not DU2's.
    assert s.unrealized_base is not None and s.unrealized_base.total is not None
    assert s.unrealized_base.total.exact == D("120.50") + D(-30) * D("1.08")


def test_no_rate_means_no_base_figure_and_says_why():
    ledger = [*LEDGER, life(6, "DU1", VOD, unrealized_pnl=D(5))]
    s = summarize(ledger, (), RATES)
    assert s.unrealized_base is not None and s.unrealized_base.total is None
    assert "GBP" in (s.unrealized_base.reason or "")


def test_a_single_currency_needs_no_base_line():
    s = summarize([LEDGER[0]], (), RATES)
    assert s.unrealized_base is None and s.realized_total_base is None


def test_day_start_is_local_midnight():
    now = datetime(2026, 12, 5, 15, 42, 7, 12, tzinfo=UTC)
    assert day_start(now) == datetime(2026, 12, 5, tzinfo=UTC)


def test_account_figures_add_one_currency_at_a_time_and_keep_ages() -> None:
    """Issue 19. Guards: NetLiq of a USD-based and an EUR-based account added into one total,
    EUR ledger cash added to USD cash, a BASE ledger row counted beside the totals, an
    unparseable value shown as 0, and a sum younger than its oldest part."""
    from app.domain.account_values import account_figures
    from app.domain.values import AccountValue

    def v(account: str, tag: str, currency: str, text: str, minutes: float) -> AccountValue:
        return AccountValue(account, tag, currency, text, at(minutes))

    values = [
        v("DU1", "NetLiquidation", "USD", "1000", 1),
        v("DU1", "TotalCashValue", "USD", "400", 1),
        v("DU1", "CashBalance", "USD", "300", 1),
        v("DU1", "CashBalance", "EUR", "90", 1),
        v("DU1", "CashBalance", "BASE", "400", 1),
        v("DU1", "NetLiquidationByCurrency", "USD", "890", 1),
        v("DU2", "NetLiquidation", "EUR", "500", 2),
        v("DU2", "TotalCashValue", "EUR", "oops", 2),
        v("DU2", "CashBalance", "EUR", "10", 0),
        v("DU3", "NetLiquidation", "USD", "5", 3),
        v("DU3", "NetLiquidation", "GBP", "4", 3),  # a per-currency total: not DU3's total
    ]
    bases = {"DU1": "USD", "DU2": "EUR", "DU3": "USD", "DU4": None}
    every = account_figures(values, bases, bases)
    by = {c.currency: c for c in every.by_currency}
    assert sorted(by) == ["EUR", "USD"]  # no BASE ledger row
    assert by["EUR"].cash is not None and by["EUR"].cash.amount == 100  # DU1 90 + DU2 10
    assert by["EUR"].cash.at == at(0) and by["EUR"].cash.accounts == ("DU1", "DU2")
    assert by["EUR"].net_liquidation is None  # IB never sent it: unknown, not 0
    totals = {c.currency: c for c in every.in_base}
    usd, eur = totals["USD"].net_liquidation, totals["EUR"].net_liquidation
    assert usd is not None and usd.amount == 1005  # DU1 and DU3, both USD-based
    assert eur is not None and eur.amount == 500
    assert totals["EUR"].cash is None  # "oops" is no number
    assert "GBP" not in totals
    assert every.without == ("DU4",) and every.newest == at(3) and every.oldest == at(0)
    one = account_figures(values, bases, bases, account="DU2")
    assert [c.currency for c in one.in_base] == ["EUR"] and one.without == ()
