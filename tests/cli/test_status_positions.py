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
    assert doc["realized_pnl_by_currency"] == {"USD": "399"}
    assert doc["realized_pnl_estimated_by_currency"] == {"USD": "0"}
    assert doc["realized_pnl_unknown_by_currency"] == {"USD": 0}
    assert "realized_pnl_total" not in doc  # a mixed-currency figure is never printed
    # One currency: its total needs no rate, so the base figure is the USD one (no rates used)
    # only if the base currency is known; here no rate was ever stored.
    assert doc["realized_pnl_base"] is None
    assert doc["realized_pnl_base_unavailable"] == "no exchange rates are known"
    assert doc["last_run"]["status"] == "ok" and doc["last_run"]["missing"] == 0  # warned once
    assert doc["stats"]["runs"] == 3 and doc["stats"]["success_rate"] == 1.0
    (missing,) = doc["missing_at_broker"]
    assert missing["symbol"] == "ES" and missing["quantity"] == "-2"
    assert missing["missing_since"].endswith("Z")
    assert doc["last_synced_at"].endswith("Z") and doc["revision"]


@pytest.fixture
def two_currency_ledger(tmp_path):
    """USD 399 exact, EUR 100 of which 30 estimated, and IB's EUR rate stored."""
    import sqlalchemy as sa

    from app.db import rates
    from app.domain.values import Contract, ExchangeRate
    from tests.domain.ledger_fixture import D, at

    sap = Contract(14204, "SAP", currency="EUR", exchange="IBIS", local_symbol="SAP")
    path = tmp_path / "ledger.sqlite"
    with open_database(path) as db:
        commit(db, snapshot(pos(AAPL, "100", "150"), pos(sap, "10", "100"), minutes=1))
        sells = (
            fill(AAPL, "SLD", "40", "160", commission="1.00", minutes=2),
            fill(sap, "SLD", "4", "125", minutes=2),
        )
        commit(db, snapshot(pos(AAPL, "60", "150"), pos(sap, "6", "100"), fills=sells, minutes=3))
        # What the fold writes for a lifecycle with an estimated part (columns of revision 0007).
        db.run_sync(
            lambda s: s.execute(
                sa.text(
                    "UPDATE positions SET realized_pnl_estimated = '30', pnl_basis = 'estimated' "
                    "WHERE symbol = 'SAP'"
                )
            )
        )
        rate = ExchangeRate("DU111", "EUR", "USD", D("1.0856"), at(3))
        db.run_sync(rates.store_rates, [rate])
    return path


def test_status_json_keeps_currencies_apart(two_currency_ledger, capsys):
    """Guards: `realized_pnl_total` adding USD and EUR into one figure (issue 15, item 5)."""
    assert main(["status", "--json", "--db", str(two_currency_ledger)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["realized_pnl_by_currency"] == {"EUR": "100", "USD": "399"}
    assert doc["realized_pnl_estimated_by_currency"] == {"EUR": "30", "USD": "0"}
    assert doc["realized_pnl_unknown_by_currency"] == {"EUR": 0, "USD": 0}
    base = doc["realized_pnl_base"]
    assert base["currency"] == "USD" and base["total"] == "507.56"  # 399 + 100 × 1.0856
    assert base["estimated"] == "32.568" and base["rates_at"] == "2026-11-24T14:33:00Z"
    assert base["rates"] == [
        {"account": "DU111", "currency": "EUR", "rate": "1.0856", "at": "2026-11-24T14:33:00Z"}
    ]
    assert doc["realized_pnl_base_unavailable"] is None


def test_status_text_one_line_per_currency(two_currency_ledger, capsys):
    assert main(["status", "--db", str(two_currency_ledger)]) == 0
    out = capsys.readouterr().out
    assert "Realized P&L  EUR 100 (exact 70, estimated 30)" in out
    assert "              USD 399 (exact 399, estimated 0)" in out
    assert "= USD 507.56 (estimated 32.568) at IB's rates EUR 1.0856 of 2026-11-24T14:33:00Z" in out


def test_status_text_warns_about_missing(ledger_path, capsys):
    assert main(["status", "--db", str(ledger_path)]) == 0
    out = capsys.readouterr().out
    assert "2 open, 0 closed" in out
    assert "Realized P&L  USD 399 (exact 399, estimated 0)" in out
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


def test_status_says_which_prices_are_stale_and_that_fills_were_unavailable(tmp_path, capsys):
    """Issue 16: a committed run that kept an account's last prices (2101) and had no
    executions answer is told by `status`, text and --json; the next full run clears it."""
    from dataclasses import replace

    from app.db.store import _commit
    from app.domain.plan import ReconcileOptions
    from app.domain.values import SyncTrigger

    path = tmp_path / "ledger.sqlite"

    def sync(snap):
        with open_database(path) as db:
            db.run_sync(_commit, snap, ReconcileOptions(), SyncTrigger.MANUAL, snap.taken_at)

    sync(snapshot(pos(AAPL, "100", "150", market="151"), minutes=1))
    gapped = replace(
        snapshot(pos(AAPL, "100", "150"), minutes=2),
        stale_prices=(("DU111", "TWS answered … with error 2101: Unable to subscribe"),),
        fills_unavailable="no complete answer to the executions request within 10 s",
    )
    sync(gapped)
    assert main(["status", "--json", "--db", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    (stale,) = doc["stale_prices"]
    assert stale["account"] == "DU111" and "2101" in stale["reason"]
    assert stale["prices_as_of"].endswith("Z") and stale["prices_age_seconds"] >= 0
    assert doc["fills_unavailable"] == "no complete answer to the executions request within 10 s"
    assert main(["status", "--db", str(path)]) == 0
    text = capsys.readouterr().out
    assert "PRICES STALE  DU111: as of " in text and "2101" in text
    assert "FILLS         unavailable in the last sync" in text
    with open_database(path) as db:
        from app.db import repository

        assert db.run_sync(repository.positions)[0].current_price == 151  # the last price kept

    sync(snapshot(pos(AAPL, "100", "150", market="152"), minutes=3))
    assert main(["status", "--json", "--db", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stale_prices"] == [] and doc["fills_unavailable"] is None
