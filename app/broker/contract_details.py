"""Price units: IB's priceMagnifier per contract, read once with reqContractDetails.

Cents-quoted futures (grains, livestock, cotton: ZC, ZW, LE, GF, CT …) report execution prices in
cents while avgCost / multiplier is in dollars, so fills and averages would mix two units and a
realized P&L come out 100× off (issue 16, item 3). Reported against NautilusTrader's IB adapter,
https://github.com/nautechsystems/nautilus_trader/issues/2531 (feeder cattle, GF: the position's
average in dollars, the fills in cents); its fix divides every price IB sends by the magnifier
(PR #2629; PR #3885 reads a missing magnifier as 1), as QuantConnect's IB brokerage did before it
(https://github.com/QuantConnect/Lean/pull/5930, "futures contracts priced in cents", ZC/ZS/KE).
IB documents the field as ContractDetails.priceMagnifier: "Allows execution and strike prices to
be reported consistently with market data, historical data and the order price, i.e. Z on LIFFE
is reported in Index points and not GBP"
(http://interactivebrokers.github.io/tws-api/classIBApi_1_1ContractDetails.html).

The unit the ledger stores (app.domain.prices): per unit of the contract in its currency's main
unit, the unit of IB's avgCost / multiplier. So a fill's price is IB's ÷ priceMagnifier. The
portfolio row's market price is checked against the row's own marketValue (money, in dollars):
it is kept when price × quantity × multiplier agrees with the value, divided by the magnifier
when that agrees, and else is no price — whichever unit TWS sends it in, the ledger never takes
a cents price for dollars. Strikes stay as IB sends them: they identify a contract, they price
nothing.

Only futures and futures options are asked about (FUT, FOP: the magnified contracts in every
report above); a contract's details never change, so each is asked once per app run (IbBroker
keeps one PriceUnits across reconnects) and only when needed: for fills, and for portfolio rows
whose price disagrees with their value. reqContractDetails is a read-only request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from ib_insync import Contract as IbContract

from app.domain.values import ONE, BrokerPosition, BrokerSnapshot, Contract, Fill, SkippedRow

logger = logging.getLogger(__name__)

MAGNIFIED_TYPES = frozenset({"FUT", "FOP"})
"""Security types whose prices IB may quote magnified (cents, index points)."""

AGREEMENT = Decimal("0.005")
"""Relative difference within which a market price and the row's value per unit agree (the
value is a rounded double; a magnified price is off by a factor of 10 or more)."""

Request = Callable[[Any], Awaitable[list[Any]]]
"""ib_insync's `IB.reqContractDetailsAsync`."""


