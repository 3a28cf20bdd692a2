"""NetLiq and cash from IB's account values: which tags the ledger keeps and how the strip and
`status` read them — per currency, never adding amounts of different currencies.

What TWS sends (updateAccountValue, the TWS Account Window's values: IBKR API docs "Account
Updates", interactivebrokers.github.io/tws-api/account_updates.html):
- `NetLiquidation` and `TotalCashValue` are account totals, sent in the account's base currency
  (a recorded download: `NetLiquidation,1000414.50,USD`, with `-C`/`-S` segment variants beside
  it — github.com/erdewit/ib_insync/issues/93). IB: NetLiquidation is "total cash value + stock
  value + options value + bond value", TotalCashValue "total cash balance recognized at the time
  of trade + futures PNL" (the AccountSummaryTags list, interactivebrokers.github.io/tws-api/
  classIBApi_1_1AccountSummaryTags.html and account_summary.html).
- The account ledger comes per currency and once more as `BASE`: `NetLiquidationByCurrency` and
  `CashBalance` (the `$LEDGER` tags of account_summary.html: "account summary data (including
  CashBalance and TotalCashBalance) for every currency separately"; QuantConnect/Lean#200 reads
  both from updateAccountValue). Since May 2026 TWS may prefix per-currency keys with `$LEDGER-`
  (TWS API changelog, "Per-Currency Account Value Prefix": a key such as AccruedCash exists as
  an account total and per currency, and the prefix tells them apart); the broker adapter reads
  `$LEDGER-CashBalance` as `CashBalance`.
Some clients report the totals per currency too (github.com/TraderAlice/OpenAlice/issues/295);
the totals here are read only in the account's base currency, so a per-currency row of the same
tag never passes for the account total.

Pure: stored values and each account's base currency in, figures out. A value is a fact of its
time: a sum carries the oldest time in it, and a value IB stopped sending stays with its age,
never replaced by a zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from app.domain.values import AccountValue

NET_LIQUIDATION = "NetLiquidation"
TOTAL_CASH_VALUE = "TotalCashValue"
NET_LIQUIDATION_BY_CURRENCY = "NetLiquidationByCurrency"
CASH_BALANCE = "CashBalance"
KEPT_TAGS = frozenset(
    {NET_LIQUIDATION, TOTAL_CASH_VALUE, NET_LIQUIDATION_BY_CURRENCY, CASH_BALANCE}
)
"""The account values the ledger stores (table `account_values`)."""
BASE = "BASE"
"""The currency field of IB's base-currency ledger rows (which do not name the currency)."""


def amount(text: str) -> Decimal | None:
    """A stored value as a number; None when it is not a finite number (never a zero)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


@dataclass(frozen=True, slots=True)
class Figure:
    """A sum of one tag's values in one currency over one or more accounts."""

    amount: Decimal
    at: datetime
    """The oldest report in the sum (UTC): the figure is as old as its oldest part."""
    accounts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CurrencyFigures:
    """NetLiq and cash in one currency; either may be unknown (IB never sent it)."""

    currency: str
    net_liquidation: Figure | None
    cash: Figure | None


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """What the strip shows of IB's account values for an account filter's choice."""

    by_currency: tuple[CurrencyFigures, ...] = ()
    """The ledger per currency (NetLiquidationByCurrency, CashBalance), summed per currency."""
    in_base: tuple[CurrencyFigures, ...] = ()
    """The account totals (NetLiquidation, TotalCashValue), one entry per base currency: accounts
    with different base currencies are never added together."""
    newest: datetime | None = None
    oldest: datetime | None = None
    without: tuple[str, ...] = ()
    """Accounts of the choice that have no stored NetLiq or cash at all."""

    @property
    def empty(self) -> bool:
        return not self.by_currency and not self.in_base


def _add(known: Figure | None, value: Decimal, at: datetime, account: str) -> Figure:
    if known is None:
        return Figure(value, at, (account,))
    return Figure(known.amount + value, min(known.at, at), (*known.accounts, account))


def base_currency_of(
    account: str, values: Iterable[AccountValue], stored: str | None
) -> str | None:
    """The account's base currency: the stored one (from IB's rates), else the one currency its
    totals came in (None when they came in several: then a total cannot be told apart)."""
    if stored:
        return stored
    seen = {
        v.currency
        for v in values
        if v.account == account and v.tag in (NET_LIQUIDATION, TOTAL_CASH_VALUE)
        if v.currency not in ("", BASE)
    }
    return seen.pop() if len(seen) == 1 else None


def account_figures(
    values: Iterable[AccountValue],
    bases: Mapping[str, str | None],
    accounts: Iterable[str],
    *,
    account: str | None = None,
) -> AccountFigures:
    """The figures of `account` (None: every one of `accounts`).

    `values` are the stored account values; `bases` each account's base currency as stored.
    Amounts are added only within one currency (and, for totals, one base currency).
    """
    chosen = sorted({a for a in accounts if account is None or a == account})
    kept = [v for v in values if (account is None or v.account == account) and v.tag in KEPT_TAGS]
    ledger: dict[str, dict[str, Figure]] = {}
    totals: dict[str, dict[str, Figure]] = {}
    times: list[datetime] = []
    seen: set[str] = set()
    by_account: dict[str, list[AccountValue]] = {}
    for v in kept:
        by_account.setdefault(v.account, []).append(v)
    for code, rows in sorted(by_account.items()):
        base = base_currency_of(code, rows, bases.get(code))
        for v in rows:
            number = amount(v.value)
            if number is None:
                continue
            if v.tag in (NET_LIQUIDATION_BY_CURRENCY, CASH_BALANCE):
                if v.currency in ("", BASE):
                    continue  # the BASE row repeats the totals below in other words
                target = ledger.setdefault(v.currency, {})
            elif base is not None and v.currency == base:
                target = totals.setdefault(base, {})
            else:
                continue  # a total in another currency than the base: not the account's total
            kind = "net" if v.tag in (NET_LIQUIDATION, NET_LIQUIDATION_BY_CURRENCY) else "cash"
            target[kind] = _add(target.get(kind), number, v.at, code)
            times.append(v.at)
            seen.add(code)

    def rows_of(table: dict[str, dict[str, Figure]]) -> tuple[CurrencyFigures, ...]:
        return tuple(
            CurrencyFigures(currency, parts.get("net"), parts.get("cash"))
            for currency, parts in sorted(table.items())
        )

    return AccountFigures(
        by_currency=rows_of(ledger),
        in_base=rows_of(totals),
        newest=max(times) if times else None,
        oldest=min(times) if times else None,
        without=tuple(a for a in chosen if a not in seen),
    )
