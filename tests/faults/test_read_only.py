"""Read-only database location (issue 7, item 3): a clear message naming the file, exit 4 (or
the window's message box), no crash, nothing half-written.

The location is really read-only, even to root: a read-only bind mount in a private mount
namespace, else the `nobody` user (see tests/faults/read_only.py; which one ran is recorded).
Each case checks the folder afterwards: the same files, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.sim.runner import SimulatorThread
from tests.faults.figures import record
from tests.faults.read_only import ReadOnly, read_only_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def read_only() -> Iterator[ReadOnly]:
    """A folder under /tmp (reachable by `nobody` too) and the way to make it read-only."""
    folder = Path(tempfile.mkdtemp(prefix="position-sync-ro-", dir="/tmp"))
    folder.chmod(0o755)
    mechanism = read_only_folder(folder / "ledger")
    if mechanism is None:
        shutil.rmtree(folder)
        pytest.skip("no way to make a folder read-only here (no mount namespace, no setpriv)")
    try:
        yield mechanism
    finally:
        mechanism.unseal()
        shutil.rmtree(folder)


def contents(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def run(mechanism: ReadOnly, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m …argv` so that it sees the folder read-only."""
    env = {
        **os.environ,
        # Settings and user folders the `nobody` user can reach (and nothing to read there).
        "POSITION_SYNC_SETTINGS_FILE": str(mechanism.folder.parent / "settings.json"),
        "XDG_DATA_HOME": str(mechanism.folder.parent / "data"),
        "XDG_CONFIG_HOME": str(mechanism.folder.parent / "config"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    mechanism.seal()
    try:
        return subprocess.run(
            mechanism.command([sys.executable, "-m", *argv]),
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env=env,
        )
    finally:
        mechanism.unseal()


def synced_ledger(path: Path, sim: SimulatorThread) -> None:
    from app.cli.main import main

    assert main(["sync", "--db", str(path), "--port", str(sim.port), "--client-id", "41"]) == 0


def old_ledger(path: Path) -> None:
    from tests.db.test_migrations import seed_at_0001

    seed_at_0001(path)


def assert_refused(done: subprocess.CompletedProcess[str], path: Path) -> None:
    assert done.returncode == 4, (done.returncode, done.stdout, done.stderr)
    assert str(path) in done.stderr and "cannot" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


CASES = ["ledger at head", "old ledger to migrate", "no ledger yet"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["sync", "sync --watch", "status"])
def test_read_only_location_is_refused_cleanly(read_only, start_sim, case, command):
    """Guards: a crash, a raw driver error, a half-written file or a stray backup/-wal file when
    the ledger's folder cannot be written — and the message a ledger already at head got on a
    read-only mount: "upgrading to 0006 failed (… unable to open database file)"."""
    sim = start_sim("basic")
    path = read_only.folder / "ledger.sqlite"
    if case == "ledger at head":
        synced_ledger(path, sim)
    elif case == "old ledger to migrate":
        old_ledger(path)
    before = contents(read_only.folder)
    argv = ["app", *command.split(), "--db", str(path)]
    if command.startswith("sync"):
        argv += ["--port", str(sim.port), "--client-id", "42"]
    done = run(read_only, *argv)
    assert_refused(done, path)
    assert contents(read_only.folder) == before
    record(f"read-only location ({read_only.kind})", faults=1, runs=1)


def test_window_reports_a_read_only_location(read_only, start_sim):
    """Guards: the window crashing, or hanging without a word, on a ledger it cannot write."""
    sim = start_sim("basic")
    path = read_only.folder / "ledger.sqlite"
    synced_ledger(path, sim)
    before = contents(read_only.folder)
    done = run(read_only, "tests.faults.gui_probe", str(path), str(sim.port))
    assert done.returncode == 4, (done.returncode, done.stdout, done.stderr)
    shown = [line for line in done.stdout.splitlines() if line.startswith("MESSAGE BOX:")]
    assert len(shown) == 1 and str(path) in shown[0] and "cannot be written" in shown[0], shown
    assert "Traceback" not in done.stderr, done.stderr
    assert contents(read_only.folder) == before
    record(f"read-only location ({read_only.kind})", faults=1, runs=1, note="window too")
