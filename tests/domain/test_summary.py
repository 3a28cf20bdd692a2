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
