"""Conversions: a key that vanishes while a new key of the same stock appears, read as one event.

IB carries out many reverse splits — and CUSIP/ISIN changes, some symbol changes — by giving the
stock a *new* conId: the old contract's position is removed and the new one's booked, with no
trade. Flex statements show it as two CorporateAction rows of one action, type `RS` (reverse
split) or `IC` (issue change), one per conId: e.g. "AMTD(US00180G2057) SPLIT 1 FOR 3" with
quantity +333.3333 on the new conId 665145378 (symbol AMTD) and the old position removed on
conId 597279242 (renamed AMTD.OLD) — github.com/ib-edavki/ib-edavki/issues/106; the same for
PRSO "SPLIT 1 FOR 40" (issues/181) and UAN "SPLIT 1 FOR 10" (ib-edavki pull/69); "after every
split they change conid as well as isin" (ib-edavki pull/75). The type codes are csingley/ibflex
`enums.Reorg` (RS reverse split, IC issue change, FI forward split issue — ML's "SPLIT 4 FOR
1" to a new conId, ib-edavki issue 71 — TC merger, TO tender, FS forward split). A fractional
share a mandatory action leaves is "liquidated for cash by IB ... typically within one day"
(ibkb.interactivebrokers.com/article/2121), so the new quantity may be the whole part. The
statement books that sale as a Trade of transactionType `FracShare` (ibflex `TradeType`), on the
old conId before the action (ib-edavki issue 121) or on the new one after it (issue 181: PRSO
350 → 8.75, then 0.75 sold at 9.60 the same day); the fold (app.domain.fold) books it as a sale
around the conversion, so the numbers must agree with the ratio net of it (`delivered_agrees`).

What the API shows at the sync that sees it is not documented by IB: the old conId is no longer
reported (or reported 0) and the new one is, with IB's avgCost multiplied by the ratio (qty ×
average about unchanged). That is what this module recognises — never a guess: the two keys
must be the only candidates of their symbol in the account at that sync, neither may have fills
since the last sync, and the numbers must agree with one plausible ratio. Anything less stays
what it was before (a MISSING old key and a new opening), for the user to judge.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction

from app.domain.values import Contract, PositionKey

MAX_TERM = 100
"""Largest numerator / denominator of a plausible ratio (as a split: app.domain.fold)."""

AVERAGE_TOLERANCE = Decimal("0.005")
"""IB's new average must be the old one divided by the ratio within 0.5 % (IB sends doubles, and
it may spread the cost of a fraction paid in cash over the whole shares left)."""

CONVERTIBLE = frozenset({"STK"})
"""Contract kinds a conversion is recognised for. Stocks (ETFs are STK at IB) only: an option's
or a future's adjustment changes its deliverable or multiplier, and many contracts of one
underlying vanish and appear together, so a pairing by symbol would be a guess."""

QUANTITY_STEP = Decimal("0.0001")
"""IB's fractional-share step: a new quantity may be the exact one cut to it (333.3333)."""


@dataclass(frozen=True, slots=True)
class Holding:
    """One side of a candidate pair: a key, its contract, quantity and IB's average per unit."""

    key: PositionKey
    contract: Contract
    quantity: Decimal
    average: Decimal
    """IB's average price per unit (avgCost / multiplier)."""


@dataclass(frozen=True, slots=True)
class Pair:
    """A vanished key and the key that replaced it, with the ratio (new units per old one)."""

    old: Holding
    new: Holding
    ratio: Fraction


