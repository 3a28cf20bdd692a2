"""`--demo` never writes into the user's real ledger: it has its own (issue 19).

Regression: `position-sync --demo` once synced the demo's made-up accounts into the default
database in the user data folder, where they stayed, open, after connecting to the real TWS.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from app.cli.main import main
from app.runtime import demo_database_url
from app.settings import default_database_url
from app.sim.demo import DEMO_ACCOUNTS


def _path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _accounts(path: Path) -> set[str]:
    with sqlite3.connect(path) as con:
        return {code for (code,) in con.execute("SELECT code FROM accounts")}


def test_demo_database_sits_beside_the_real_one_and_is_another_file():
    real, demo = _path(default_database_url()), _path(demo_database_url())
    assert demo.parent == real.parent and demo != real
    assert demo.name == "demo.sqlite"


def test_headless_demo_sync_writes_the_demo_ledger_only():
    real, demo = _path(default_database_url()), _path(demo_database_url())
    assert main(["sync", "--demo"]) == 0
    assert not real.exists(), "the demo wrote into the user's real ledger"
    assert _accounts(demo) == set(DEMO_ACCOUNTS)


def test_demo_with_db_uses_the_named_database(tmp_path):
    named = tmp_path / "mine.sqlite"
    assert main(["sync", "--demo", "--db", str(named)]) == 0
    assert _accounts(named) == set(DEMO_ACCOUNTS)
    assert not _path(demo_database_url()).exists()
    assert not _path(default_database_url()).exists()


def test_demo_window_never_opens_the_default_ledger():
    """The window as a user starts it (`python -m app gui --demo`), in a process of its own: after
    it synced and quit, the real ledger was never created; the demo's has the demo accounts."""
    real, demo = _path(default_database_url()), _path(demo_database_url())
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-m", "app", "gui", "--demo", "--quit-after", "6"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not real.exists(), "the demo window opened the user's real ledger"
    assert _accounts(demo) == set(DEMO_ACCOUNTS)
