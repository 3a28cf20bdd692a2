"""Crash (issue 7, item 1): SIGKILL the sync process at random instants of 20,000-position syncs.

The process is the real command line, `python -m app sync`, against a simulator in this process
(scale-20000: 50 accounts). Between kills the broker moves: every price, some quantities by fills
(adds, reductions, closes), some quantities without fills, positions vanishing silently and new
ones appearing, so "before" and "after" differ in every table. After each kill the file is
opened with plain sqlite3: `integrity_check` ok, `foreign_key_check` empty, and the ledger equals
exactly its state before the run or — when the kill came after the commit — the state a complete
run of the same sync produces from the same starting file (run on a copy made beforehand).

The same for `db upgrade` of an old (0001) database: killed at random instants, it is left at
0001 with every row as it was, or at head with every row migrated, and any backup beside it is
a complete copy.

CI: 25 kills of the sync and 8 of the migration; `POSITION_SYNC_FAULTS_FULL=1`: 100 and 40.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from app.sim.runner import SimulatorThread
from app.sim.scenarios import build_scale
from app.sim.state import SimState
from tests.faults.checks import (
    Projection,
    assert_intact,
    audit,
    broker_book,
    connect,
    describe_difference,
    projection,
)
from tests.faults.figures import record, sized

REPO = Path(__file__).resolve().parents[2]
D = Decimal
SEED = 7_2026
CONNECTED = "broker connected:"
COMMITTED = "sync ok ("  # the service logs it right after the commit


@dataclass
class Worker:
    """One `position-sync sync` process; its stderr is read on a thread (never blocks it)."""

    proc: subprocess.Popen[str]
    connected: threading.Event = field(default_factory=threading.Event)
    lines: list[str] = field(default_factory=list)
    committed_at: float | None = None

    @classmethod
    def start(cls, db: Path, port: int, client_id: int) -> Worker:
        argv = ["sync", "--db", str(db), "--port", str(port), "--client-id", str(client_id)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", *argv, "-v"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "POSITION_SYNC_IB_TIMEOUT": "60"},
        )
        worker = cls(proc)
        threading.Thread(target=worker._read, daemon=True).start()
        return worker

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for line in self.proc.stderr:
                self.lines.append(line)
                if CONNECTED in line:
                    self.connected.set()
                elif COMMITTED in line and self.committed_at is None:
                    self.committed_at = time.monotonic()
        self.connected.set()  # ended before connecting: stop waiting

    def wait_connected(self, within: float = 60.0) -> float:
        assert self.connected.wait(within), "the sync process never connected"
        return time.monotonic()

    def finish(self, within: float = 120.0) -> int:
        code = self.proc.wait(within)
        assert code == 0, "".join(self.lines[-20:])
        return code


def complete_sync(db: Path, port: int, client_id: int) -> float:
    """Run one sync to the end; returns the seconds from connecting to its commit."""
    worker = Worker.start(db, port, client_id)
    connected = worker.wait_connected()
    worker.finish()
    for _ in range(100):  # the reader thread may still be on the last lines
        if worker.committed_at is not None:
            break
        time.sleep(0.01)
    assert worker.committed_at is not None, "".join(worker.lines[-20:])
    return worker.committed_at - connected


def sigkill_after(db: Path, port: int, delay: float) -> None:
    """Start `position-sync sync` on `db` and SIGKILL it `delay` s after it connected."""
    worker = Worker.start(db, port, client_id=11)
    connected = worker.wait_connected()
    time.sleep(max(0.0, connected + delay - time.monotonic()))
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(30)


def judge_kill(db: Path, before: Projection, after: Callable[[], Projection], label: str) -> str:
    """ "before" or "after": the state a kill left must be exactly one of them (`after` is
    computed only when needed)."""
    assert_intact(db)
    state = projection(db)
    if state == before:
        return "before"
    expected = after()
    assert expected != before, "the run changed nothing: the kill proved nothing"
    assert state == expected, (
        f"{label} left a state that is neither before nor after: "
        f"{describe_difference(state, expected)}"
    )
    return "after"


def copy_ledger(source: Path, target: Path) -> None:
    """A consistent copy with SQLite's backup API (whatever is still in a -wal file included)."""
    target.unlink(missing_ok=True)
    origin, copy = connect(source), connect(target)
    try:
        origin.backup(copy)
    finally:
        copy.close()
        origin.close()


