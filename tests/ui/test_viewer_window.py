"""A second window on a SQLite ledger another window syncs (issue 18): it views — its banner
names the syncing process —, its Sync now makes that process sync, and its Mark closed is
written by that process (with the version check: refused when a sync moved the lifecycle).

The first window is a real `position-sync gui` process (offscreen); the second runs here.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from app.db.sync_lock import read_holder
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.sim.scenarios import BASIC_ACCOUNTS
from app.ui.dialogs.mark_closed import MarkClosedDialog
from tests.ui.conftest import eventually, visible
from tests.ui.test_window import row_of

REPO = Path(__file__).resolve().parents[2]


def runs(db: Path) -> list[tuple[str, str]]:
    connection = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return [tuple(r) for r in connection.execute("SELECT trigger, status FROM sync_runs")]
    except sqlite3.OperationalError:  # created, not migrated yet
        return []
    finally:
        connection.close()


def lifecycle(db: Path, account: str, con_id: int) -> tuple[int, str, str, str | None]:
    """(id, status, quantity, close_reason) of the key's newest lifecycle."""
    connection = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        row = connection.execute(
            "SELECT p.id, p.status, p.quantity, p.close_reason FROM positions p"
            " JOIN accounts a ON a.id = p.account_id"
            " WHERE a.code = ? AND p.con_id = ? ORDER BY p.id DESC LIMIT 1",
            (account, con_id),
        ).fetchone()
        return tuple(row)
    finally:
        connection.close()


def test_a_second_window_views_and_its_sync_now_asks_the_syncing_window(make_app, qloop, tmp_path):
    """Guards: two windows both writing one SQLite file; a viewer window that does not say who
    syncs, or whose Sync now does nothing (or syncs by itself); a viewer's Mark closed that is
    refused, written by the viewer itself, or written over a fill the syncer booked since."""
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
                await mark_closed_through_the_syncer(app, sim, db)

            qloop.run_until_complete(asyncio_wait(scenario(), 60))
        finally:
            first.terminate()
            first.wait(30)


async def mark_closed_through_the_syncer(app, sim, db: Path) -> None:
    """Mark closed in the viewer (select, click, accept): written by the syncing window; then a
    close decided while that window booked a fill on it is refused, and nothing is written."""
    account = BASIC_ACCOUNTS[0]
    w = app.window
    model = w.cache_model

    async def open_dialog(con_id: int) -> MarkClosedDialog:
        await eventually(lambda: model.get((account, con_id)))
        w.cache_table.selectRow(row_of(model, (account, con_id)))
        await eventually(w.mark_closed_button.isEnabled)
        w.mark_closed_button.click()
        return await eventually(lambda: visible(MarkClosedDialog))

    sap = model.get((account, c.SAP.con_id))
    (await open_dialog(c.SAP.con_id)).accept()
    await eventually(lambda: model.get((account, c.SAP.con_id)) is None)  # the viewer reloaded
    assert visible(QMessageBox) is None  # neither refused nor failed
    assert lifecycle(db, account, c.SAP.con_id) == (sap.id, "CLOSED", "0", "manual")

    msft = model.get((account, c.MSFT.con_id))
    dialog = await open_dialog(c.MSFT.con_id)
    sim.fill(account, c.MSFT, "0.1", "416")  # the syncing window books it (a position update)
    await eventually(lambda: lifecycle(db, account, c.MSFT.con_id)[2] == "0.4", within=30)
    dialog.accept()
    refusal = await eventually(
        lambda: visible(QMessageBox, "Not marked closed: the position changed")
    )
    assert "0.3" in refusal.informativeText() + refusal.text(), refusal.text()
    refusal.button(QMessageBox.StandardButton.Ok).click()
    assert lifecycle(db, account, c.MSFT.con_id) == (msft.id, "OPEN", "0.4", None)


async def asyncio_wait(coro, seconds: float) -> None:
    await asyncio.wait_for(coro, seconds)