class PriceUnits:
    """IB's priceMagnifier per conId, learnt once; converts a snapshot's prices to ledger units."""

    def __init__(self) -> None:
        self._magnifiers: dict[int, Decimal] = {}
        self.failures: dict[int, str] = {}
        """Why the last request for a conId failed (asked again at the next snapshot)."""
        # (account, conId) → (row as reported, magnifier then, row in ledger units). The book hands
        # out the very same row object while a row's text is unchanged, so a resync of 20,000
        # positions converts nothing again: one dict lookup per futures row.
        self._converted: dict[
            tuple[str, int], tuple[BrokerPosition, Decimal | None, BrokerPosition]
        ] = {}

    def magnifier(self, con_id: int) -> Decimal | None:
        """The contract's priceMagnifier, if known."""
        return self._magnifiers.get(con_id)

    async def settle(
        self, snapshot: BrokerSnapshot, request: Request, seconds: float
    ) -> BrokerSnapshot:
        """`snapshot` with every price in ledger units, asking IB for what is not known yet.

        One pass over the rows when every unit needed is known (every resync after the first);
        a second only after new units were learnt."""
        wanted: dict[int, Contract] = {}
        positions = self.rows(snapshot.positions, wanted)
        for fill in snapshot.fills:
            contract = fill.contract
            if contract.sec_type in MAGNIFIED_TYPES and contract.con_id not in self._magnifiers:
                wanted[contract.con_id] = contract
        if wanted:
            await self.learn(wanted, request, seconds)
            positions = self.rows(snapshot.positions)
        return self.apply(snapshot, positions)

    async def learn(self, contracts: dict[int, Contract], request: Request, seconds: float) -> None:
        """Ask IB for each contract's details at once, each answer bounded by `seconds`."""
        if contracts:
            await asyncio.gather(*(self._ask(c, request, seconds) for c in contracts.values()))

    async def _ask(self, contract: Contract, request: Request, seconds: float) -> None:
        # includeExpired: a fill of a future that expired since still needs its unit.
        query = IbContract(conId=contract.con_id, includeExpired=True)
        try:
            details = await asyncio.wait_for(request(query), seconds)
        except Exception as exc:  # a timeout, error 200, a dropped connection: unit unknown
            reason = str(exc) or type(exc).__name__
            self.failures[contract.con_id] = reason
            logger.warning(
                "no contract details for %s (conId %s): %s; its prices wait",
                contract.local_symbol or contract.symbol,
                contract.con_id,
                reason,
            )
            return
        magnifier = magnifier_of(details, contract.con_id)
        if magnifier is None:
            self.failures[contract.con_id] = "TWS answered without contract details"
            return
        self.failures.pop(contract.con_id, None)
        self._magnifiers[contract.con_id] = magnifier
        if magnifier != ONE:
            logger.info(
                "%s (conId %s) is quoted with priceMagnifier %s: its prices are divided by it",
                contract.local_symbol or contract.symbol,
                contract.con_id,
                magnifier,
            )

    def apply(
        self, snapshot: BrokerSnapshot, positions: Sequence[BrokerPosition] | None = None
    ) -> BrokerSnapshot:
        """Prices of magnified contracts divided by their magnifier; fills whose unit is not
        known are skipped (their key then waits, DESIGN rule 10), rows lose only the price.
        `positions`: the snapshot's rows already converted (`rows`)."""
        fills: list[Fill] = []
        skipped = list(snapshot.skipped)
        changed = False
        for fill in snapshot.fills:
            contract = fill.contract
            if contract.sec_type not in MAGNIFIED_TYPES:
                fills.append(fill)
                continue
            magnifier = self._magnifiers.get(contract.con_id)
            if magnifier is None:
                why = self.failures.get(contract.con_id, "not asked")
                reason = (
                    f"execution {fill.exec_id}: price unit unknown (no contract details: {why})"
                )
                skipped.append(SkippedRow(fill.key, reason))
                changed = True
            elif magnifier != ONE:
                fills.append(replace(fill, price=fill.price / magnifier, price_magnifier=magnifier))
                changed = True
            else:
                fills.append(fill)
        if positions is None:
            positions = self.rows(snapshot.positions)
        if not changed and positions is snapshot.positions:
            return snapshot
        return replace(
            snapshot, fills=tuple(fills), positions=tuple(positions), skipped=tuple(skipped)
        )

    def rows(
        self, rows: Sequence[BrokerPosition], wanted: dict[int, Contract] | None = None
    ) -> Sequence[BrokerPosition]:
        """Rows in ledger units with what is known now (no request is made): a futures price
        that cannot be told is no price. `rows` itself when nothing changes. Contracts whose
        unit would tell a row's price are added to `wanted`."""
        out: list[BrokerPosition] | None = None
        for index, row in enumerate(rows):
            if row.contract.sec_type not in MAGNIFIED_TYPES or row.market_price is None:
                continue
            priced = self._row(row)
            if priced is not row:
                con_id = row.contract.con_id
                if wanted is not None and con_id not in self._magnifiers:
                    wanted[con_id] = row.contract
                if out is None:
                    out = list(rows)
                out[index] = priced
        return rows if out is None else out

    def _row(self, row: BrokerPosition) -> BrokerPosition:
        """A futures row in ledger units (`_priced`), remembered while the row is the same."""
        con_id = row.contract.con_id
        magnifier = self._magnifiers.get(con_id)
        key = (row.account, con_id)
        last = self._converted.get(key)
        if last is not None and last[0] is row and last[1] == magnifier:
            return last[2]
        priced = _priced(row, magnifier)
        self._converted[key] = (row, magnifier, priced)
        return priced


def magnifier_of(details: Iterable[Any], con_id: int) -> Decimal | None:
    """The priceMagnifier of `con_id` in a contract details answer; None when it has none.

    0 or a missing value means 1 (ib_insync's default is 0 when TWS leaves the field empty;
    NautilusTrader PR #3885 reads a missing one as 1 likewise)."""
    answers = list(details)
    match = [d for d in answers if d.contract is not None and d.contract.conId == con_id]
    chosen = (match or answers)[:1]
    if not chosen:
        return None
    value = chosen[0].priceMagnifier
    try:
        magnifier = Decimal(int(value or 0))
    except (TypeError, ValueError):
        return ONE
    return magnifier if magnifier > 0 else ONE


def _priced(row: BrokerPosition, magnifier: Decimal | None) -> BrokerPosition:
    """A futures row's market price in ledger units, or no price when that cannot be told."""
    price = row.market_price
    assert price is not None
    per_unit = _value_per_unit(row)
    if _agrees(price, per_unit):
        return row  # TWS sent it per unit in dollars already
    if magnifier is not None and magnifier != ONE:
        converted = price / magnifier
        if per_unit is None or _agrees(converted, per_unit):
            return replace(row, market_price=converted)
    if magnifier == ONE and per_unit is None:
        return row  # nothing to check against, and IB quotes it unmagnified
    logger.warning(
        "market price %s of %s (conId %s) disagrees with its market value %s; not used",
        price,
        row.contract.local_symbol or row.contract.symbol,
        row.contract.con_id,
        row.market_value,
    )
    return replace(row, market_price=None)


def _value_per_unit(row: BrokerPosition) -> Decimal | None:
    """The row's marketValue per unit of quantity × multiplier (money, so in dollars)."""
    value = row.market_value
    if value is None or not value.is_finite() or value == 0 or row.quantity == 0:
        return None
    return value / (row.quantity * row.contract.multiplier)


def _agrees(price: Decimal, per_unit: Decimal | None) -> bool:
    return per_unit is not None and abs(price - per_unit) <= abs(per_unit) * AGREEMENT
