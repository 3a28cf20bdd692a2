"""Price units of magnified contracts (app.broker.contract_details), without a network.

The request is a stand-in coroutine here: what is under test is which contracts are asked
about, how an answer is read and how a snapshot's prices are converted. The same paths run
against the simulator through ib_insync in tests/sync/test_prices.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.broker.contract_details import PriceUnits, magnifier_of
from app.domain.values import BrokerPosition, BrokerSnapshot, Contract, Fill, Side

D = Decimal
T = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
ZC = Contract(532513362, "ZC", "FUT", local_symbol="ZCZ7", multiplier=D(5000))
ES = Contract(495512563, "ES", "FUT", local_symbol="ESZ7", multiplier=D(50))
AAPL = Contract(265598, "AAPL")


@dataclass
class Answer:
    """What ib_insync's ContractDetails carries that we read."""

    contract: Any
    priceMagnifier: int = 1


@dataclass
class Ib:
    """A stand-in for ib_insync's reqContractDetailsAsync: conId → priceMagnifier."""

    magnifiers: dict[int, int]
    asked: list[int] = field(default_factory=list)

    async def __call__(self, query: Any) -> list[Answer]:
        self.asked.append(query.conId)
        if query.conId not in self.magnifiers:
            raise ConnectionError("Error 200, No security definition has been found")
        return [Answer(query, self.magnifiers[query.conId])]


def row(contract: Contract, qty: str, avg_cost: str, price: str | None, value: str | None):
    return BrokerPosition(
        "DU1",
        contract,
        D(qty),
        D(avg_cost),
        D(price) if price else None,
        D(value) if value else None,
    )


def fill(contract: Contract, price: str) -> Fill:
    return Fill("e1.01", "DU1", contract, Side.SOLD, D(1), D(price), T, commission=D("2.25"))


def snap(*positions: BrokerPosition, fills: tuple[Fill, ...] = ()) -> BrokerSnapshot:
    return BrokerSnapshot(T, frozenset({"DU1"}), positions=positions, fills=fills)


def settle(
    loop: asyncio.AbstractEventLoop, units: PriceUnits, snapshot: BrokerSnapshot, ib: Ib
) -> BrokerSnapshot:
    return loop.run_until_complete(units.settle(snapshot, ib, 1.0))


def test_cents_fill_and_mark_are_divided_by_the_magnifier(loop: asyncio.AbstractEventLoop) -> None:
    """ZC: fill 455.75 ¢ → 4.5575 $; mark 452 ¢ with value 45,200 $ for 2 × 5,000 → 4.52 $."""
    units, ib = PriceUnits(), Ib({ZC.con_id: 100})
    out = settle(
        loop,
        units,
        snap(row(ZC, "2", "22512.5", "452", "45200"), fills=(fill(ZC, "455.75"),)),
        ib,
    )
    assert out.fills[0].price == D("4.5575") and out.positions[0].market_price == D("4.52")
    assert out.positions[0].market_value == D(45200)
    assert ib.asked == [ZC.con_id]
    settle(loop, units, snap(fills=(fill(ZC, "449.5"),)), ib)
    assert ib.asked == [ZC.con_id]  # known: never asked again


def test_dollar_quoted_rows_and_stocks_are_not_asked_about(loop: asyncio.AbstractEventLoop) -> None:
    """ES's price agrees with its value; stocks are never magnified: nothing to ask."""
    units, ib = PriceUnits(), Ib({})
    es = row(ES, "1", "250012.5", "5050.25", "252512.5")
    aapl = row(AAPL, "10", "1500", "190.5", "1905")
    snapshot = snap(es, aapl, fills=(fill(AAPL, "190"),))
    assert settle(loop, units, snapshot, ib) is snapshot and ib.asked == []


def test_unknown_unit_skips_the_fill_and_drops_the_mark(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """No answer: the ZC fill is skipped (its key then waits) and its cents mark is no price."""
    units, ib = PriceUnits(), Ib({})
    out = settle(
        loop, units, snap(row(ZC, "2", "22512.5", "452", "45200"), fills=(fill(ZC, "455.75"),)), ib
    )
    assert out.fills == () and out.positions[0].market_price is None
    (skipped,) = out.skipped
    assert skipped.key == ("DU1", ZC.con_id) and "price unit unknown" in skipped.reason
    assert "No security definition" in skipped.reason


def test_a_mark_already_in_dollars_is_kept(loop: asyncio.AbstractEventLoop) -> None:
    """Should TWS send a magnified contract's portfolio price in dollars, it agrees with the
    value and is kept: never divided twice."""
    units, ib = PriceUnits(), Ib({ZC.con_id: 100})
    out = settle(loop, units, snap(row(ZC, "2", "22512.5", "4.52", "45200")), ib)
    assert out.positions[0].market_price == D("4.52") and ib.asked == []


def test_magnifier_of_reads_zero_or_missing_as_one() -> None:
    """ib_insync's default priceMagnifier is 0 when TWS leaves it empty (NautilusTrader PR
    #3885 reads a missing one as 1 too); an empty answer is no answer."""

    @dataclass
    class C:
        conId: int

    assert magnifier_of([Answer(C(1), 0)], 1) == 1
    assert magnifier_of([Answer(C(2), 100), Answer(C(1), 10)], 1) == 10
    assert magnifier_of([], 1) is None
