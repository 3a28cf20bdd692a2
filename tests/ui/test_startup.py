"""Paint first, connect after (issue 19): the cached ledger is painted before the broker client
(ib_insync), the local API (aiohttp) and Alembic load, and the banner never claims there is no
complete sync while the ledger has one — it says the ledger is being read."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.ui.startup_probe import HEAVY
from tests.ui.test_charts import known_ledger

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_window_loads_no_broker_api_or_migrations():
    code = f"import sys, app.ui.app; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_the_window_imports_the_modules_without_qt_before_pyside():
    # After PySide6, every module imported is read whole by PySide's import hook (app.cli.commands
    # .gui.import_window_modules): the ledger's stack must come first. sys.modules keeps the order.
    code = (
        "import sys\n"
        "from app.cli.commands.gui import import_window_modules\n"
        "import_window_modules()\n"
        "order = list(sys.modules)\n"
        "qt = order.index('PySide6')\n"
        "late = ['sqlalchemy', 'pydantic', 'pydantic_settings', 'app.db.tables',\n"
        "        'app.db.reader', 'app.settings', 'app.runtime']\n"
        "print([m for m in late if order.index(m) > qt])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, cwd=REPO,
    )  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_the_cached_ledger_is_painted_before_the_broker_stack_loads(tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    known_ledger(ledger)  # at head, one open position, last synced days ago
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens: TWS closed
    report = tmp_path / "report.json"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "POSITION_SYNC_API_ENABLED": "true",
           "POSITION_SYNC_API_PORT": "0"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "tests.ui.startup_probe", str(report), "1", "--",
         "--db", str(ledger), "--port", str(port), "--client-id", "41"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(report.read_text())
    # none of ib_insync, aiohttp, alembic, numpy, PostgreSQL's dialect, the simulator, Flex yet
    assert out["loaded_at_paint"] == []
    assert {"ib_insync", "aiohttp", "app.api"} <= set(out["loaded_later"])  # then connected
    assert not any("no complete sync yet" in text for text in out["banners"]), out["banners"]
    assert "cached positions from" in out["banner_later"]
