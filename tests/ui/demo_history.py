"""Three weeks of made-up trading history for the demo ledger, so the charts have something to
show in the README screenshot: round trips in the demo's accounts and contracts, booked through
the real reconcile + repository as daily syncs, every lifecycle flat by the end (the demo broker
then opens today's positions as new lifecycles)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from app.db.migrate import open_database
from app.domain.values import BrokerPosition, BrokerSnapshot, Contract, Fill, Side
from app.sim import contracts as c
from app.sim.demo import DEMO_ACCOUNTS
from app.sim.model import Contract as SimContract
from tests.db.test_repository import commit

D = Decimal

# (account index, contract, [(trading day, signed quantity), ...]): each nets to zero.
CAMPAIGNS: tuple[tuple[int, SimContract, tuple[tuple[int, str], ...]], ...] = (
    (0, c.NVDA, ((0, "40"), (1, "20"), (3, "-30"), (4, "10"), (6, "-40"))),
    (1, c.MSFT, ((0, "15"), (2, "-5"), (5, "-10"))),
    (0, c.MES, ((1, "-2"), (2, "1"), (4, "1"))),
    (2, c.TSLA, ((2, "30"), (3, "-30"))),
    (0, c.AAPL, ((5, "50"), (7, "-20"), (8, "-30"))),
    (1, c.SAP, ((6, "20"), (9, "-20"))),
    (2, c.AMZN, ((7, "5.5"), (9, "-2.75"), (11, "-2.75"))),
    (0, c.SPY, ((8, "-30"), (10, "30"))),
    (1, c.GOOGL, ((9, "25"), (12, "-25"))),
    (0, c.NVDA, ((10, "30"), (11, "15"), (12, "-20"), (13, "-25"))),
    (2, c.BRK_B, ((11, "4"), (13, "-4"))),
    (0, c.MES, ((12, "1"), (13, "-1"))),
)
START_PRICES = {
    c.NVDA.con_id: D("118.40"),
    c.MSFT.con_id: D("405.10"),
    c.MES.con_id: D("5010.25"),
    c.TSLA.con_id: D("242.00"),
    c.AAPL.con_id: D("181.50"),
    c.SAP.con_id: D("182.00"),
    c.AMZN.con_id: D("176.00"),
    c.SPY.con_id: D("515.20"),
    c.GOOGL.con_id: D("158.30"),
    c.BRK_B.con_id: D("404.00"),
}


def _contract(sim: SimContract) -> Contract:
    return Contract(
        con_id=sim.con_id,
        symbol=sim.symbol,
        sec_type=sim.sec_type,
        currency=sim.currency,
        exchange=sim.primary_exchange or sim.exchange,
        local_symbol=sim.local_symbol,
        multiplier=sim.factor,
        expiry=sim.expiry,
        strike=sim.strike if sim.sec_type == "OPT" else None,
        right=sim.right,
    )


def trading_days(count: int, before: date) -> list[date]:
    """The `count` weekdays before `before`, oldest first."""
    days: list[date] = []
    day = before
    while len(days) < count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days[::-1]


def seed_history(path: Path, *, today: date | None = None, seed: int = 3) -> None:
    """Book the campaigns into the ledger at `path` as one sync after each trading day."""
    rng = random.Random(seed)
    days = trading_days(14, today or datetime.now(UTC).date())
    prices = dict(START_PRICES)
    held: dict[tuple[str, int], tuple[Decimal, Decimal, Contract]] = {}  # qty, average, contract
    serial = 0
    with open_database(path) as db:
        for index, day in enumerate(days):
            for con_id, price in prices.items():  # a day's drift of up to ±1.5 %
                move = D(rng.randint(-150, 150)) / D(10_000)
                prices[con_id] = (price * (1 + move)).quantize(D("0.01"))
            fills: list[Fill] = []
            for number, (account_index, sim, legs) in enumerate(CAMPAIGNS):
                for leg_day, quantity in legs:
                    if leg_day != index:
                        continue
                    contract = _contract(sim)
                    account = DEMO_ACCOUNTS[account_index]
                    serial += 1
                    noise = D(rng.randint(-60, 60)) / D(10_000)
                    price = (prices[sim.con_id] * (1 + noise)).quantize(D("0.01"))
                    if contract.sec_type == "FUT":
                        price = (price * 4).quantize(
                            D(1)
                        ) / 4  # index futures trade in quarter points
                    signed = D(quantity)
                    shares = abs(signed)
                    commission = (D("2.25") * shares) if contract.sec_type == "FUT" else D("1.00")
                    when = datetime.combine(day, time(14, 35), UTC) + timedelta(
                        minutes=20 * number + rng.randint(0, 15)
                    )
                    fills.append(
                        Fill(
                            exec_id=f"0000d3m0.{serial:08x}.01.01",
                            account=account,
                            contract=contract,
                            side=Side.BOUGHT if signed > 0 else Side.SOLD,
                            shares=shares,
                            price=price,
                            time=when,
                            perm_id=10_000 + serial,
                            commission=commission,
                            commission_currency=contract.currency,
                        )
                    )
                    key = (account, contract.con_id)
                    quantity_before, average, _ = held.get(key, (D(0), D(0), contract))
                    after = quantity_before + signed
                    if after == 0:
                        held.pop(key, None)
                        continue
                    if quantity_before == 0 or (quantity_before > 0) == (signed > 0):
                        # An add on the same side moves IB's average (commission included).
                        fee = commission / contract.multiplier * (1 if signed > 0 else -1)
                        cost = abs(quantity_before) * average + shares * price + fee
                        # IB's avgCost carries a few decimals, not 28 digits of a division.
                        average = (cost / abs(after)).quantize(D("0.000001"))
                    held[key] = (after, average, contract)
            positions = tuple(
                BrokerPosition(
                    account,
                    contract,
                    quantity,
                    average * contract.multiplier,
                    prices[contract.con_id],
                    prices[contract.con_id] * quantity * contract.multiplier,
                    (prices[contract.con_id] - average) * quantity * contract.multiplier,
                )
                for (account, _), (quantity, average, contract) in sorted(held.items())
            )
            taken = datetime.combine(day, time(21, 0), UTC)
            snap = BrokerSnapshot(
                taken_at=taken,
                accounts=frozenset(DEMO_ACCOUNTS),
                positions=positions,
                fills=tuple(sorted(fills, key=lambda f: f.time)),
            )
            commit(db, snap)
    assert not held, f"campaigns must end flat: {held}"
