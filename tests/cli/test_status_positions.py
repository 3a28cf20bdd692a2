"""`status` and `positions` read the cache alone, as text and as JSON."""

from __future__ import annotations

import json

import pytest

from app.cli.main import main
from app.db.migrate import open_database
from tests.db.test_repository import commit
from tests.domain.ledger_fixture import AAPL, ES, fill, pos, snapshot


@pytest.fixture
def ledger_path(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with open_database(path) as db:
        commit(db, snapshot(pos(AAPL, "100", "150", market="151"), pos(ES, "-2", "4500.25")))
        sell = fill(AAPL, "SLD", "40", "160", commission="1.00", minutes=10)
        commit(db, snapshot(pos(AAPL, "60", "150"), fills=(sell,), minutes=11))
        commit(db, snapshot(pos(AAPL, "60", "150"), minutes=12))  # ES vanished: missing
    return path


def test_status_json_document(ledger_path, capsys):
    assert main(["status", "--json", "--db", str(ledger_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["database"] == str(ledger_path)
    assert doc["open_positions"] == 2 and doc["closed_positions"] == 0
    assert doc["realized_pnl_total"] == "399"
    assert doc["last_run"]["status"] == "ok" and doc["last_run"]["missing"] == 0  # warned once
    assert doc["stats"]["runs"] == 3 and doc["stats"]["success_rate"] == 1.0
    (missing,) = doc["missing_at_broker"]
    assert missing["symbol"] == "ES" and missing["quantity"] == "-2"
    assert missing["missing_since"].endswith("Z")
    assert doc["last_synced_at"].endswith("Z") and doc["revision"]


def test_status_text_warns_about_missing(ledger_path, capsys):
    assert main(["status", "--db", str(ledger_path)]) == 0
    out = capsys.readouterr().out
    assert "2 open, 0 closed" in out
    assert "WARNING" in out and "ESZ6 -2: not reported by the broker" in out


def test_positions_json_exact_decimals(ledger_path, capsys):
    assert main(["positions", "--json", "--db", str(ledger_path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_symbol = {r["symbol"]: r for r in rows}
    assert by_symbol["AAPL"]["quantity"] == "60" and by_symbol["AAPL"]["realized_pnl"] == "399"
    assert by_symbol["ES"]["average_cost"] == "225012.5" and by_symbol["ES"]["multiplier"] == "50"


def test_positions_table_and_all(ledger_path, capsys):
    assert main(["positions", "--all", "--db", str(ledger_path)]) == 0
    out = capsys.readouterr().out
    assert "AAPL" in out and "missing at broker" in out


def test_status_on_new_database_creates_it_0600(tmp_path, capsys):
    path = tmp_path / "sub" / "new.sqlite"
    assert main(["status", "--json", "--db", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["open_positions"] == 0 and doc["last_run"] is None
    assert path.stat().st_mode & 0o777 == 0o600


def test_bad_setting_is_a_usage_error(tmp_path, capsys):
    assert main(["status", "--db", str(tmp_path / "x.sqlite"), "--port", "0"]) == 2
    assert "invalid setting" in capsys.readouterr().err
