"""Kill the syncing process while the broker trades (issue 18): the viewer takes over and, after
its next sync, nothing is lost — 20 rounds in a row on one ledger.

Two `position-sync sync --watch` processes on one SQLite file: the one holding the sync lock
syncs (every 0.25 s, and on every fill), the other views. Each round the simulator books fills
while the syncer is killed with SIGKILL at a random moment among them (mid-commit now and then:
a sync of 300 positions commits on nearly every fill); the viewer must take over, and once it
has synced after the last fill, every fill the broker made must be stored and booked exactly
once, every quantity must equal the broker's, and SQLite's integrity check must pass. Then a
fresh viewer starts for the next round, so the ledger carries all twenty take-overs.

CI: ~3-4 s per round (a process start, the take-over poll of ~1 s, two syncs).
"""

from __future__ import annotations

import random
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest

from app.sim import contracts as c
from app.sim.state import SimState
from tests.faults.checks import assert_intact, audit, broker_book
from tests.faults.figures import record
from tests.faults.test_locking import A, B, Watch, book, cli
from tests.waiting import until

D = Decimal
ROUNDS = 20
FILLS_PER_ROUND = 8
KEYS = [(a, contract) for a in (A, B) for contract in (c.AAPL, c.MSFT, c.TSLA, c.ES)]


def trading_book() -> SimState:
    """`book()` plus 300 quiet positions: a commit takes a few ms, so kills land in it too."""
    state = book()
    for n in range(300):
        contract = type(c.AAPL)(60_000_000 + n, f"Q{n}", "STK", "USD", "SMART", "NASDAQ")
        state.set_position(A, contract, D(5), D(30), D(31))
    return state


def integrity_ok(db: Path) -> list[str]:
    """`PRAGMA integrity_check` through a read-only connection (the syncer is writing)."""
    connection = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_kill_the_syncer_while_trading_the_viewer_takes_over_and_nothing_is_lost(
    tmp_path, start_sim
):
    """Guards: a viewer that never takes over; fills lost or booked twice across a take-over;
    a ledger corrupted by a kill mid-commit or by two writers; a viewer that writes."""
    sim_thread = start_sim(None, state=trading_book())
    sim = sim_thread.sim
    db = tmp_path / "ledger.sqlite"
    assert cli("db", "upgrade", "--db", str(db))[0].returncode == 0
    rng = random.Random(18_2026)
    client_ids = iter(range(71, 200))
    started = time.monotonic()
    syncer = Watch(db, sim_thread.port, next(client_ids))
    viewer: Watch | None = None
    processes = [syncer]
    fills = 0
    runs = 0
    try:
        until(lambda: syncer.count("sync ok"), 60, f"a first sync {syncer.err[-5:]}")
        for round_ in range(ROUNDS):
            viewer = Watch(db, sim_thread.port, next(client_ids))
            processes.append(viewer)
            line = until(lambda v=viewer: v.line("viewer:"), 60, f"round {round_}: a viewer")
            who = f"pid {syncer.proc.pid} (position-sync sync --watch)"
            assert who in line, (round_, line)

            kill_at = rng.randrange(FILLS_PER_ROUND)
            for n in range(FILLS_PER_ROUND):
                account, contract = rng.choice(KEYS)
                held = sim.call(lambda s, k=(account, contract.con_id): s.holdings[k].quantity)
                size = D(rng.randint(1, 3)) if contract.sec_type == "FUT" else D(rng.randint(1, 60))
                shares = rng.choice([size, -size, -held, -held - size]) or size
                price = {c.ES.con_id: D(5010)}.get(contract.con_id, D(rng.randint(140, 160)))
                sim.fill(account, contract, shares, price, commission=D("1.10"))
                fills += 1
                if n == kill_at:
                    time.sleep(rng.uniform(0.0, 0.06))  # inside the fill's sync, or around it
                    syncer.proc.kill()
                time.sleep(rng.uniform(0.0, 0.08))
            syncer.proc.wait(10)
            runs += syncer.count("sync ")
            assert not [x for x in viewer.out if x.startswith("sync ")], "a viewer synced"

            took = until(lambda v=viewer: v.line("took over:"), 15, f"round {round_}: take-over")
            assert who in took, (round_, took)
            # Its next sync after the last fill: the second one from now started after it.
            mark = viewer.count("sync ok")
            until(lambda v=viewer, m=mark: v.count("sync ok") >= m + 2, 30, "two syncs")
            holdings, exec_ids = sim.call(broker_book)
            result = audit(db, holdings, exec_ids, read_only=True)
            result.assert_clean()
            assert integrity_ok(db) == ["ok"], round_
            syncer = viewer
        elapsed = time.monotonic() - started
    finally:
        for process in processes:
            if process.proc.poll() is None:
                process.stop()
    runs += syncer.count("sync ")
    assert_intact(db)  # integrity_check and foreign keys, every process gone
    holdings, exec_ids = sim.call(broker_book)
    result = audit(db, holdings, exec_ids)
    record(
        "one syncer per ledger: kill -9 the syncer",
        faults=ROUNDS,
        runs=runs,
        rows_lost=result.rows_lost,
        false_closes=result.false_closes,
        duplicate_fills=result.duplicate_fills,
        note=f"{ROUNDS} take-overs in {elapsed:.0f} s, {fills} fills",
    )
    result.assert_clean()
    assert len(set(exec_ids)) == fills
