"""A second window on a SQLite ledger another window syncs (issue 18): it views — its banner
names the syncing process — and its Sync now makes that process sync.

The first window is a real `position-sync gui` process (offscreen); the second runs here.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from app.db.sync_lock import read_holder
from app.sim.runner import SimulatorThread
from tests.ui.conftest import eventually

REPO = Path(__file__).resolve().parents[2]


def runs(db: Path) -> list[tuple[str, str]]:
    connection = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return [tuple(r) for r in connection.execute("SELECT trigger, status FROM sync_runs")]
    except sqlite3.OperationalError:  # created, not migrated yet
        return []
    finally:
        connection.close()


def test_a_second_window_views_and_its_sync_now_asks_the_syncing_window(make_app, qloop, tmp_path):
    """Guards: two windows both writing one SQLite file; a viewer window that does not say who
    syncs, or whose Sync now does nothing (or syncs by itself)."""
    db = tmp_path / "ledger.sqlite"
    with SimulatorThread("basic") as sim:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "POSITION_SYNC_SYNC_INTERVAL": "3600"}
        argv = ["gui", "--db", str(db), "--port", str(sim.port), "--client-id", "41"]
        first = subprocess.Popen(
            [sys.executable, "-m", "app", *argv],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not (db.exists() and ("startup", "ok") in runs(db)):
                assert time.monotonic() < deadline and first.poll() is None, "the first window"
                time.sleep(0.1)
            holder = read_holder(db)
            assert holder is not None and holder.pid == first.pid
            assert holder.command == "position-sync window" and holder.port

            app = make_app(sim.port, ib_client_id=42)
            assert app.runtime.viewer

            async def scenario() -> None:
                await app.start()
                banner = app.window.banner
                who = f"pid {first.pid} (position-sync window)"
                await eventually(lambda: banner.state and banner.state.text.startswith("Viewer"))
                assert who in banner.state.text, banner.state.text
                before = runs(db)
                app.window.sync_button.click()
                await eventually(lambda: len(runs(db)) > len(before), within=30)
                assert runs(db)[len(before) :] == [("manual", "ok")]
                assert not sim.received_ids(42), "the viewer window connected to TWS"
                await eventually(app.window.sync_button.isEnabled)
                assert banner.state.text.startswith("Viewer — synced"), banner.state.text

            qloop.run_until_complete(asyncio_wait(scenario(), 60))
        finally:
            first.terminate()
            first.wait(30)


async def asyncio_wait(coro, seconds: float) -> None:
    import asyncio

    await asyncio.wait_for(coro, seconds)