def move_broker(state: SimState, rng: random.Random, round_: int) -> None:
    """On the simulator's loop: every price moves; fills, silent changes, removals, arrivals."""
    for con_id, price in list(state.prices.items()):
        if price is not None and price.is_finite():
            state.prices[con_id] = max(D("0.05"), price + D(rng.randint(-300, 300)) / 100)
    keys = sorted(k for k, h in state.holdings.items() if h.quantity != 0)
    for account, con_id in rng.sample(keys, 12):
        holding = state.holdings[(account, con_id)]
        step = D(1) if holding.contract.sec_type != "STK" else D(rng.randint(1, 20))
        if holding.quantity.as_integer_ratio()[1] != 1:  # fractional: trade 0.0001 steps
            step = D(rng.randint(1, 999)) / 10_000
        shares = rng.choice([step, -step, -holding.quantity])  # add, reduce, close
        price = state.prices.get(con_id) or D(100)
        state.fill(account, holding.contract, shares, price, commission=D("1.25"))
    for account, con_id in rng.sample(keys, 4):
        holding = state.holdings[(account, con_id)]
        if holding.quantity != 0:
            holding.quantity *= 2  # a transfer in: no fill explains it
    for key in rng.sample(keys, 3):
        state.holdings.pop(key, None)  # the broker stops reporting it
    template = state.holdings[keys[0]].contract
    for n in range(3):
        con_id = 30_000_000 + round_ * 10 + n
        contract = type(template)(con_id, f"N{con_id}", "STK", "USD", "SMART", "NASDAQ")
        state.set_position(keys[n][0], contract, D(10 + n), D(50), D(51))


def ledger_after(reference: Path, port: int) -> dict:
    """The state a complete run produces from `reference` (a copy of the file before the run)."""
    complete_sync(reference, port, client_id=12)
    assert_intact(reference)
    return projection(reference)


@pytest.mark.slow
@pytest.mark.timeout(sized(900, 3600))
def test_sigkill_during_20000_position_syncs(tmp_path, start_sim):
    kills = sized(25, 100)
    rng = random.Random(SEED)
    sim_thread: SimulatorThread = start_sim(None, state=build_scale(20_000))
    sim = sim_thread.sim
    port = sim_thread.port
    db = tmp_path / "ledger.sqlite"
    reference = tmp_path / "reference.sqlite"

    complete_sync(db, port, client_id=11)  # 20,000 positions opened
    sim.call(lambda s: move_broker(s, rng, 0))
    # Kills land anywhere from the connection to a little after the commit (then the process
    # only disconnects, closes the file and exits); every fifth one near the commit itself.
    commit = complete_sync(db, port, client_id=11)  # a sync of everything moved
    outcomes = {"before": 0, "after": 0}
    for round_ in range(1, kills + 1):
        assert_intact(db)
        before = projection(db)  # no process has the file open: its WAL is checkpointed
        copy_ledger(db, reference)
        sim.call(lambda s, r=round_: move_broker(s, rng, r))
        delay = rng.uniform(0.8 * commit, 1.2 * commit) if round_ % 5 == 0 else 0.0
        delay = delay or rng.uniform(0.0, 1.1 * commit)
        sigkill_after(db, port, delay)

        label = f"kill {round_} ({delay:.3f} s after connecting)"
        outcomes[judge_kill(db, before, lambda: ledger_after(reference, port), label)] += 1

    complete_sync(db, port, client_id=11)
    assert_intact(db)
    holdings, exec_ids = sim.call(broker_book)
    result = audit(db, holdings, exec_ids)
    record(
        "crash: SIGKILL during sync",
        faults=kills,
        runs=kills + 1,
        rows_lost=result.rows_lost,
        false_closes=result.false_closes,
        duplicate_fills=result.duplicate_fills,
        note=f"20,000 positions; {outcomes['before']} left the state before, "
        f"{outcomes['after']} the state after",
    )
    result.assert_clean()


