"""The window under a full disk (issue 7, item 2): the banner says why the sync failed, the
window keeps running with its cached positions, and it recovers once space returns.

Real widgets offscreen on a qasync loop, the real sync stack and simulator (tests/ui fixtures);
the disk fills by SQLite's own limit on the app's connection (`PRAGMA max_page_count`).
The read-only and bad-file cases of the window are in test_read_only.py / test_bad_files.py.
"""

from __future__ import annotations

import asyncio

from app.db import repository
from app.sim.runner import SimulatorThread
from app.sim.scenarios import build_scale
from app.ui.banner import Level
from tests.faults.checks import assert_intact, audit, broker_book
from tests.faults.figures import record
from tests.faults.test_disk_full import grow, page_limit
from tests.ui.conftest import eventually, make_app, qloop

__all__ = ["make_app", "qloop"]  # fixtures


def test_window_shows_a_full_disk_keeps_running_and_recovers(make_app, qloop):
    """Guards: the window freezing, closing or showing stale "Live" when a commit fails for
    lack of space; and staying failed after space returns."""
    with SimulatorThread(None, state=build_scale(300)) as sim:
        app = make_app(sim.port)
        w = app.window
        db = app.runtime.db
        episodes = 2

        async def finished(action) -> None:
            """Do `action` (a click), then wait until the sync it started has finished."""
            before = app.controller.state.last_result
            action()
            await eventually(
                lambda: (
                    app.controller.state.last_result is not before
                    and not app.controller.state.running
                ),
                20,
            )

        async def scenario():
            await app.start()
            await eventually(lambda: w.banner.state.level is Level.LIVE, 20)
            await eventually(lambda: w.cache_model.rowCount() == 300)
            for round_ in range(episodes):
                sim.call(lambda s, r=round_: grow(s, r))
                page_limit(app.runtime, page_limit(app.runtime, None) + 2)
                runs = len(db.run_sync(repository.sync_runs))
                for _ in range(2):  # and it stays full for a while
                    await finished(w.sync_button.click)
                    assert not app.controller.state.last_result.ok
                    await eventually(lambda: w.banner.state.level is Level.ERROR, 20)
                    assert "Sync failed" in w.banner.text() and "full" in w.banner.text()
                    assert w.isVisible() and w.sync_button.isEnabled()
                assert len(db.run_sync(repository.sync_runs)) == runs  # nothing committed
                assert w.cache_model.rowCount() == 300 + 400 * round_  # cached rows still shown
                assert_intact(db.path)
                page_limit(app.runtime, None)  # space returns
                await finished(w.sync_button.click)
                assert app.controller.state.last_result.ok
                await eventually(lambda: w.banner.state.level is Level.LIVE, 20)
                await eventually(lambda r=round_: w.cache_model.rowCount() == 300 + 400 * (r + 1))
            await asyncio.sleep(0)

        qloop.run_until_complete(asyncio.wait_for(scenario(), 120))
        holdings, exec_ids = sim.call(broker_book)
        result = audit(db.path, holdings, exec_ids, read_only=True)
    record(
        "disk full (window)",
        faults=2 * episodes,
        runs=3 * episodes,
        rows_lost=result.rows_lost,
        false_closes=result.false_closes,
        duplicate_fills=result.duplicate_fills,
    )
    result.assert_clean()
