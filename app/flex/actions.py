"""Rows of the OptionEAE, CorporateActions and Transfers sections → fills the fold books, or a
note that the row is not applied.

The fold (app.domain.fold) takes fills and broker observations; each row here becomes fills
only where a fill states exactly what IB booked:

- OptionEAE (IB: "Option Exercises, Assignments and Expirations"; element and attribute names
  as in csingley/ibflex, ibflex/Types.py `OptionEAE`): `Expiration`, `Assignment` and
  `Exercise` close the option at `tradePrice` (0 for an expiry: the premium is realized
  exactly); `Buy` / `Sell` rows are the underlying's delivery at the strike. A row carries a
  date only; IB processes these after the close, so it is booked at 23:59:59 of that date in
  the statement's zone (before the next morning's sync, after that evening's). The same booking
  appears in Trades as a BookTrade with the same `tradeID` (notes Ep / A / Ex): both become the
  same execId (`flex-trade:<tradeID>`), and a statement holding both books it once.
- CorporateActions, type `FS` (forward split) on the same conId: the shares added at no cost
  (a buy of the added quantity at price 0 leaves the cost basis unchanged and divides the
  average by the ratio — what a split does). Rows of one action on one conId are netted first.
- Everything else — reverse splits, conId or symbol changes, mergers, spin-offs, and every
  Transfer — cannot be stated as fills without realizing P&L that was never realized (a
  transfer out or a reverse split at price 0 would book a loss). They are listed as not applied;
  the ledger keeps what the syncs derived for them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import time
from decimal import Decimal
from zoneinfo import ZoneInfo

from app.domain.values import ZERO, Fill, Side
from app.flex.rows import RowError, contract, moment, number, required
from app.flex.trades import book_trade_id

AFTER_THE_CLOSE = time(23, 59, 59)
START_OF_DAY = time(0, 0, 0)

OPTION_CLOSES = frozenset({"Expiration", "Assignment", "Exercise"})
DELIVERIES = frozenset({"Buy", "Sell"})


@dataclass(frozen=True, slots=True)
class Skipped:
    """A row that is read but not applied, and why (for the import summary)."""

    text: str


def option_event(attrs: dict[str, str], zone: ZoneInfo) -> Fill | Skipped:
    """An OptionEAE row as the fill IB booked, or why it is not applied."""
    kind = required(attrs, "transactionType")
    if kind not in OPTION_CLOSES | DELIVERIES:
        return Skipped(f"option event {kind!r} ({attrs.get('symbol', '?')}): not applied")
    account = required(attrs, "accountId")
    quantity = number(attrs, "quantity")
    if quantity == 0:
        raise RowError("quantity is 0")
    if kind == "Expiration" and not attrs.get("tradePrice", "").strip():
        price = ZERO  # an expiry is booked at 0
    else:
        price = number(attrs, "tradePrice")
    if price < 0:
        raise RowError(f"tradePrice {attrs['tradePrice']} is negative")
    when = attrs.get("dateTime", "").strip() or required(attrs, "date")
    at = moment(when, zone, date_only_at=AFTER_THE_CLOSE)
    commission: Decimal | None = None
    if attrs.get("commisionsAndTax", "").strip():  # IB's spelling
        commission = -number(attrs, "commisionsAndTax")
    elif kind == "Expiration":
        commission = ZERO  # IB charges nothing for an expiry
    traded = contract(attrs)
    trade_id = attrs.get("tradeID", "").strip()
    exec_id = (
        book_trade_id(trade_id)
        if trade_id
        else f"flex-eae:{account}:{traded.con_id}:{at:%Y%m%d}:{kind}:{quantity}"
    )
    return Fill(
        exec_id=exec_id,
        account=account,
        contract=traded,
        side=Side.BOUGHT if quantity > 0 else Side.SOLD,
        shares=abs(quantity),
        price=price,
        time=at,
        commission=commission,
        commission_currency=traded.currency,
    )


@dataclass(frozen=True, slots=True)
class SplitPart:
    """One CorporateActions row of a forward split (netted per action and conId)."""

    key: tuple[str, str, int]
    """(account, action id, conId)."""
    fill: Fill


def corporate_action(attrs: dict[str, str], zone: ZoneInfo) -> SplitPart | Skipped:
    """A CorporateActions row: a forward split's shares, or why it is not applied."""
    kind = attrs.get("type", "").strip()
    description = attrs.get("description", "").strip() or attrs.get("actionDescription", "")
    if kind != "FS":
        return Skipped(f"corporate action {kind or '?'} ({description or '?'}): not applied")
    account = required(attrs, "accountId")
    quantity = number(attrs, "quantity")
    traded = contract(attrs)
    when = attrs.get("dateTime", "").strip() or required(attrs, "reportDate")
    at = moment(when, zone, date_only_at=START_OF_DAY)  # a split takes effect at the open
    action = attrs.get("actionID", "").strip() or attrs.get("transactionID", "").strip()
    if not action:
        raise RowError("has neither actionID nor transactionID: add actionID to the query")
    fill = Fill(
        exec_id=f"flex-split:{account}:{action}:{traded.con_id}",
        account=account,
        contract=traded,
        side=Side.BOUGHT if quantity > 0 else Side.SOLD,
        shares=abs(quantity),
        price=ZERO,
        time=at,
        commission=ZERO,
        commission_currency=traded.currency,
    )
    return SplitPart((account, action, traded.con_id), fill)


def net_splits(parts: list[SplitPart]) -> tuple[list[Fill], list[Skipped]]:
    """One fill per forward split (its rows netted); a split that nets to fewer shares is not a
    forward split the ledger can book and is listed instead."""
    grouped: dict[tuple[str, str, int], list[Fill]] = {}
    for part in parts:
        grouped.setdefault(part.key, []).append(part.fill)
    fills: list[Fill] = []
    skipped: list[Skipped] = []
    for (_, action, _), group in sorted(grouped.items()):
        added = sum((f.signed_shares for f in group), ZERO)
        first = group[0]
        if added <= 0:
            skipped.append(
                Skipped(f"split {action} of {first.contract.symbol} nets {added}: not applied")
            )
            continue
        fills.append(replace(first, side=Side.BOUGHT, shares=added))
    return fills, skipped


def transfer(attrs: dict[str, str]) -> Skipped:
    """A Transfers row: never applied (see the module docstring)."""
    direction = attrs.get("direction", "").strip() or "?"
    return Skipped(
        f"transfer {direction} of {attrs.get('quantity', '?')} {attrs.get('symbol', '?')} "
        f"({attrs.get('type', '?')}): not applied"
    )
