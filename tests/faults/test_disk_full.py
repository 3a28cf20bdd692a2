"""Disk full during a sync (issue 7, item 2): a clear error, a rollback, an intact file, and a
service that keeps running and recovers when space returns.

Two ways to fill the disk:
- SQLite's own limit (`PRAGMA max_page_count` on the app's connection), in-process, so the
  service's result and the ledger are checked after every step;
- a real ENOSPC: `position-sync sync --watch` in a private mount namespace (`unshare -m`) whose
  ledger folder is a small tmpfs, filled from outside through /proc/<pid>/root. Skipped (with the
  reason) where mount namespaces are not allowed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db import repository
from app.domain.values import SyncStatus
from app.sim.scenarios import build_scale
from app.sync.service import SyncOptions
from tests.faults.checks import assert_intact, audit, broker_book, projection
from tests.faults.figures import record
from tests.sync.test_trading_day import connected

REPO = Path(__file__).resolve().parents[2]
D = Decimal
LEDGER_TABLES = ("accounts", "positions", "position_events", "executions")


def page_limit(stack, pages: int | None) -> int:
    """Cap the app connection's database at `pages` pages (None: lift it); returns the count."""

    def apply(session) -> int:
        if pages is not None:
            session.execute(text(f"PRAGMA max_page_count = {pages}"))
        else:
            session.execute(text("PRAGMA max_page_count = 4294967294"))
        return int(session.execute(text("PRAGMA page_count")).scalar_one())

    return stack.db.run_sync(apply)


def grow(state, round_: int) -> None:
    """The broker gains positions and every price moves: the next sync needs new pages."""
    for con_id, price in list(state.prices.items()):
        if price is not None and price.is_finite():
            state.prices[con_id] = price + D("0.01")
    template = next(iter(state.holdings.values()))
    for n in range(400):
        con_id = 40_000_000 + round_ * 1000 + n
        contract = type(template.contract)(con_id, f"G{con_id}", "STK", "USD", "SMART", "NASDAQ")
        state.set_position(template.account, contract, D(5 + n), D(20), D(21))


def test_sqlite_full_rolls_back_and_the_service_recovers(make_stack, run):
    """Guards: a failed commit leaving half a sync behind, or killing the service for good."""
    stack = make_stack(None, state=build_scale(1000), options=SyncOptions(enabled=False))
    episodes = 3

    async def scenario():
        await connected(stack)
        assert (await stack.service.sync_positions()).ok
        for round_ in range(episodes):
            stack.sim.call(lambda s, r=round_: grow(s, r))
            pages = page_limit(stack, None)
            page_limit(stack, pages + 2)  # two more pages: far too few for 400 new positions
            before = projection(stack.db.path, read_only=True)
            for _ in range(2):  # and it stays full for a while
                result = await stack.service.sync_positions()
                assert result.status is SyncStatus.FAILED and result.ledger_error
                assert "full" in (result.error or "").lower(), result.error
                assert str(stack.db.path) in (result.error or "")
                after = projection(stack.db.path, read_only=True)
                for table in LEDGER_TABLES:
                    assert after[table] == before[table], table
            assert_intact(stack.db.path)
            page_limit(stack, None)  # space returns
            result = await stack.service.sync_positions()
            assert result.ok and result.opened == 400, result.summary()

    run(scenario(), timeout=120)
    holdings, exec_ids = stack.sim.call(broker_book)
    result = audit(stack.db.path, holdings, exec_ids, read_only=True)
    runs = stack.db.run_sync(repository.sync_runs)
    record(
        "disk full (max_page_count)",
        faults=2 * episodes,
        runs=len(runs) + 2 * episodes,  # failed commits leave no run row
        rows_lost=result.rows_lost,
        false_closes=result.false_closes,
        duplicate_fills=result.duplicate_fills,
    )
    result.assert_clean()


# ---------------------------------------------------------------------------- real ENOSPC
def _namespaces_work(tmp_path: Path) -> str | None:
    """None when `unshare -m` + a tmpfs mount work here, else why not."""
    if not all(shutil.which(tool) for tool in ("unshare", "nsenter", "mount")):
        return "util-linux unshare/nsenter/mount not installed"
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=1m tmpfs {probe} && touch {probe}/x",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"mount namespaces are not allowed here: {done.stderr.strip()}"
    return None


