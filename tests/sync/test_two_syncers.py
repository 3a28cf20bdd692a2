"""Two syncers, as two workstations of a desk, on one PostgreSQL ledger through a day (issue 9).

Two real `position-sync sync --watch` processes (their own ib_insync clients, client ids 11 and
12) follow one simulator and write one PostgreSQL database, each syncing every 0.3 s and after
every pushed fill, so their syncs of the same accounts overlap all day. The password reaches them
through PGPASSWORD, not the URL. After each step of the scripted day the test waits until the
ledger shows it and both syncers have synced again; at the end it checks what the desk relies on:
one OPEN lifecycle per (account, conId), each fill stored once, each lifecycle's history as a
single syncer would have written it, and realized P&L to the cent (worked in
tests/sync/test_trading_day.py: IB's average cost includes commissions).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

from app.db import repository
from app.db.database import Database
from app.db.migrate import open_database
from app.domain.values import CloseReason, EventKind, PositionStatus
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from tests.conftest import ORDER_MESSAGE_IDS
from tests.db.conftest import query
from tests.sync.test_trading_day import DU1, DU2, day_start

D = Decimal
CENT = D("0.01")
REPO = Path(__file__).resolve().parents[2]
STEP_TIMEOUT = 20.0


class Syncer:
    """One `position-sync sync --watch` process and the result lines it prints."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.lines: list[str] = []
        self.stderr_path = log_dir / f"{name}.stderr"
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def runs(self) -> int:
        """Sync results printed so far (ok, skipped or failed)."""
        return sum(line.startswith("sync ") for line in self.lines)

    def stop(self) -> int:
        """SIGTERM (the watch's clean stop) and wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise
        finally:
            self._reader.join(5)
            self._stderr.close()

    def report(self) -> str:
        return (
            f"--- {self.name} stdout (last 15):\n" + "\n".join(self.lines[-15:]) + "\n"
            f"--- {self.name} stderr:\n{self.stderr_path.read_text()[-3000:]}"
        )


@pytest.fixture
def desk(
    pg_url: str, tmp_path: Path, start_sim: Callable[..., SimulatorThread]
) -> Iterator[tuple[SimulatorThread, Database, list[Syncer]]]:
    """The simulator, a viewer's Database and two syncer processes on one PostgreSQL ledger."""
    url = make_url(pg_url)
    password = url.password
    assert password
    no_password = URL.create(
        url.drivername, username=url.username, host=url.host, port=url.port, database=url.database
    ).render_as_string(hide_password=False)
    viewer = open_database(pg_url)  # migrated before the syncers start
    sim = start_sim(None, state=day_start())
    home = tmp_path / "home"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POSITION_SYNC_", "PG"))
    }
    env.update(
        PGPASSWORD=password,
        POSITION_SYNC_SETTINGS_FILE=str(home / "settings.json"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        POSITION_SYNC_SYNC_INTERVAL="0.3",
        POSITION_SYNC_DEBOUNCE_SECONDS="0.05",
        POSITION_SYNC_IB_TIMEOUT="5",
        PYTHONUNBUFFERED="1",
    )
    syncers: list[Syncer] = []
    try:
        for client_id in (11, 12):
            argv = [sys.executable, "-m", "app", "sync", "--watch", "--db", no_password]
            argv += ["--host", "127.0.0.1", "--port", str(sim.port), "--client-id", str(client_id)]
            syncers.append(Syncer(f"syncer-{client_id}", argv, env, tmp_path))
        yield sim, viewer, syncers
    finally:
        codes = []
        for syncer in syncers:
            try:
                codes.append(syncer.stop())
            except subprocess.TimeoutExpired:
                codes.append(None)
        viewer.close()
        assert codes == [0] * len(syncers), "\n".join(s.report() for s in syncers)


def lifecycles(db: Database, account: str, con_id: int) -> list[Any]:
    rows = db.run_sync(repository.positions, include_closed=True)
    return sorted((p for p in rows if p.key == (account, con_id)), key=lambda p: p.id)


def kinds(db: Database, life: Any) -> list[EventKind]:
    return [e.kind for e in db.run_sync(repository.events, life.id)]


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


@pytest.mark.slow
def test_two_syncers_through_a_scripted_day(desk: Any) -> None:
    sim_thread, db, syncers = desk
    sim = sim_thread.sim

    def settle(done: Callable[[], bool], what: str) -> None:
        """Wait until the ledger shows the step, then until both syncers synced twice more."""
        deadline = time.monotonic() + STEP_TIMEOUT
        while not done():
            if time.monotonic() > deadline or any(s.process.poll() is not None for s in syncers):
                pytest.fail(f"never saw {what}\n" + "\n".join(s.report() for s in syncers))
            time.sleep(0.05)
        marks = [s.runs() for s in syncers]
        while any(s.runs() < mark + 2 for s, mark in zip(syncers, marks, strict=True)):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"syncers stalled after {what}\n" + "\n".join(s.report() for s in syncers)
                )
            time.sleep(0.05)

    def open_quantity(account: str, con_id: int) -> Decimal | None:
        rows = [p for p in lifecycles(db, account, con_id) if p.status is PositionStatus.OPEN]
        return rows[0].quantity if rows else None

    settle(
        lambda: (
            open_quantity(DU1, c.AAPL.con_id) == 100 and open_quantity(DU2, c.AAPL.con_id) == 50
        ),
        "the opening positions",
    )
    sim.fill(DU1, c.AAPL, 50, "156", commission=D("1.00"))  # an add
    settle(lambda: open_quantity(DU1, c.AAPL.con_id) == 150, "the add")
    sim.fill(DU1, c.AAPL, -40, "160", commission=D("1.00"))  # a partial close: 318.73
    settle(lambda: open_quantity(DU1, c.AAPL.con_id) == 110, "the partial close")
    sim.fill(DU2, c.AAPL, -50, "165", commission=D("1.00"))  # a full close: 249.00
    settle(lambda: open_quantity(DU2, c.AAPL.con_id) is None, "the full close")
    sim.fill(DU1, c.AAPL, -200, "158", commission=D("2.00"))  # a flip: 658.17 more, short 90
    settle(lambda: open_quantity(DU1, c.AAPL.con_id) == -90, "the flip")
    sim.fill(DU1, c.ES, 2, "4500.00", commission=D(0))  # a future, multiplier 50
    settle(lambda: open_quantity(DU1, c.ES.con_id) == 2, "the future bought")
    sim.fill(DU1, c.ES, -2, "4510.25", commission=D(0))  # 10.25 × 2 × 50 = 1025.00
    settle(lambda: open_quantity(DU1, c.ES.con_id) is None, "the future sold")
    # A burst: fills 40 ms apart while both syncers sync after each push. Buy 100 @ 400, fee 1
    # → average 400.01; sell 25 at 401, 402, 403 and 404, fee 1 each → 23.75 + 48.75 + 73.75
    # + 98.75 = 245.00, however the syncs group the fills (reductions realize linearly).
    sim.fill(DU2, c.MSFT, 100, "400", commission=D("1.00"))
    for price in ("401", "402", "403", "404"):
        time.sleep(0.04)
        sim.fill(DU2, c.MSFT, -25, price, commission=D("1.00"))
    settle(
        lambda: (
            bool(lifecycles(db, DU2, c.MSFT.con_id)) and open_quantity(DU2, c.MSFT.con_id) is None
        ),
        "the burst",
    )
    sim.set_position(DU2, c.NVDA, D(10), D(100), D(100))
    settle(lambda: open_quantity(DU2, c.NVDA.con_id) == 10, "NVDA")
    sim.remove_position(DU2, c.NVDA.con_id)  # it vanishes without fills

    def flagged() -> bool:
        rows = lifecycles(db, DU2, c.NVDA.con_id)
        return bool(rows) and rows[-1].missing_since is not None

    settle(flagged, "NVDA missing at the broker")

    # No duplicate OPEN lifecycle, no duplicate fill (beyond the indexes: count them).
    url = db.url.render_as_string(hide_password=False)
    assert (
        query(
            url,
            "SELECT account_id, con_id FROM positions WHERE status = 'OPEN' "
            "GROUP BY account_id, con_id HAVING count(*) > 1",
        )
        == []
    )
    assert query(url, "SELECT exec_id FROM executions GROUP BY exec_id HAVING count(*) > 1") == []
    assert query(url, "SELECT count(*) FROM executions") == [(11,)]

    # Every lifecycle's history is what one syncer alone would have written.
    long_, short = lifecycles(db, DU1, c.AAPL.con_id)
    assert kinds(db, long_) == [
        EventKind.OPENED,
        EventKind.INCREASED,
        EventKind.REDUCED,
        EventKind.CLOSED,
    ]
    assert long_.close_reason is CloseReason.FLIP and money(long_.realized_pnl) == D("976.90")
    assert kinds(db, short) == [EventKind.OPENED]
    assert short.quantity == -90 and money(short.average_price) == D("157.99")
    assert short.realized_pnl == 0
    (du2,) = lifecycles(db, DU2, c.AAPL.con_id)
    assert kinds(db, du2) == [EventKind.OPENED, EventKind.CLOSED]
    assert du2.close_reason is CloseReason.BROKER and money(du2.realized_pnl) == D("249.00")
    (es,) = lifecycles(db, DU1, c.ES.con_id)
    assert kinds(db, es) == [EventKind.OPENED, EventKind.CLOSED] and es.realized_pnl == D("1025.00")
    (msft,) = lifecycles(db, DU2, c.MSFT.con_id)
    assert msft.status is PositionStatus.CLOSED and money(msft.realized_pnl) == D("245.00")
    msft_kinds = kinds(db, msft)
    assert msft_kinds[0] is EventKind.OPENED and msft_kinds[-1] is EventKind.CLOSED
    assert set(msft_kinds[1:-1]) <= {EventKind.REDUCED}, msft_kinds  # never INCREASED again
    (nvda,) = lifecycles(db, DU2, c.NVDA.con_id)
    assert kinds(db, nvda) == [EventKind.OPENED, EventKind.MISSING]
    assert nvda.status is PositionStatus.OPEN

    total = db.run_sync(repository.realized_total)
    assert list(total) == ["USD"] and money(total["USD"].total) == D(
        "2495.90"
    )  # 976.90 + 249.00 + 1025.00 + 245.00

    # Both syncers really worked the whole day; none hit a ledger error.
    for syncer in syncers:
        assert sum(line.startswith("sync ok") for line in syncer.lines) >= 10, syncer.report()
        assert not [line for line in syncer.lines if "ledger could not be written" in line]
    sent = set(sim.received_ids())
    assert not sent & ORDER_MESSAGE_IDS
    skipped = sum(line.startswith("sync skipped") for s in syncers for line in s.lines)
    print(f"two syncers: {[s.runs() for s in syncers]} runs, {skipped} superseded by the other's")
