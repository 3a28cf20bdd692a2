"""The window's figures, each from the real window in a child process (tests.bench.window_driver).

- ui.stall: the Qt loop's longest gap during each full sync (the empty ledger's first sync, then
  syncs after every price moved), window connected to the simulator;
- ui.update.shown: a live quantity push → the open-positions table's model holds the new value,
  from the debounce firing;
- ui.rss: the window's peak resident memory over all of that;
- ui.full_gc: one whole-heap garbage collection at the end (a rare pause of the whole window);
- ui.cold_start: `position-sync gui` offline (TWS not running) with the ledger that run left,
  from starting the process to the first paint of the open-positions table with every row;
- ui.cold_rss: peak resident memory at that paint.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.bench.gateway import REPO

CLIENT_ID = 31


def _environment(home: Path) -> dict[str, str]:
    """The child's environment: offscreen Qt, a private settings file and folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSITION_SYNC_")}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        POSITION_SYNC_SETTINGS_FILE=str(home / "settings.json"),
        POSITION_SYNC_SYNC_INTERVAL="1000000",  # only the benchmark's own syncs
        POSITION_SYNC_DEBOUNCE_SECONDS="0.05",  # figures are taken from the debounce firing
        POSITION_SYNC_NOTIFY_MISSING="false",
    )
    return env


def _free_port() -> int:
    """A port nobody listens on: TWS "not running"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _drive(mode: str, args: list[str], gui: list[str], env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        log = Path(folder) / "window.log"
        t0 = time.time()
        with log.open("wb") as output:
            code = subprocess.call(
                [sys.executable, "-m", "tests.bench.window_driver", mode, str(report), str(t0),
                 *args, "--", *gui],
                cwd=REPO,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=900,
            )  # fmt: skip
        if not report.exists():
            raise RuntimeError(f"window ({mode}) exited {code}: {log.read_text()[-3000:]}")
        result: dict[str, Any] = json.loads(report.read_text())
        if code != 0 or "error" in result:
            raise RuntimeError(f"window ({mode}) exited {code}: {result.get('error')}")
        return result


def run_window_figures(
    size: int, rounds: int, updates: int, log: Callable[[str], None] = print
) -> dict[str, list[float]]:
    """Every window sample of one size."""
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix=f"position-sync-window-{size}-") as folder:
        home = Path(folder)
        env = _environment(home)
        ledger = home / "ledger.sqlite"
        gui = ["--db", str(ledger), "--client-id", str(CLIENT_ID)]
        live = _drive("live", [str(size), str(rounds), str(updates)], gui, env)
        samples["ui.stall"] = live["stalls"]
        samples["ui.update.shown"] = live["shown"]
        samples["ui.rss"] = [live["peak_rss_mb"]]
        samples["ui.full_gc"] = [live["full_gc"]]
        log(
            "  window, live: longest stall per full sync "
            + ", ".join(f"{s * 1000:.0f}" for s in live["stalls"])
            + " ms; update shown "
            + ", ".join(f"{s * 1000:.0f}" for s in live["shown"])
            + f" ms; peak RSS {live['peak_rss_mb']:.0f} MB; whole-heap GC "
            + f"{live['full_gc'] * 1000:.0f} ms"
        )
        offline = [*gui, "--port", str(_free_port())]
        for _ in range(rounds):
            cold = _drive("cold", [str(size)], offline, env)
            samples.setdefault("ui.cold_start", []).append(cold["painted"])
            samples.setdefault("ui.cold_rss", []).append(cold["painted_rss_mb"])
        log(
            "  window, offline cold start to painted: "
            + ", ".join(f"{s:.2f}" for s in samples["ui.cold_start"])
            + f" s; peak RSS {max(samples['ui.cold_rss']):.0f} MB"
        )
    return samples
