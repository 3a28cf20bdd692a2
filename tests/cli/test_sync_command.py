"""`position-sync sync`: exit codes and its one-line summary, against the real simulator."""

from __future__ import annotations

import json
import socket

from app.cli.main import main
from app.sim.runner import SimulatorThread


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def status(path, capsys) -> dict:
    capsys.readouterr()
    assert main(["status", "--json", "--db", str(path)]) == 0
    return json.loads(capsys.readouterr().out)


def test_sync_demo_prints_summary(tmp_path, capsys):
    path = tmp_path / "demo.sqlite"
    assert main(["sync", "--demo", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sync ok (manual)") and "positions seen" in out
    doc = status(path, capsys)
    assert doc["open_positions"] >= 10 and doc["last_run"]["status"] == "ok"


def test_sync_against_simulator_then_tws_closed(tmp_path, capsys):
    path = tmp_path / "ledger.sqlite"
    with SimulatorThread("basic") as sim:
        assert main(["sync", "--db", str(path), "--port", str(sim.port), "--client-id", "3"]) == 0
        assert sim.received_ids(3)  # it really talked to the simulator
        assert not set(sim.received_ids()) & {3, 4, 21, 58}
    before = status(path, capsys)
    code = main(["sync", "--db", str(path), "--port", str(free_port())])
    assert code == 3
    err = capsys.readouterr().err
    assert "skipped" in err and "not running" in err
    after = status(path, capsys)
    assert after["open_positions"] == before["open_positions"]
    assert after["last_run"]["status"] == "skipped"


def test_sync_incomplete_snapshot_exits_3(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("POSITION_SYNC_IB_TIMEOUT", "1.5")
    path = tmp_path / "ledger.sqlite"
    with SimulatorThread("no-position-end") as sim:
        code = main(["sync", "--db", str(path), "--port", str(sim.port)])
    assert code == 3
    doc = status(path, capsys)
    assert doc["open_positions"] == 0 and doc["last_run"]["status"] in ("failed", "skipped")
    assert doc["last_run"]["error"]


def test_sync_database_error_exits_4(tmp_path, capsys):
    path = tmp_path / "not-a-ledger.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    assert main(["sync", "--demo", "--db", str(path)]) == 4
    assert str(path) in capsys.readouterr().err
    assert path.read_bytes() == b"this is not a database" * 100
