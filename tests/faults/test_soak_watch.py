"""Soak (issue 15, "Done when"): `position-sync sync --watch` at a 1 s interval while the
simulator trades — one syncer on a SQLite ledger, then two syncers (two processes, two client
ids) on one PostgreSQL ledger — and every lifecycle's realized P&L equal to the independent
average-cost ledger of tests/faults/test_soak.py to the cent.

The syncers are the real command line in their own processes; their periodic syncs (1 s) and
their event-driven ones (a fill or a position update, debounced) interleave with the trading
as they will on a trader's desk. Who sees which fill is as IB documents it (the simulator's
`sees`): the fills are made by hand in TWS (client id 0), so one syncer is client 0 and the
other the Master API client id. Connection drops now and then; no splits (a split reads as one
only in a snapshot with no fill of that key, which a 1 s syncer cannot promise).

CI: 45 s of trading per engine; `POSITION_SYNC_FAULTS_FULL=1`: 5 minutes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.db import repository
from app.db.migrate import open_database
from tests.faults.figures import record, sized
from tests.faults.test_soak import Soak, compare_lifecycles, start_state

REPO = Path(__file__).resolve().parents[2]
MASTER = 21


@dataclass
class Watcher:
    """One `position-sync sync --watch` process; its output is read on threads."""

    proc: subprocess.Popen[str]
    results: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(cls, url: str, port: int, client_id: int) -> Watcher:
        argv = ["sync", "--watch", "--db", url, "--port", str(port), "--client-id", str(client_id)]
        env = {
            **os.environ,
            "POSITION_SYNC_SYNC_INTERVAL": "1",
            "POSITION_SYNC_DEBOUNCE_SECONDS": "0.2",
            "POSITION_SYNC_IB_TIMEOUT": "20",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", *argv],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        watcher = cls(proc)
        threading.Thread(target=watcher._read_out, daemon=True).start()
        threading.Thread(target=watcher._read_err, daemon=True).start()
        return watcher

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.results.append(line.strip())

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for line in self.proc.stderr:
                self.errors.append(line.rstrip())
                if "broker connected" in line:
                    self.connected.set()

    def ok_count(self) -> int:
        return sum(line.startswith("sync ok") for line in self.results)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def _until(predicate, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} within {within} s")


@pytest.mark.slow
@pytest.mark.timeout(sized(300, 1200))
@pytest.mark.parametrize("engine, syncers", [("sqlite", 1), ("postgresql", 2)])
def test_watch_at_one_second_while_trading(engine, syncers, tmp_path, start_sim, request):
    url = (
        str(tmp_path / "ledger.sqlite") if engine == "sqlite" else request.getfixturevalue("pg_url")
    )
    sim_thread = start_sim(None, state=start_state())
    sim = sim_thread.sim
    sim.set_broadcast_executions(False)  # IB's visibility: client 0 and the master only
    sim.set_master_client_id(MASTER)
    soak = Soak(random.Random(20261205 + syncers), sim)
    watchers = [Watcher.start(url, sim_thread.port, cid) for cid in (0, MASTER)[:syncers]]
    try:
        for watcher in watchers:
            _until(watcher.connected.is_set, 60, "a syncer connected")
        _until(lambda: all(w.ok_count() for w in watchers), 60, "a first sync")

        seconds = sized(45, 300)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            roll = soak.rng.random()
            if roll < 0.55:
                soak.fill()
                soak.count("fill")
            elif roll < 0.985:
                soak.tick()
                soak.count("tick")
            else:
                sim.drop_connections()
                soak.count("drop")
            time.sleep(soak.rng.uniform(0.02, 0.3))

        # Trading stops: each syncer completes two more syncs (its 1 s period) after it.
        marks = [w.ok_count() for w in watchers]
        for watcher, mark in zip(watchers, marks, strict=True):
            _until(lambda w=watcher, m=mark: w.ok_count() >= m + 2, 60, "two syncs after trading")
    finally:
        codes = [w.stop() for w in watchers]
    assert codes == [0] * syncers, [w.errors[-10:] for w in watchers]

    with open_database(url) as db:
        ours: dict = {}
        for life in db.run_sync(repository.positions, include_closed=True):
            ours.setdefault(life.key, []).append(life)
        ours = {key: sorted(lives, key=lambda p: p.id) for key, lives in ours.items()}
        stored = {f.exec_id for f in db.run_sync(repository.all_fills)}
    compared = compare_lifecycles(ours, soak.plain)
    assert stored == set(soak.exec_ids), "every fill stored once"
    syncs = sum(w.ok_count() for w in watchers)
    failed = sum(
        1 for w in watchers for line in w.results if line.startswith("sync ") and " ok " not in line
    )
    record(
        f"soak: sync --watch at 1 s, {syncers} syncer(s) on {engine}",
        faults=soak.counts.get("drop", 0),
        runs=syncs + failed,
        rows_lost=0,
        false_closes=0,
        duplicate_fills=0,
        note=f"{seconds} s of trading: "
        + ", ".join(f"{n} {k}" for k, n in sorted(soak.counts.items()))
        + f"; {syncs} complete syncs, {failed} not complete; {compared} lifecycles equal to "
        "the plain ledger",
    )