def conversion_ratio(
    old_quantity: Decimal, old_average: Decimal, new_quantity: Decimal, new_average: Decimal
) -> Fraction | None:
    """new units per old unit when the two positions are one holding converted; else None.

    The averages give the ratio (IB multiplies its average by the old/new factor); the quantity
    must then be the old one times it — exactly, or (a reverse split) cut to IB's 0.0001 step
    or to its whole part, the fraction paid in cash — and the cost (quantity × average) the same
    within the tolerance plus at most one new unit's worth (the fraction paid in cash)."""
    if old_quantity == 0 or new_quantity == 0 or (old_quantity > 0) != (new_quantity > 0):
        return None
    if old_average <= 0 or new_average <= 0:
        return None
    moved = Fraction(old_average) / Fraction(new_average)
    ratio = moved.limit_denominator(MAX_TERM)
    if ratio <= 0 or ratio.numerator > MAX_TERM:
        return None
    if abs(ratio - moved) > ratio * Fraction(AVERAGE_TOLERANCE):
        return None
    exact = Fraction(old_quantity) * ratio
    if not _quantity_agrees(exact, Fraction(new_quantity), reverse=ratio < 1):
        return None
    old_cost = abs(old_quantity) * old_average
    new_cost = abs(new_quantity) * new_average
    slack = old_cost * AVERAGE_TOLERANCE + new_average
    return ratio if abs(old_cost - new_cost) <= slack else None


def delivered_agrees(old_quantity: Decimal, ratio: Fraction, new_quantity: Decimal) -> bool:
    """Whether a conversion at `ratio` of `old_quantity` delivers `new_quantity`: exactly, or
    (a reverse split) cut to IB's 0.0001 step or to the whole part."""
    if old_quantity == 0 or (old_quantity > 0) != (new_quantity > 0):
        return False
    exact = Fraction(old_quantity) * ratio
    return _quantity_agrees(exact, Fraction(new_quantity), reverse=ratio < 1)


def _quantity_agrees(exact: Fraction, reported: Fraction, *, reverse: bool) -> bool:
    if exact == reported:
        return True
    if exact.denominator == 1 or not reverse:
        # A whole result has nothing to pay in cash; and only a reverse split is read with a
        # fraction lost (as app.domain.fold's split rule): otherwise a ratio such as 50:49
        # would "explain" a small holding whose average moved 2 %.
        return False
    whole = Fraction(int(exact))  # toward zero, as a short's fraction is bought in
    if reported == whole and whole != 0:
        return True
    sign = 1 if exact > 0 else -1
    stepped = Decimal(abs(exact.numerator)) / Decimal(exact.denominator)
    stepped = stepped.quantize(QUANTITY_STEP, rounding=ROUND_DOWN)
    return reported == Fraction(stepped) * sign


def same_holding(old: Contract, new: Contract) -> bool:
    """Whether `new` can be `old` under a new conId: a stock of the same symbol, currency and
    multiplier. A symbol change is not recognised — nothing in the API rows links the two
    (IB's statement does, by the action's description and ISINs)."""
    return (
        old.sec_type in CONVERTIBLE
        and new.sec_type == old.sec_type
        and old.con_id != new.con_id
        and old.symbol == new.symbol
        and old.currency == new.currency
        and old.multiplier == new.multiplier
    )


def find_pairs(vanished: Iterable[Holding], appeared: Iterable[Holding]) -> list[Pair]:
    """The conversions among keys that vanished and keys that first appeared at one sync (each
    without fills since the last sync): per (account, symbol), exactly one of each, and numbers
    that agree (conversion_ratio). Two candidates on either side: none — never a guess."""
    gone: dict[tuple[str, str], list[Holding]] = defaultdict(list)
    new: dict[tuple[str, str], list[Holding]] = defaultdict(list)
    for side in vanished:
        if side.contract.sec_type in CONVERTIBLE:
            gone[(side.key[0], side.contract.symbol)].append(side)
    for side in appeared:
        if side.contract.sec_type in CONVERTIBLE:
            new[(side.key[0], side.contract.symbol)].append(side)
    pairs = []
    for group, olds in sorted(gone.items()):
        news = new.get(group, [])
        if len(olds) != 1 or len(news) != 1:
            continue
        old, candidate = olds[0], news[0]
        if not same_holding(old.contract, candidate.contract):
            continue
        ratio = conversion_ratio(old.quantity, old.average, candidate.quantity, candidate.average)
        if ratio is not None:
            pairs.append(Pair(old, candidate, ratio))
    return pairs


def ratio_text(ratio: Fraction) -> str:
    """'1 for 3' (a reverse split: 3 old units became 1), '2 for 1', or 'one for one'."""
    if ratio == 1:
        return "one for one"
    return f"{ratio.numerator} for {ratio.denominator}"
