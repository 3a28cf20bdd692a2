"""Corrupt, newer-version and older-version database files (issue 7, item 5), through the
commands a user runs: refused with a message naming the file, or backed up then migrated; the
original is never overwritten or deleted.

app.db's own refusal tests (tests/db/test_refusals.py) cover `open_database`; these run the real
processes — `sync`, `sync --watch`, `status` and the window — on each kind of bad file, and look
at the folder afterwards byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.db.migrate import head_revision, upgrade
from tests.faults.checks import assert_intact, connect
from tests.faults.figures import record

REPO = Path(__file__).resolve().parents[2]


def contents(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def dump(path: Path) -> list[str]:
    """The database's schema and rows as SQL (equal dumps: the same data, whatever the header)."""
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def synced(path: Path, port: int) -> None:
    from app.cli.main import main

    assert main(["sync", "--db", str(path), "--port", str(port), "--client-id", "71"]) == 0


def garbage(path: Path, port: int) -> None:
    path.write_bytes(b"position,quantity\nAAPL,100\n" * 500)  # a CSV where the ledger was


def zeroed_pages(path: Path, port: int) -> None:
    synced(path, port)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    for number in range(1, len(data) // page):  # every page but the header's
        data[number * page : (number + 1) * page] = bytes(page)
    path.write_bytes(bytes(data))


def truncated(path: Path, port: int) -> None:
    synced(path, port)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def header_only(path: Path, port: int) -> None:
    synced(path, port)
    path.write_bytes(path.read_bytes()[:100])


def newer(path: Path, port: int) -> None:
    synced(path, port)
    connection = connect(path)
    try:
        connection.execute("UPDATE alembic_version SET version_num = '0999'")
    finally:
        connection.close()


def other_sqlite(path: Path, port: int) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO photos (name) VALUES ('beach.jpg')")
        connection.commit()
    finally:
        connection.close()


REFUSED: dict[str, tuple[Callable[[Path, int], None], str]] = {
    "garbage": (garbage, "not a SQLite database"),
    "zeroed pages": (zeroed_pages, "left untouched"),
    "truncated": (truncated, "left untouched"),
    "header only": (header_only, "left untouched"),
    "newer version": (newer, "'0999'"),
    "another app's database": (other_sqlite, "not a Position Sync ledger"),
}
COMMANDS = {
    "sync": ["sync"],
    "sync --watch": ["sync", "--watch"],
    "status": ["status"],
    "window": None,
}


def run(command: str, path: Path, port: int) -> subprocess.CompletedProcess[str]:
    argv = COMMANDS[command]
    if argv is None:  # the window, with its message box reported on stdout
        full = [sys.executable, "-m", "tests.faults.gui_probe", str(path), str(port)]
    else:
        full = [sys.executable, "-m", "app", *argv, "--db", str(path)]
        if argv[0] == "sync":
            full += ["--port", str(port), "--client-id", "72"]
    return subprocess.run(
        full,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind", list(REFUSED))
def test_bad_files_are_refused_untouched(tmp_path, start_sim, kind, command):
    """Guards: SQLite "repairing" (overwriting) a file it cannot read, a migration over a newer
    version's schema, and a crash or raw driver error instead of a message naming the file."""
    sim = start_sim("basic")
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "ledger.sqlite"
    make, words = REFUSED[kind]
    make(path, sim.port)
    for extra in folder.glob("ledger.sqlite-*"):  # a clean close leaves none; be sure
        extra.unlink()
    before = contents(folder)
    done = run(command, path, sim.port)
    assert done.returncode == 4, (done.returncode, done.stdout[-500:], done.stderr[-2000:])
    shown = done.stdout if command == "window" else done.stderr
    assert str(path) in shown and words in shown, shown[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert contents(folder) == before  # byte-identical, and no backup, -wal or -shm beside it
    record("bad database files", faults=1, runs=1)


def seed_at_0001(path: Path, port: int) -> None:
    from tests.db.test_migrations import seed_at_0001 as seed

    seed(path)


@pytest.mark.parametrize("command", ["sync", "sync --watch", "window"])
def test_an_older_version_is_backed_up_then_migrated(tmp_path, start_sim, command):
    """Guards: migrating in place without a copy, or losing the seed-era rows on the way."""
    sim = start_sim("basic")
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "ledger.sqlite"
    seed_at_0001(path, sim.port)
    original = dump(path)
    connection = connect(path)
    try:
        seed_rows = connection.execute("SELECT * FROM positions ORDER BY id").fetchall()
    finally:
        connection.close()
    if command == "sync --watch":
        # --watch runs until stopped: the migration happens before its first sync; stop it then.
        argv = ["sync", "--watch", "--db", str(path), "--port", str(sim.port)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", *argv, "--client-id", "73"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        proc.terminate()
        assert proc.wait(60) == 0 and first.startswith("sync ok"), first
        proc.stdout.close()
    else:
        done = run(command, path, sim.port)
        assert done.returncode == 0, (done.stdout[-500:], done.stderr[-2000:])
    backups = sorted(folder.glob("ledger.sqlite.bak-0001-*"))
    assert len(backups) == 1, sorted(p.name for p in folder.iterdir())
    assert dump(backups[0]) == original  # the copy holds the original's schema and rows
    assert_intact(backups[0])
    assert_intact(path)
    connection = connect(path)
    try:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (
            head_revision(),
        )
        ids = [row[0] for row in connection.execute("SELECT id FROM positions ORDER BY id")]
    finally:
        connection.close()
    assert ids[: len(seed_rows)] == [row[0] for row in seed_rows]  # every seed row kept
    record("older database version", faults=1, runs=1)


def test_a_failed_migration_keeps_the_original_and_its_backup(tmp_path):
    """Guards: a half-migrated file when a migration step fails (an unconvertible value)."""
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "ledger.sqlite"
    seed_at_0001(path, 0)
    connection = connect(path)
    try:
        connection.execute("UPDATE positions SET current_price = 9e999 WHERE id = 1")  # inf
    finally:
        connection.close()
    original = dump(path)
    done = subprocess.run(
        [sys.executable, "-m", "app", "db", "upgrade", "--db", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 4 and str(path) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert_intact(path)
    # The same schema and rows (the engine did switch the file to WAL mode, a header byte).
    assert dump(path) == original
    backups = list(folder.glob("ledger.sqlite.bak-0001-*"))
    assert len(backups) == 1 and dump(backups[0]) == original
    with pytest.raises(Exception, match="current_price"):
        upgrade(path)
    record("older database version", faults=1, runs=1, note="a failing migration too")
