"""Rows of the OptionEAE, CorporateActions and Transfers sections → fills the fold books, a
conversion a statement states, or a note that the row is not applied.

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
- CorporateActions, type `RS` (reverse split), `IC` (issue change: a new CUSIP / ISIN), `FI`
  (forward split issue: a forward split to a new conId) — or `FS` whose action's rows are on
  two conIds — whose rows of one action (same `accountId`, same `actionID`) net to one conId
  removed (quantity < 0 for a long) and one conId added (quantity of the other sign): IB's
  layout of a conversion to a new conId (app.domain.conversions). Not fills — booked at price
  0 they would realize a loss that never happened — but a `StatedConversion`: the import
  (app.db.statements) stores it as a `confirmed` observation on both keys when the syncs
  derived that very conversion, which makes the conversion and what the new lifecycle realizes
  exact; otherwise it is listed as not applied (a statement's pair is never booked as a
  conversion the ledger did not derive). Such an action whose rows are on one conId only (IB
  keeps the conId for some reverse splits), or on more than two, is listed as not applied.
- Everything else — other conId or symbol changes, mergers, spin-offs, and every Transfer —
  cannot be stated as fills without realizing P&L that was never realized (a transfer out at
  price 0 would book a loss). They are listed as not applied; the ledger keeps what the syncs
  derived for them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from app.domain.statements import StatedConversion
from app.domain.values import ZERO, Fill, Side
from app.flex.rows import RowError, contract, moment, number, required
from app.flex.trades import book_trade_id

AFTER_THE_CLOSE = time(23, 59, 59)
START_OF_DAY = time(0, 0, 0)

OPTION_CLOSES = frozenset({"Expiration", "Assignment", "Exercise"})
DELIVERIES = frozenset({"Buy", "Sell"})

CONVERSIONS = frozenset({"RS", "IC", "FI"})
"""CorporateAction types that move a holding to a new conId (csingley/ibflex, ibflex/enums.py
`Reorg`: REVERSESPLIT = "RS", ISSUECHANGE = "IC", FORWARDSPLITISSUE = "FI"; its FORWARDSPLIT
"FS" is a split on the same conId, or a conversion when the action's rows are on two conIds —
"CorporateAction pairs have types IC, FS, RS, TC, SR", ib-edavki issue 181). IB's rows, as
quoted in
github.com/ib-edavki/ib-edavki/issues/106 (AMTD, November 2023): one row per conId of the same
action, each with `accountId`, `symbol` ("AMTD" on the new conId, "AMTD.OLD" on the old),
`conid`, `description` / `actionDescription` ("AMTD(US00180G2057) SPLIT 1 FOR 3 (…)"),
`reportDate="20231117"`, `dateTime="20231116;202500"`, `quantity="333.3333"` on the new conId,
`type="RS"`, `transactionID` (one per row) and `actionID="129946303"` (the action's); the same
two-row shape for UAN "SPLIT 1 FOR 10" (UAN / UAN.OLD, ib-edavki pull/16 and pull/69) and ML's
forward split on a new conId: "ML(FR0000121261) SPLIT 4 FOR 1" with quantity="12" on the new
conId 562418770 (symbol ML, type="FI", actionID="108230866") and a row for the old conId
29612156 renamed ML.OLD (ib-edavki issue 71). The old row's negative quantity and its actionID
being the new row's are what the issues report of IB's layout (signs flip for a short: issue
181); the excerpts at hand show the new row's attributes in full only."""

FAMILIES = (frozenset({"RS"}), frozenset({"IC"}), frozenset({"FS", "FI"}))
"""Types the rows of one conversion may carry together (a forward split's old row may be typed
FS or FI beside the new row's FI: the excerpts do not show the old row's type)."""


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
class ConversionPart:
    """One CorporateActions row of an `RS` / `IC` action (paired per action: pair_conversions)."""

    account: str
    action: str
    kind: str
    con_id: int
    quantity: Decimal
    at: datetime
    description: str
    where: str = ""
    """"file: line N" (the document reader sets it)."""


@dataclass(frozen=True, slots=True)
class SplitPart:
    """One CorporateActions row of a forward split (netted per action and conId) — or, when
    its action's rows are on two conIds, one side of a conversion (`side`)."""

    key: tuple[str, str, int]
    """(account, action id, conId)."""
    fill: Fill
    side: ConversionPart


def corporate_action(attrs: dict[str, str], zone: ZoneInfo) -> SplitPart | ConversionPart | Skipped:
    """A CorporateActions row: a forward split's shares, one side of a conversion to a new
    conId, or why it is not applied."""
    kind = attrs.get("type", "").strip()
    description = attrs.get("description", "").strip() or attrs.get("actionDescription", "")
    if kind != "FS" and kind not in CONVERSIONS:
        return Skipped(f"corporate action {kind or '?'} ({description or '?'}): not applied")
    account = required(attrs, "accountId")
    quantity = number(attrs, "quantity")
    traded = contract(attrs)
    when = attrs.get("dateTime", "").strip() or required(attrs, "reportDate")
    at = moment(when, zone, date_only_at=START_OF_DAY)  # a split takes effect at the open
    action = attrs.get("actionID", "").strip() or attrs.get("transactionID", "").strip()
    if not action:
        raise RowError("has neither actionID nor transactionID: add actionID to the query")
    if quantity == 0 and kind in CONVERSIONS:
        raise RowError("quantity is 0")
    side = ConversionPart(account, action, kind, traded.con_id, quantity, at, description)
    if kind in CONVERSIONS:
        return side
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
    return SplitPart((account, action, traded.con_id), fill, side)


def net_splits(
    parts: list[SplitPart],
) -> tuple[list[Fill], list[Skipped], list[ConversionPart]]:
    """One fill per forward split (its rows netted); a split that nets to fewer shares is not a
    forward split the ledger can book and is listed instead. An `FS` action whose rows are on
    more than one conId is no split on one conId: its rows are returned as conversion sides
    (pair_conversions) — booked as shares added at 0 they would open the new conId anew."""
    con_ids: dict[tuple[str, str], set[int]] = {}
    for part in parts:
        con_ids.setdefault(part.key[:2], set()).add(part.key[2])
    sides = [part.side for part in parts if len(con_ids[part.key[:2]]) > 1]
    grouped: dict[tuple[str, str, int], list[Fill]] = {}
    for part in parts:
        if len(con_ids[part.key[:2]]) == 1:
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
    return fills, skipped, sides


def pair_conversions(
    parts: list[ConversionPart],
) -> tuple[list[StatedConversion], list[Skipped]]:
    """One StatedConversion per `RS` / `IC` / `FI` (or two-conId `FS`) action whose rows
    (netted per conId) are one conId removed and one added; any other shape is listed as not
    applied (never guessed at)."""
    grouped: dict[tuple[str, str], list[ConversionPart]] = {}
    for part in parts:
        grouped.setdefault((part.account, part.action), []).append(part)
    stated: list[StatedConversion] = []
    skipped: list[Skipped] = []
    for (account, action), group in sorted(grouped.items()):
        first = group[0]
        netted: dict[int, Decimal] = {}
        for part in group:
            netted[part.con_id] = netted.get(part.con_id, ZERO) + part.quantity
        removed = [(c, q) for c, q in netted.items() if q < 0]
        added = [(c, q) for c, q in netted.items() if q > 0]
        kinds = {part.kind for part in group}
        one_kind = any(kinds <= family for family in FAMILIES)
        if not one_kind or len(removed) != 1 or len(added) != 1 or len(netted) != 2:
            shape = ", ".join(f"conId {c}: {q}" for c, q in sorted(netted.items()))
            skipped.append(
                Skipped(
                    f"{first.where}: corporate action {'/'.join(sorted(kinds))} {action} "
                    f"({first.description or '?'}): rows net to {shape}, not one conId "
                    "removed and one added: not applied"
                )
            )
            continue
        stated.append(
            StatedConversion(
                account=account,
                action=action,
                kind="/".join(sorted(kinds)),
                at=min(part.at for part in group),
                removed=removed[0],
                added=added[0],
                description=first.description,
                where=first.where,
            )
        )
    return stated, skipped


def transfer(attrs: dict[str, str]) -> Skipped:
    """A Transfers row: never applied (see the module docstring)."""
    direction = attrs.get("direction", "").strip() or "?"
    return Skipped(
        f"transfer {direction} of {attrs.get('quantity', '?')} {attrs.get('symbol', '?')} "
        f"({attrs.get('type', '?')}): not applied"
    )
