"""The window's summary strip as figures: per account (or all) and per currency, never added
across currencies; a base-currency line only from IB's own exchange rates.

Pure: the cached lifecycles, today's realizing events and the stored rates in, figures out.
Everything comes from the ledger, so it reads the same offline as live (as of the last sync).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from app.domain.account_values import AccountFigures, account_figures
from app.domain.money import BaseConversion, RealizedTotals, to_base
from app.domain.realized import amounts_by_currency, lifecycle_totals
from app.domain.series import RealizedAmount
from app.domain.values import ZERO, AccountValue, CostBasis, ExchangeRate, Lifecycle


@dataclass(frozen=True, slots=True)
class CurrencySummary:
    """One currency's figures (of the contracts quoted in it)."""

    currency: str
    open_positions: int = 0
    missing: int = 0
    """Open positions the broker stopped reporting (DESIGN rule 2)."""
    unrealized: Decimal = ZERO
    """Sum of the open positions' unrealized P&L as IB reported it at the last sync."""
    unrealized_unknown: int = 0
    """Open positions without an unrealized figure (no market data yet): in no sum."""
    realized_today: RealizedTotals = field(default_factory=RealizedTotals)
    realized_total: RealizedTotals = field(default_factory=RealizedTotals)
    """Every lifecycle's realized P&L, open (partial closes) and closed."""


@dataclass(frozen=True, slots=True)
class Summary:
    """The strip's content for one account, or all of them (`account` None)."""

    account: str | None
    currencies: tuple[CurrencySummary, ...]
    unrealized_base: BaseConversion | None
    """Unrealized in the base currency (None: nothing open to convert)."""
    realized_today_base: BaseConversion | None
    realized_total_base: BaseConversion | None
    """Base-currency figures: None where fewer than two currencies are involved (the currency's
    own line is the figure); else the conversion with IB's rates, or why there is none."""
    cost_basis: CostBasis = CostBasis.AVERAGE
    """Which realized figure (today and total) the summary holds: average cost or FIFO lots."""
    account_values: AccountFigures = field(default_factory=AccountFigures)
    """IB's NetLiq and cash as last reported (per currency; totals per base currency)."""


def _base(totals: dict[str, RealizedTotals], rates: list[ExchangeRate]) -> BaseConversion | None:
    if len(totals) < 2:
        return None
    return to_base(totals, rates)


def summarize(
    lifecycles: Iterable[Lifecycle],
    today: Iterable[RealizedAmount],
    rates: Iterable[ExchangeRate],
    *,
    account: str | None = None,
    cost_basis: CostBasis = CostBasis.AVERAGE,
    realized: Iterable[RealizedAmount] = (),
    account_values: Iterable[AccountValue] = (),
    bases: Mapping[str, str | None] | None = None,
) -> Summary:
    """The figures of `account` (None: every account).

    `lifecycles` are the cached ones, open and closed; `today` the realizing events of the
    current local day (realized today) as `cost_basis` picks them; `rates` IB's stored
    `ExchangeRate` values; `realized` every realizing event's FIFO amount (read only under FIFO:
    a lifecycle row stores no FIFO sum, app.domain.realized); `account_values` IB's stored NetLiq
    and cash values and `bases` every known account's base currency (its keys are the accounts
    "every account" means).
    """
    chosen = [p for p in lifecycles if account is None or p.account == account]
    chosen_rates = [r for r in rates if account is None or r.account == account]
    open_rows = [p for p in chosen if p.is_open]
    counts: dict[str, list[int]] = {}
    unrealized: dict[str, Decimal] = {}
    for p in open_rows:
        currency = p.contract.currency
        count = counts.setdefault(currency, [0, 0, 0])
        count[0] += 1
        count[1] += p.missing_since is not None
        if p.unrealized_pnl is None:
            count[2] += 1
        else:
            unrealized[currency] = unrealized.get(currency, ZERO) + p.unrealized_pnl
    today_totals = amounts_by_currency(today, account=account)
    total_totals = lifecycle_totals(chosen, cost_basis, realized)
    currencies = sorted(set(counts) | set(today_totals) | set(total_totals))
    rows = tuple(
        CurrencySummary(
            currency,
            open_positions=counts.get(currency, [0, 0, 0])[0],
            missing=counts.get(currency, [0, 0, 0])[1],
            unrealized=unrealized.get(currency, ZERO),
            unrealized_unknown=counts.get(currency, [0, 0, 0])[2],
            realized_today=today_totals.get(currency, RealizedTotals()),
            realized_total=total_totals.get(currency, RealizedTotals()),
        )
        for currency in currencies
    )
    unrealized_totals = {c: RealizedTotals(exact=v) for c, v in unrealized.items()}
    bases = bases or {}
    codes = set(bases) | {p.account for p in chosen}
    return Summary(
        account,
        rows,
        _base(unrealized_totals, chosen_rates),
        _base(today_totals, chosen_rates),
        _base(dict(total_totals), chosen_rates),
        cost_basis,
        account_figures(account_values, bases, codes, account=account),
    )


def day_start(now: datetime) -> datetime:
    """The start of `now`'s local calendar day (aware; `now` in the zone whose day counts)."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
