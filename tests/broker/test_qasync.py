"""The adapter under qasync (Qt's loop on the GUI thread), as the window runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[2]


def test_connect_snapshot_events_and_stop_under_qasync() -> None:
    """Same adapter, no changes: connect, complete snapshot, a live fill event, a scoped
    snapshot and a clean stop, all on a qasync.QEventLoop (in its own process)."""
    pytest.importorskip("qasync")
    pytest.importorskip("PySide6.QtWidgets")
    env = os.environ | {"QT_QPA_PLATFORM": "offscreen", "QT_API": "pyside6"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.broker.qasync_probe"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "first_complete": True,
        "first_positions": 3,
        "second_complete": True,
        "second_quantity": "61",
        "state": "disconnected",
        "leftover_tasks": 0,
    }
