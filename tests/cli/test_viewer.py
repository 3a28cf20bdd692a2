"""One syncing process per SQLite ledger (issue 18), through the real command line: a second
`sync --watch` on the same file is a viewer that writes nothing, a one-shot `sync` asks the
syncer, and the viewer takes over when the syncer is killed.

The syncer and the viewer are `position-sync sync --watch` processes; the simulator runs in this
process; the database is read with plain sqlite3 (read-only, so this test never writes it).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from app.cli.main import main
from app.sim.runner import SimulatorThread
from tests.faults.test_locking import Watch
from tests.waiting import until


def runs(db: Path) -> list[tuple[str, str]]:
    """(trigger, status) of every sync_runs row, oldest first."""
    connection = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return [tuple(row) for row in connection.execute(
            "SELECT trigger, status FROM sync_runs ORDER BY id"
        )]  # fmt: skip
    finally:
        connection.close()


def test_a_second_watch_views_a_one_shot_sync_asks_and_the_viewer_takes_over(tmp_path, capsys):
    """Guards: two processes both writing one SQLite file (SQLite 3.40's WAL-reset bug); a
    viewer that writes run rows or connects to TWS; a one-shot sync that syncs by itself
    beside the running syncer; a viewer that never takes over after the syncer died."""
    db = tmp_path / "ledger.sqlite"
    with SimulatorThread("basic") as sim:
        # Periodic syncs every 300 s: every run row below is one this test caused.
        syncer = Watch(db, sim.port, 31, interval="300")
        viewer: Watch | None = None
        try:
            until(lambda: syncer.count("sync ok"), 60, f"a first sync {syncer.err[-5:]}")
            assert syncer.line("viewer:") is None
            before = runs(db)
            assert before == [("startup", "ok")]

            viewer = Watch(db, sim.port, 32, interval="300")
            line = until(lambda: viewer.line("viewer:"), 60, f"the viewer line {viewer.err[-5:]}")
            who = f"pid {syncer.proc.pid} (position-sync sync --watch)"
            assert who in line and str(db) in line, line
            time.sleep(2.5)  # a syncer would have connected and synced at start-up by now
            assert runs(db) == before, "the viewer wrote run rows"
            assert not sim.received_ids(32), "the viewer connected to TWS"
            assert not [x for x in viewer.out if x.startswith("sync ")], viewer.out

            capsys.readouterr()
            code = main(["sync", "--db", str(db), "--port", str(sim.port), "--client-id", "33"])
            out, err = capsys.readouterr()
            assert code == 0, err
            assert out.startswith("sync ok (manual)") and f"(run by {who})" in out, out
            assert f"{who} syncs {db}; asking it to sync" in err, err
            assert not sim.received_ids(33), "the one-shot sync connected to TWS itself"
            assert runs(db) == [*before, ("manual", "ok")]
            until(lambda: syncer.count("sync ok (manual)"), 10, "the syncer's own output")

            syncer.proc.kill()  # SIGKILL: no code of it runs; only the OS drops its lock
            syncer.proc.wait(10)
            took = until(lambda: viewer.line("took over:"), 15, f"a take-over {viewer.err[-5:]}")
            assert who in took, took
            until(lambda: viewer.count("sync ok (startup)"), 30, "the new syncer's first sync")
            assert sim.received_ids(32), "the new syncer connects to TWS"
            assert runs(db)[-1] == ("startup", "ok")
            assert viewer.out.index(took) < min(
                i for i, x in enumerate(viewer.out) if x.startswith("sync ")
            ), viewer.out  # nothing synced before the take-over
            assert viewer.stop() == 0
        finally:
            for watch in (syncer, viewer):
                if watch is not None and watch.proc.poll() is None:
                    watch.proc.kill()
                    watch.proc.wait(10)