# ---------------------------------------------------------------------------- migrations
def old_ledger(path: Path, rows: int) -> None:
    """A seed-era (revision 0001) database holding `rows` positions over 50 accounts."""
    from tests.db.conftest import build_at

    build_at(path, "0001")
    rng = random.Random(SEED)
    connection = connect(path)
    try:
        connection.execute("BEGIN")
        connection.execute(
            "INSERT INTO accounts (id) VALUES " + ",".join(f"({i})" for i in range(1, 51))
        )
        connection.executemany(
            "INSERT INTO positions (id, account_id, symbol, quantity, average_price, "
            "current_price, unrealized_pnl, unrealized_pnl_pct, status, opened_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    1 + i % 50,
                    f"S{i:05d}",
                    rng.randint(1, 500) * rng.choice((1, -1)),
                    round(rng.uniform(1, 999), 4),
                    round(rng.uniform(1, 999), 2),
                    round(rng.uniform(-99, 99), 2),
                    round(rng.uniform(-1, 1), 4),
                    "OPEN" if i % 5 else "CLOSED",
                    "2024-12-01 14:30:00",
                )
                for i in range(1, rows + 1)
            ],
        )
        connection.execute("COMMIT")
    finally:
        connection.close()


def revision(path: Path) -> str:
    connection = connect(path)
    try:
        return str(connection.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    finally:
        connection.close()


def seed_rows(path: Path) -> list[tuple]:
    connection = connect(path)
    try:
        return connection.execute(
            "SELECT id, account_id, symbol, quantity, average_price, status FROM positions "
            "ORDER BY id"
        ).fetchall()
    finally:
        connection.close()


@pytest.mark.slow
def test_sigkill_during_migration_of_an_old_database(tmp_path):
    """Guards: a half-migrated file (some tables rebuilt, others not) after a crash."""
    from app.db.migrate import head_revision, upgrade

    kills = sized(8, 40)
    rng = random.Random(SEED + 1)
    pristine = tmp_path / "pristine.sqlite"
    old_ledger(pristine, 20_000)
    original = seed_rows(pristine)
    expected = tmp_path / "expected" / "ledger.sqlite"
    expected.parent.mkdir()
    shutil.copyfile(pristine, expected)
    upgrade(expected)
    migrated = projection(expected)
    outcomes = {"0001": 0, "head": 0}
    for kill in range(kills):
        folder = tmp_path / f"kill{kill}"
        folder.mkdir()
        db = folder / "ledger.sqlite"
        shutil.copyfile(pristine, db)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "db", "upgrade", "--db", str(db)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Python starts in ~0.4 s here; the backup and migration follow within ~1 s.
        time.sleep(max(0.0, started + rng.uniform(0.3, 1.6) - time.monotonic()))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

        assert_intact(db)
        if revision(db) == "0001":
            assert seed_rows(db) == original
            outcomes["0001"] += 1
        else:
            assert revision(db) == head_revision()
            assert projection(db) == migrated
            outcomes["head"] += 1
        for backup in folder.glob("ledger.sqlite.bak-*"):
            assert_intact(backup)
            assert revision(backup) == "0001" and seed_rows(backup) == original, backup.name
        upgrade(db)  # and the next start finishes the job
        assert projection(db) == migrated
    record(
        "crash: SIGKILL during migration",
        faults=kills,
        runs=kills,
        note=f"20,000 rows at 0001; {outcomes['0001']} left at 0001, {outcomes['head']} at head",
    )


# ---------------------------------------------------------------------------- re-derivation
def trade_keys(state: SimState, rng: random.Random, count: int) -> list[tuple[str, int]]:
    """`count` whole-share stock holdings, each given 6 fills whose commission reports are
    withheld (the ledger books them as estimates until the reports come)."""
    keys = sorted(
        k
        for k, h in state.holdings.items()
        if h.contract.sec_type == "STK" and h.quantity >= 50 and h.quantity == int(h.quantity)
    )
    chosen = rng.sample(keys, count)
    for key in chosen:
        holding = state.holdings[key]
        price = state.prices.get(key[1]) or D(100)
        for n in range(6):
            shares = D(rng.randint(1, 5)) * (1 if n % 2 == 0 else -1)  # add, reduce, …
            state.fill(key[0], holding.contract, shares, price + n, withhold_commission=True)
    return chosen


def late_facts(state: SimState, rng: random.Random, keys: list[tuple[str, int]]) -> None:
    """The late facts that make the next sync fold keys again: pending commission reports come
    (at another amount than booked), and some fills are corrected to another price."""
    chosen = set(rng.sample(keys, len(keys) // 2))
    for exec_id, execution in list(state.executions.items()):
        key = (execution.account, execution.contract.con_id)
        if key not in chosen or exec_id != execution.exec_id:
            continue
        if execution.commission_pending:
            state.release_commission(exec_id, D(rng.randint(50, 400)) / 100)
        elif rng.random() < 0.3:
            state.correct(exec_id, price=execution.price + D(rng.randint(1, 99)) / 100)


@pytest.mark.slow
@pytest.mark.timeout(sized(900, 3600))
def test_sigkill_during_a_re_derivation(tmp_path, start_sim):
    """Issue 15: a sync whose late commission reports and corrections fold hundreds of keys
    again (their lifecycles and events deleted and written anew), killed at random instants:
    the ledger is exactly before or exactly after, never a key half re-derived."""
    kills = sized(10, 40)
    rng = random.Random(SEED + 15)
    sim_thread: SimulatorThread = start_sim(None, state=build_scale(2_000))
    sim = sim_thread.sim
    port = sim_thread.port
    db = tmp_path / "ledger.sqlite"
    reference = tmp_path / "reference.sqlite"

    keys = sim.call(lambda s: trade_keys(s, rng, 300))
    complete_sync(db, port, client_id=11)  # 2,000 positions, 1,800 fills without commission
    outcomes = {"before": 0, "after": 0}
    for round_ in range(1, kills + 1):
        assert_intact(db)
        before = projection(db)
        copy_ledger(db, reference)
        sim.call(lambda s: trade_keys(s, rng, 40))  # new pending reports on fresh keys …
        sim.call(lambda s: late_facts(s, rng, keys))  # … and late facts for older ones
        # The same sync run to the end on a copy: what "after" is, and how long it takes.
        commit = complete_sync(reference, port, client_id=12)
        assert_intact(reference)
        after = projection(reference)
        assert after != before
        # Half the kills near the commit (inside the write of the re-derived keys), half anywhere.
        if round_ % 2 == 0:
            delay = rng.uniform(0.7, 1.2) * commit
        else:
            delay = rng.uniform(0.0, 1.1) * commit
        sigkill_after(db, port, delay)
        label = f"kill {round_} ({delay:.3f} s after connecting)"
        outcomes[judge_kill(db, before, lambda a=after: a, label)] += 1
        # The next round starts from whatever the kill left, with these late facts applied.
        complete_sync(db, port, client_id=11)

    assert_intact(db)
    holdings, exec_ids = sim.call(broker_book)
    result = audit(db, holdings, exec_ids)
    record(
        "crash: SIGKILL during a re-derivation",
        faults=kills,
        runs=3 * kills + 1,
        rows_lost=result.rows_lost,
        false_closes=result.false_closes,
        duplicate_fills=result.duplicate_fills,
        note=f"2,000 positions, ~150 keys folded again per sync; {outcomes['before']} left the "
        f"state before, {outcomes['after']} the state after",
    )
    result.assert_clean()
