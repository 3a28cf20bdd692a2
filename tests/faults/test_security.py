"""Security (issue 7, item 8): private files, masked account numbers, a loopback-only simulator.

The fourth part — no placeOrder, cancelOrder, reqGlobalCancel or exerciseOptions ever reaches a
simulator, across the whole test suite — is tests/faults/order_guard.py, loaded by the root
conftest; its tally prints at the end of every run.

The app writes no log file (logs go to stderr, and to the window's log view); the file checks
below would catch one appearing in the data or config folder with a looser mode.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from app.sim import contracts as c
from app.sim.demo import DEMO_ACCOUNTS
from app.sim.runner import SimulatorThread
from app.sim.scenarios import BASIC_ACCOUNTS
from app.sim.server import GatewaySimulator
from app.sync.service import SyncOptions
from tests.faults.figures import record
from tests.sync.test_trading_day import connected

REPO = Path(__file__).resolve().parents[2]
D = Decimal
UNMANAGED = "DU9999999"  # the bad-rows scenario's row of an account this login does not manage
ACCOUNTS = (*BASIC_ACCOUNTS, *DEMO_ACCOUNTS, UNMANAGED)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loose_umask() -> None:
    os.umask(0o022)  # a typical desktop umask: files 0644 unless the app says otherwise


def app_process(*argv: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=loose_umask,  # noqa: PLW1509  (no threads are started before exec)
        **kwargs,
    )


def test_database_files_are_private_even_with_a_loose_umask(tmp_path, start_sim):
    """Guards: a ledger of account positions (and its -wal, -shm and backups) readable by other
    local users."""
    sim = start_sim("basic")
    data_home = Path(os.environ["XDG_DATA_HOME"])
    watch = app_process(
        "sync", "--watch", "--port", str(sim.port), "--client-id", "81", "-vv",
        env={**os.environ, "POSITION_SYNC_SYNC_INTERVAL": "0.2"},
    )  # fmt: skip
    try:
        assert watch.stdout is not None
        assert watch.stdout.readline().startswith("sync ok")
        folder = data_home / "position-sync"
        live = sorted(folder.iterdir())
        names = {p.name for p in live}
        assert {"ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"} <= names, names
        assert mode(folder) == 0o700
        assert {p.name: mode(p) for p in live} == {p.name: 0o600 for p in live}
    finally:
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err[-2000:]
    backup = app_process("db", "backup")
    backup.communicate(timeout=60)
    assert backup.returncode == 0
    everything = [p for p in Path(os.environ["XDG_CONFIG_HOME"]).parent.rglob("*") if p.is_file()]
    assert everything, "nothing was written where the app keeps its files"
    assert {str(p): mode(p) for p in everything} == {str(p): 0o600 for p in everything}
    assert not [p for p in everything if p.suffix == ".log"]
    assert [p for p in everything if ".bak-" in p.name]
    record("security: file modes", faults=0, runs=2, note=f"{len(everything)} files, all 0600")


def full_codes(text: str) -> list[str]:
    return sorted({code for code in ACCOUNTS if code in text})


@pytest.mark.parametrize("scenario", ["demo", "bad-rows"])
def test_logs_never_show_a_whole_account_number(tmp_path, scenario):
    """Guards: account numbers in logs — ib_insync's raw messages at debug level, the skipped-row
    warnings, connection messages, the simulator's own log lines."""
    env = {**os.environ, "POSITION_SYNC_IB_TIMEOUT": "5"}
    db = tmp_path / "ledger.sqlite"
    if scenario == "demo":  # the demo gateway runs in the same process: its logs are included
        proc = app_process("sync", "--demo", "--db", str(db), "-vv", env=env)
        out, err = proc.communicate(timeout=120)
    else:
        with SimulatorThread("bad-rows") as sim:
            sim.send_garbage("short")  # nobody connected yet: a no-op, but harmless
            proc = app_process("sync", "--db", str(db), "--port", str(sim.port), "-vv", env=env)
            out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert len(err.splitlines()) > 50, "expected debug logging"
    assert full_codes(err) == [] and full_codes(out) == [], re.findall(r".*DU\d{7}.*", err)[:5]
    assert "…" in err  # masked codes do appear: last three characters only
    masked = set(re.findall(r"…(\w+)", err))
    assert masked and all(len(tail) <= 3 for tail in masked), sorted(masked)[:10]
    record("security: masked logs", runs=1, note=f"{len(err.splitlines())} lines ({scenario})")


def test_in_process_logs_under_faults_never_show_a_whole_account_number(make_stack, run, caplog):
    """Guards: account numbers leaking through a log path the command-line run does not take
    (drops mid-snapshot, garbage frames, an unmanaged account's rows, 1100)."""
    caplog.set_level(logging.DEBUG)
    stack = make_stack("bad-rows", options=SyncOptions(enabled=False), backoff_initial=0.02)

    async def scenario():
        await connected(stack)
        await stack.service.sync_positions()
        stack.sim.set_faults(drop_after_position_rows=2, drop_once=True)
        await stack.service.sync_positions()
        await connected(stack)
        for kind in ("short", "unknown", "binary"):
            stack.sim.send_garbage(kind)
        stack.sim.fill(BASIC_ACCOUNTS[0], c.AAPL, 5, "190")
        stack.sim.push_error(1100)
        await stack.service.sync_positions()
        stack.sim.push_error(1102)
        await asyncio.sleep(0.1)

    run(scenario(), timeout=60)
    text = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    assert len(caplog.records) > 20
    assert full_codes(text) == [], [line for line in text.splitlines() if full_codes(line)][:5]
    record("security: masked logs", runs=1, note=f"{len(caplog.records)} records in-process")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "10.1.2.3", "example.com"])
def test_the_simulator_refuses_non_loopback_binds(host):
    """Guards: a broker without authentication listening on the network."""
    with pytest.raises(ValueError, match="refusing to listen"):
        GatewaySimulator(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_the_simulator_listens_on_loopback(host):
    GatewaySimulator(host=host)


def test_the_simulator_binds_beyond_loopback_only_when_asked():
    with SimulatorThread("empty", host="0.0.0.0", allow_non_loopback=True) as sim:
        assert sim.is_listening()
    done = subprocess.run(
        [sys.executable, "-m", "app", "gateway", "--host", "0.0.0.0", "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "refusing to listen" in done.stderr, done.stderr
    record("security: loopback only", runs=1)
