"""Money per currency: realized totals that never add currencies, and a base-currency figure
only from IB's own exchange rates.

DESIGN "Money is per currency": amounts in different currencies are never added. A total is kept
per currency, with its exact and estimated parts apart and the count of amounts that could not
be priced at all (`unknown`: their amount is not in any figure). A base-currency figure is made
only from IB's `ExchangeRate` account values, names the rates (and their time) it used, and is
refused — with the currencies that lack a rate — rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from app.domain.values import ZERO, ExchangeRate, Lifecycle, PnlBasis


@dataclass(frozen=True, slots=True)
class RealizedTotals:
    """Realized P&L of one currency: the exact part, the estimated part, and how many realized
    amounts are unknown (unpriced, so in neither part)."""

    exact: Decimal = ZERO
    estimated: Decimal = ZERO
    unknown_count: int = 0

    @property
    def total(self) -> Decimal:
        """Exact plus estimated (one currency: adding them is sound, but show both parts)."""
        return self.exact + self.estimated

    def plus(self, other: RealizedTotals) -> RealizedTotals:
        """Both totals together (same currency: the caller keys by currency)."""
        return RealizedTotals(
            self.exact + other.exact,
            self.estimated + other.estimated,
            self.unknown_count + other.unknown_count,
        )


ByCurrency = dict[str, RealizedTotals]
"""Realized totals keyed by ISO currency code ("" where a legacy row stored none)."""


def _add(totals: ByCurrency, currency: str, part: RealizedTotals) -> None:
    known = totals.get(currency)
    totals[currency] = part if known is None else known.plus(part)


def _sorted(totals: ByCurrency) -> ByCurrency:
    return {currency: totals[currency] for currency in sorted(totals)}


def totals_from_lifecycles(lifecycles: Iterable[Lifecycle]) -> ByCurrency:
    """Realized totals per contract currency of these lifecycles, sorted by currency.

    A lifecycle's estimated part is `realized_pnl_estimated`; the rest of `realized_pnl` is
    exact. A lifecycle whose basis is `unknown` counts once as unknown (some amount of it could
    not be priced and is in no figure). Lifecycles that realized nothing add nothing, not even
    their currency.
    """
    return totals_from_parts(
        (life.contract.currency, life.realized_pnl, life.realized_pnl_estimated, life.pnl_basis)
        for life in lifecycles
    )


LifecycleParts = tuple[str, Decimal, Decimal, PnlBasis | None]
"""(currency, realized_pnl, realized_pnl_estimated, pnl_basis) of one lifecycle."""


def totals_from_parts(parts: Iterable[LifecycleParts]) -> ByCurrency:
    """`totals_from_lifecycles` from the four stored columns alone (the repository's query)."""
    totals: ByCurrency = {}
    for currency, realized, estimated, basis in parts:
        if realized == 0 and estimated == 0 and basis is None:
            continue  # realized nothing (yet)
        unknown = 1 if basis is PnlBasis.UNKNOWN else 0
        _add(totals, currency, RealizedTotals(realized - estimated, estimated, unknown))
    return _sorted(totals)


def amount_totals(currency: str, amount: Decimal | None, basis: PnlBasis | None) -> RealizedTotals:
    """One event's realized amount as a total: its basis says which part it is in.

    No basis with an amount is a ledger row from before bases were recorded; the lifecycle's
    estimated part (zero for such rows) says the same, so it is exact here too. No amount (or
    basis `unknown`) counts as one unknown amount.
    """
    if amount is None or basis is PnlBasis.UNKNOWN:
        return RealizedTotals(unknown_count=1)
    if basis is PnlBasis.ESTIMATED:
        return RealizedTotals(estimated=amount)
    return RealizedTotals(exact=amount)


def totals_from_amounts(
    amounts: Iterable[tuple[str, Decimal | None, PnlBasis | None]],
) -> ByCurrency:
    """Realized totals per currency of (currency, amount, basis) event amounts, sorted."""
    totals: ByCurrency = {}
    for currency, amount, basis in amounts:
        _add(totals, currency, amount_totals(currency, amount, basis))
    return _sorted(totals)


# ---------------------------------------------------------------------------- base currency
@dataclass(frozen=True, slots=True)
class BaseTotal:
    """Every currency's realized totals converted into the accounts' base currency.

    `rates` are the IB rates used (one per converted currency other than the base itself);
    `rates_at` is the oldest of their times (None when only the base currency was realized).
    """

    base_currency: str
    exact: Decimal
    estimated: Decimal
    unknown_count: int
    rates: tuple[ExchangeRate, ...]
    rates_at: datetime | None

    @property
    def total(self) -> Decimal:
        """Exact plus estimated, in the base currency."""
        return self.exact + self.estimated


@dataclass(frozen=True, slots=True)
class BaseConversion:
    """The result of converting into the base currency: `total`, or why there is none."""

    total: BaseTotal | None
    missing: tuple[str, ...] = ()
    """Currencies that had realized amounts but no IB rate into the base currency."""
    reason: str | None = None
    """Why there is no base-currency figure (None when `total` is set)."""


def latest_rates(rates: Iterable[ExchangeRate]) -> dict[tuple[str, str], ExchangeRate]:
    """The newest rate per (currency, base currency), whichever account reported it."""
    newest: dict[tuple[str, str], ExchangeRate] = {}
    for rate in rates:
        key = (rate.currency, rate.base_currency)
        known = newest.get(key)
        if known is None or rate.at > known.at:
            newest[key] = rate
    return newest


def to_base(totals: Mapping[str, RealizedTotals], rates: Iterable[ExchangeRate]) -> BaseConversion:
    """Convert per-currency totals into the base currency with IB's rates, or refuse.

    Refused (total None, with the reason) when no rate is known, when the accounts' rates name
    more than one base currency (there is no single base to add into), or when a currency with
    realized amounts has no rate into the base (`missing` names them). The base currency's own
    amounts need no rate. Rates are never chained or inverted: only what IB reported is used.
    """
    newest = latest_rates(r for r in rates if r.currency != r.base_currency)
    bases = sorted({base for _, base in newest} | {r.base_currency for r in rates})
    if not bases:
        return BaseConversion(None, tuple(c for c in totals), "no exchange rates are known")
    if len(bases) > 1:
        return BaseConversion(
            None, (), f"the accounts have different base currencies ({', '.join(bases)})"
        )
    base = bases[0]
    exact = estimated = ZERO
    unknown = 0
    used: list[ExchangeRate] = []
    missing: list[str] = []
    for currency, part in totals.items():
        unknown += part.unknown_count
        if currency == base:
            exact += part.exact
            estimated += part.estimated
            continue
        rate = newest.get((currency, base))
        if rate is None:
            missing.append(currency)
            continue
        used.append(rate)
        exact += part.exact * rate.rate
        estimated += part.estimated * rate.rate
    if missing:
        return BaseConversion(
            None, tuple(missing), f"no {base} exchange rate is known for {', '.join(missing)}"
        )
    at = min((r.at for r in used), default=None)
    return BaseConversion(BaseTotal(base, exact, estimated, unknown, tuple(used), at))