class Watch:
    """`position-sync sync --watch` on a ledger in a private tmpfs; its output read on threads."""

    def __init__(self, folder: Path, port: int, size: str, env: dict[str, str]) -> None:
        db = self.db = folder / "ledger.sqlite"
        command = (
            f"mount -t tmpfs -o size={size},mode=0700 tmpfs {folder} && exec {sys.executable} "
            f"-m app sync --watch --db {db} --port {port} --client-id 31"
        )
        self.proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", command],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()
        # The folder as the watch process sees it (its tmpfs), from outside its namespace.
        self.inside = Path(f"/proc/{self.proc.pid}/root") / str(folder).lstrip("/")

    @staticmethod
    def _read(stream, sink: list[str]) -> None:
        with stream:
            for line in stream:
                sink.append(line)

    def results(self, word: str) -> int:
        return sum(line.startswith(f"sync {word}") for line in self.out)

    def wait_for(self, word: str, count: int, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while self.results(word) < count:
            assert self.proc.poll() is None, f"--watch exited: {''.join(self.err[-20:])}"
            assert time.monotonic() < deadline, f"no 'sync {word}' #{count}: {self.out[-5:]}"
            time.sleep(0.05)

    def copy_ledger(self, target: Path) -> Path:
        """A consistent copy (SQLite's backup API) made inside the watch's mount namespace.

        Through /proc/<pid>/root SQLite would not reach the file: it resolves the symlink and
        opens the path in this namespace instead.
        """
        script = (
            "import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); "
            "d = sqlite3.connect(sys.argv[2]); s.backup(d); d.close(); s.close()"
        )
        target.unlink(missing_ok=True)
        paths = (str(self.db), str(target))
        subprocess.run(
            ["nsenter", "-t", str(self.proc.pid), "-m", sys.executable, "-c", script, *paths],
            check=True,
            timeout=60,
        )
        return target

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def fill_up(folder: Path) -> Path:
    """Write a file until the file system is full; returns it."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    # suppress() outermost: closing the file flushes what the last write left buffered, which
    # raises ENOSPC too.
    with contextlib.suppress(OSError), open(filler, "wb") as file:
        while True:
            file.write(chunk)
            file.flush()
    return filler


def test_real_enospc_under_sync_watch(tmp_path, start_sim):
    """Guards: --watch dying (or the file breaking) when the disk fills, and never recovering."""
    why_not = _namespaces_work(tmp_path)
    if why_not is not None:
        pytest.skip(why_not)
    sim_thread = start_sim(None, state=build_scale(2000))
    sim = sim_thread.sim
    folder = tmp_path / "mnt"
    folder.mkdir()
    env = {**os.environ, "POSITION_SYNC_SYNC_INTERVAL": "0.3", "POSITION_SYNC_IB_TIMEOUT": "30"}
    watch = Watch(folder, sim_thread.port, "8m", env)
    try:
        watch.wait_for("ok", 2)
        filler = fill_up(watch.inside)
        sim.call(lambda s: grow(s, 0))
        failed_before = watch.results("failed")
        watch.wait_for("failed", failed_before + 3)  # full, and staying full
        full = [line for line in watch.out if line.startswith("sync failed")][-1]
        assert "full" in full.lower() and "ledger.sqlite" in full, full
        assert_intact(watch.copy_ledger(tmp_path / "while-full.sqlite"))
        filler.unlink()  # space returns
        ok_before = watch.results("ok")
        watch.wait_for("ok", ok_before + 2)
        recovered = [line for line in watch.out if line.startswith("sync ok")][-2]
        assert "400 opened" in recovered or "0 opened" in recovered, recovered
        copy = watch.copy_ledger(tmp_path / "recovered.sqlite")
        assert_intact(copy)
        holdings, exec_ids = sim.call(broker_book)
        result = audit(copy, holdings, exec_ids)
        survived = watch.results("ok") + watch.results("failed")
    finally:
        code = watch.stop()
    assert code == 0, "".join(watch.err[-20:])
    record(
        "disk full (real ENOSPC, --watch)",
        faults=watch.results("failed"),
        runs=survived,
        rows_lost=result.rows_lost,
        false_closes=result.false_closes,
        duplicate_fills=result.duplicate_fills,
    )
    result.assert_clean()
