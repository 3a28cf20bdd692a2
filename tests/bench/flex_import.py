"""Importing a Flex statement of 50,000 trades over 2,000 contracts, with the re-derivation it
triggers (DESIGN.md "Budgets": ≤ 10 s).

A real SQLite ledger (Alembic migrations) holds what a first sync of the account wrote: 2,000
stock positions reported with no fills (each an opening the ledger had to price from IB's
average). The statement (IB's Activity Flex Query layout, tests.flex.builder) holds every
execution that led there — 25 per contract on average, buys and sells with commissions, some
positions closed and re-opened — all before that sync. Timed, per round on a fresh copy:

- `flex.parse`: the XML bytes → Statement (app.flex.parse);
- `flex.import`: the one import transaction (app.db.statements: fills stored, 2,000 keys folded
  again from their whole history, lifecycles and events rewritten, committed);
- `flex.total`: both.

    python -m tests.bench.flex_import [--trades 50000] [--contracts 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from app.db.migrate import open_database
from app.db.statements import import_statement
from app.domain.values import BrokerPosition, BrokerSnapshot, Contract, Fill, Side
from app.flex.parse import parse_statement
from tests.db.test_repository import commit
from tests.flex.builder import StatementXml, document
from tests.ib_average import ib_average

ACCOUNT = "U7000001"
START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
BUDGET_SECONDS = 10.0


def make_trades(trades: int, contracts: int, seed: int = 17) -> list[Fill]:
    """Random walks per contract: every contract traded, long only, closed now and then."""
    rng = random.Random(seed)
    keys = [
        Contract(100_000 + n, f"S{n:04d}", "STK", "USD", "NYSE", f"S{n:04d}")
        for n in range(contracts)
    ]
    held = dict.fromkeys(range(contracts), 0)
    prices = {n: Decimal(rng.randint(2000, 40000)) / 100 for n in range(contracts)}
    fills: list[Fill] = []
    at = START
    for i in range(trades):
        n = i % contracts if i < contracts else rng.randrange(contracts)
        prices[n] = max(Decimal("1.00"), prices[n] + Decimal(rng.randint(-40, 40)) / 100)
        if held[n] == 0 or rng.random() < 0.55:
            side, shares = Side.BOUGHT, rng.randint(1, 200)
        elif rng.random() < 0.05:
            side, shares = Side.SOLD, held[n]
        else:
            side, shares = Side.SOLD, rng.randint(1, held[n])
        held[n] += shares if side is Side.BOUGHT else -shares
        fee = max(Decimal("1.00"), Decimal(shares) * Decimal("0.005")).quantize(Decimal("0.01"))
        fills.append(
            Fill(f"0000f1e0.{i:08x}.01.01", ACCOUNT, keys[n], side, Decimal(shares),
                 prices[n], at, commission=fee, commission_currency="USD")
        )  # fmt: skip
        at += timedelta(seconds=37)
    return fills


def positions(fills: list[Fill]) -> list[BrokerPosition]:
    """The rows a sync after every fill sees: quantity and IB's average cost."""
    by_contract: dict[int, list[Fill]] = {}
    for f in fills:
        by_contract.setdefault(f.contract.con_id, []).append(f)
    rows = []
    for own in by_contract.values():
        quantity, average = ib_average(own)
        if quantity != 0:
            rows.append(BrokerPosition(ACCOUNT, own[0].contract, quantity, average))
    return rows


def run(trades: int, contracts: int, rounds: int) -> dict[str, list[float]]:
    fills = make_trades(trades, contracts)
    statement = StatementXml(ACCOUNT)
    for f in fills:
        statement.trade(f)
    xml = document(statement).encode()
    samples: dict[str, list[float]] = {"flex.parse": [], "flex.import": [], "flex.total": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.sqlite"
        with open_database(base) as db:
            rows = positions(fills)
            taken = fills[-1].time + timedelta(hours=1)
            snap = BrokerSnapshot(taken, frozenset({ACCOUNT}), tuple(rows))
            commit(db, snap)
        for n in range(rounds):
            copy = Path(tmp) / f"round{n}.sqlite"
            shutil.copyfile(base, copy)
            with open_database(copy) as db:
                started = time.perf_counter()
                parsed = parse_statement(xml, "bench.xml", ZoneInfo("America/New_York"))
                parsed_at = time.perf_counter()
                summary = db.run_sync(import_statement, parsed)
                done = time.perf_counter()
            assert summary.new == trades and len(summary.keys) == contracts, summary
            samples["flex.parse"].append(parsed_at - started)
            samples["flex.import"].append(done - parsed_at)
            samples["flex.total"].append(done - started)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.flex_import", description=__doc__)
    parser.add_argument("--trades", type=int, default=50_000)
    parser.add_argument("--contracts", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    samples = run(args.trades, args.contracts, args.rounds)
    print(
        f"Flex import: {args.trades} trades over {args.contracts} contracts, {args.rounds} rounds"
    )
    for name, values in samples.items():
        print(f"  {name:12} median {statistics.median(values):6.2f} s  max {max(values):6.2f} s")
    total = statistics.median(samples["flex.total"])
    verdict = "met" if total <= BUDGET_SECONDS else "NOT met"
    print(f"  budget {BUDGET_SECONDS:.0f} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
