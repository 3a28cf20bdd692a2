"""`positions --lots` and `export --lots` / `--events` show FIFO tax lots beside average cost,
through the CLI on a ledger written by real syncs (reconcile + repository), SQLite and
PostgreSQL. The syncs go through LedgerStore.commit_snapshot, the store the app uses (which
folds each touched key from its stored history)."""

from __future__ import annotations

import csv
import json

import pytest

from app.cli.main import main
from app.db.migrate import open_database
from app.domain.export import LOT_COLUMNS
from tests.db.test_postgresql import commit
from tests.domain.ledger_fixture import AAPL, ES, fill, pos, snapshot

BUY1 = fill(AAPL, "BOT", "100", "10", commission="1", minutes=1, exec_id="0000e0d5.0000a001.01.01")
BUY2 = fill(AAPL, "BOT", "100", "12", commission="1", minutes=2, exec_id="0000e0d5.0000a002.01.01")
SALE = fill(
    AAPL, "SLD", "150", "15", commission="1.50", minutes=6, exec_id="0000e0d5.0000a003.01.01"
)


@pytest.fixture
def lots_ledger(ledger_url):
    """Two buys (100 @ 10, 100 @ 12, 1.00 each: IB's average 11.01), a sale of 150 @ 15
    (1.50), and a short ES of 2 the app never saw fills for (IB's average 4500.25)."""
    with open_database(ledger_url) as db:
        commit(db, snapshot(pos(AAPL, "200", "11.01"), pos(ES, "-2", "4500.25"),
                            fills=(BUY1, BUY2), minutes=5))  # fmt: skip
        commit(db, snapshot(pos(AAPL, "50", "11.01"), pos(ES, "-2", "4500.25"),
                            fills=(SALE,), minutes=10))  # fmt: skip
    return ledger_url


def test_positions_lots_json_lists_the_fifo_lot_left(lots_ledger, capsys):
    """FIFO: the sale took all of the first buy and half the second; 50 left at 600.50 (half of
    1200 + 1.00), 12.01 a share, exact. ES: one lot priced from IB's average, estimated."""
    assert main(["positions", "--lots", "--json", "--db", lots_ledger]) == 0
    lots = json.loads(capsys.readouterr().out)
    by_symbol = {lot["symbol"]: lot for lot in lots}
    aapl, es = by_symbol["AAPL"], by_symbol["ES"]
    assert (aapl["quantity"], aapl["cost_basis"], aapl["unit_cost"]) == ("50", "600.5", "12.01")
    assert aapl["basis"] == "exact" and aapl["exec_id"] == BUY2.exec_id
    assert aapl["acquired_at"] == "2026-11-24T14:32:00Z" and aapl["currency"] == "USD"
    assert aapl["term"] == "short" and aapl["holding_days"] >= 0
    assert (es["quantity"], es["cost_basis"], es["basis"]) == ("-2", "-450025", "estimated")
    assert es["exec_id"] is None


def test_positions_lots_text_says_which_lots_are_estimated(lots_ledger, capsys):
    assert main(["positions", "--lots", "--db", lots_ledger]) == 0
    out = capsys.readouterr().out
    aapl = next(line for line in out.splitlines() if "AAPL" in line)
    assert "600.50" in aapl and "12.0100" in aapl and "exact" in aapl
    assert "1 lot(s) estimated" in out


def test_export_lots_csv(lots_ledger, tmp_path, capsys):
    out = tmp_path / "lots.csv"
    assert main(["export", "--lots", "--out", str(out), "--db", lots_ledger]) == 0
    assert "exported 2 open lots" in capsys.readouterr().out
    rows = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
    assert tuple(rows[0]) == LOT_COLUMNS
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    aapl = next(r for r in records if r["symbol"] == "AAPL")
    assert (aapl["quantity"], aapl["cost_basis"], aapl["basis"]) == ("50", "600.5", "exact")


def test_export_events_carry_fifo_beside_average(lots_ledger, capsys):
    """The sale realizes 597.00 at average cost ((15 − 11.01) × 150 − 1.50) and 647.00 under
    FIFO (2248.50 − 1001 − 600.50), both exact, in the stored events."""
    assert main(["export", "--events", "--format", "json", "--db", lots_ledger]) == 0
    doc = json.loads(capsys.readouterr().out)
    (sale,) = [r for r in doc["rows"] if r["kind"] == "REDUCED"]
    assert (sale["realized_pnl"], sale["pnl_basis"]) == ("597", "exact")
    assert (sale["realized_pnl_fifo"], sale["pnl_basis_fifo"]) == ("647", "exact")


def test_status_totals_follow_the_cost_basis_setting(lots_ledger, capsys, monkeypatch):
    """Average cost (default): USD 597; `cost_basis=fifo`: USD 647 from the events' FIFO
    amounts, both exact; the ES opening realized nothing and adds no currency."""
    assert main(["status", "--json", "--db", lots_ledger]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cost_basis"] == "average" and doc["realized_pnl_by_currency"] == {"USD": "597"}
    monkeypatch.setenv("POSITION_SYNC_COST_BASIS", "fifo")
    assert main(["status", "--json", "--db", lots_ledger]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cost_basis"] == "fifo" and doc["realized_pnl_by_currency"] == {"USD": "647"}
    assert doc["realized_pnl_estimated_by_currency"] == {"USD": "0"}
    assert main(["status", "--db", lots_ledger]) == 0
    assert "USD 647 (exact 647, estimated 0) FIFO lots" in capsys.readouterr().out


def test_a_bad_cost_basis_setting_is_a_clear_usage_error(lots_ledger, capsys, monkeypatch):
    monkeypatch.setenv("POSITION_SYNC_COST_BASIS", "lifo")
    assert main(["status", "--db", lots_ledger]) == 2
    assert "cost_basis" in capsys.readouterr().err
