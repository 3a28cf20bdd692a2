"""`flex import` on a real migrated ledger (SQLite and PostgreSQL): statement fills join the
history and the fold re-derives every key they touch.

Each scenario is one of issue 17's: a sale missed while the app was closed becomes exact at the
statement's price, date and commission; the opening is backfilled to its trade; live and
statement fills of the same execution merge; a re-import changes nothing; overlapping
statements merge; unseen accounts and contracts are added; a bad file leaves the ledger as it was.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from app.cli.main import main
from app.db import repository
from app.db.migrate import open_database
from app.domain.values import Contract, EventKind, PnlBasis, PositionStatus, PriceSource
from tests.db.test_repository import commit
from tests.domain.ledger_fixture import AAPL, SPY_C, D, at, fill, pos, snapshot
from tests.flex.builder import StatementXml, write

DAY = 24 * 60


def ledger_dump(url: str) -> tuple[list, list, list]:
    """Everything an import may write: lifecycles, events, fills."""
    with open_database(url) as db:
        lives = db.run_sync(lambda s: repository.positions(s, include_closed=True))
        events = db.run_sync(repository.all_events)
        fills = db.run_sync(repository.all_fills)
    return lives, events, fills


def flex_import(url: str, *files: Path, capsys) -> str:
    code = main(["flex", "import", *map(str, files), "--db", url])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def aapl_lifecycles(url: str):
    lives, _, _ = ledger_dump(url)
    return [life for life in lives if life.contract.con_id == AAPL.con_id]


def events_of(url: str, position_id: int):
    with open_database(url) as db:
        return db.run_sync(repository.events, position_id)


@pytest.fixture
def missed_sale(ledger_url):
    """Synced holding 100 AAPL; the app was closed while 40 were sold; the next day's sync saw
    60 and no fills (TWS gives only today's executions), so it booked an estimated sale."""
    with open_database(ledger_url) as db:
        commit(db, snapshot(pos(AAPL, "100", "149.51", market="150"), minutes=5))
        commit(db, snapshot(pos(AAPL, "60", "149.51", market="161"), minutes=DAY + 5))
    (life,) = aapl_lifecycles(ledger_url)
    assert life.realized_pnl_estimated == D("459.6")  # (161 - 149.51) x 40 at market: a guess
    assert life.opened_at == at(5)  # held before the first sync: dated by it
    return ledger_url


BUY = fill(AAPL, "BOT", "100", "149.5", commission="1", minutes=-2 * DAY, exec_id="0001.a.01.01")
SALE = fill(AAPL, "SLD", "40", "160", commission="1.0035", minutes=180, exec_id="0001.b.01.01")


def test_a_missed_sale_becomes_exact_and_the_opening_is_backfilled(missed_sale, tmp_path, capsys):
    path = write(tmp_path / "nov.xml", StatementXml("DU111").trade(BUY).trade(SALE).lot(SALE))
    out = flex_import(missed_sale, path, capsys=capsys)
    assert "2 new, 0 already known" in out
    assert "USD 459.6 → 418.5965 (-41.0035); estimated part 459.6 → 0" in out

    (life,) = aapl_lifecycles(missed_sale)
    assert life.status is PositionStatus.OPEN and life.quantity == D(60)
    assert life.opened_at == BUY.time  # backfilled to the real trade, two days before
    assert life.average_price == D("149.51")  # 149.5 + 1 / 100 commission
    assert life.realized_pnl == D("418.5965")  # (160 - 149.51) x 40 - 1.0035
    assert life.realized_pnl_estimated == 0 and life.pnl_basis is PnlBasis.EXACT
    events = events_of(missed_sale, life.id)
    assert [(e.kind, e.occurred_at, e.price, e.price_source) for e in events[:2]] == [
        (EventKind.OPENED, BUY.time, D("149.5"), PriceSource.FILLS),
        (EventKind.REDUCED, SALE.time, D("160"), PriceSource.FILLS),
    ]
    assert events[1].realized_pnl == D("418.5965") and events[1].pnl_basis is PnlBasis.EXACT
    assert events[1].exec_ids == (SALE.exec_id,)
    assert not [e for e in events if e.price_source is PriceSource.MARKET]  # the guess is gone


def test_reimport_changes_nothing(missed_sale, tmp_path, capsys):
    path = write(tmp_path / "nov.xml", StatementXml("DU111").trade(BUY).trade(SALE))
    flex_import(missed_sale, path, capsys=capsys)
    before = ledger_dump(missed_sale)
    out = flex_import(missed_sale, path, path, capsys=capsys)
    assert "0 new, 2 already known" in out and "unchanged" in out
    assert ledger_dump(missed_sale) == before


def test_overlapping_statements_merge(missed_sale, tmp_path, capsys):
    add = fill(AAPL, "BOT", "10", "162", commission="1", minutes=DAY + 60, exec_id="0001.c.01.01")
    first = write(tmp_path / "a.xml", StatementXml("DU111").trade(BUY).trade(SALE))
    second = write(tmp_path / "b.xml", StatementXml("DU111").trade(SALE).trade(add))
    flex_import(missed_sale, first, capsys=capsys)
    out = flex_import(missed_sale, second, capsys=capsys)
    assert "1 new, 1 already known" in out
    _, _, fills = ledger_dump(missed_sale)
    assert [f.exec_id for f in fills] == [BUY.exec_id, SALE.exec_id, add.exec_id]
    (life,) = aapl_lifecycles(missed_sale)
    assert life.quantity == D(70)  # the add after the last sync: booked after it
    # The same ledger from both files in one import:
    again = ledger_dump(missed_sale)
    assert flex_import(missed_sale, first, second, capsys=capsys).count("0 new") == 1
    assert ledger_dump(missed_sale) == again


def test_live_and_statement_fills_of_one_execution_merge(ledger_url, tmp_path, capsys):
    """The live fill's commission report never arrived (estimated); the statement completes the
    same execution (same execId) instead of adding a second fill."""
    live_buy = fill(AAPL, "BOT", "100", "150", commission="1", minutes=1, exec_id="0002.a.01.01")
    live_sale = fill(AAPL, "SLD", "40", "160", commission=None, minutes=3, exec_id="0002.b.01.01")
    with open_database(ledger_url) as db:
        commit(db, snapshot(pos(AAPL, "60", "150.01"), fills=(live_buy, live_sale), minutes=5))
    (life,) = aapl_lifecycles(ledger_url)
    assert life.pnl_basis is PnlBasis.ESTIMATED  # commission not reported yet

    statement = StatementXml("DU111").trade(live_buy).trade(replace(live_sale, commission=D("1.2")))
    out = flex_import(ledger_url, write(tmp_path / "s.xml", statement), capsys=capsys)
    assert "0 new, 1 already known, 1 completed" in out
    _, _, fills = ledger_dump(ledger_url)
    assert [(f.exec_id, f.commission) for f in fills] == [
        (live_buy.exec_id, D(1)),
        (live_sale.exec_id, D("1.2")),
    ]
    assert fills[1].seen_at == at(5)  # what the live stream recorded stays: when it was seen
    (life,) = aapl_lifecycles(ledger_url)
    assert life.realized_pnl == D("398.4") and life.pnl_basis is PnlBasis.EXACT  # 9.99x40-1.2


def test_unseen_accounts_and_contracts_are_added_currencies_apart(ledger_url, tmp_path, capsys):
    sap = Contract(14094, "SAP", currency="EUR", exchange="IBIS", local_symbol="SAP")
    option_buy = fill(SPY_C, "BOT", "3", "5.2", commission="3", minutes=0, account="DU222")
    option_sale = fill(SPY_C, "SLD", "3", "6.2", commission="3", minutes=60, account="DU222")
    sap_buy = fill(sap, "BOT", "10", "120", commission="2", minutes=0, account="DU222")
    sap_sale = fill(sap, "SLD", "10", "125", commission="2", minutes=30, account="DU222")
    statement = StatementXml("DU222", base_currency="USD")
    for f in (option_buy, option_sale, sap_buy, sap_sale):
        statement.trade(f)
    out = flex_import(ledger_url, write(tmp_path / "u.xml", statement), capsys=capsys)
    assert "added DU222" in out
    lives, _, _ = ledger_dump(ledger_url)
    by_con = {life.contract.con_id: life for life in lives}
    option = by_con[SPY_C.con_id]
    assert option.contract.multiplier == 100 and option.contract.local_symbol == SPY_C.local_symbol
    assert option.status is PositionStatus.CLOSED
    assert option.realized_pnl == D("294")  # (6.2 - 5.21) x 3 x 100 - 3
    assert by_con[sap.con_id].contract.currency == "EUR"
    assert by_con[sap.con_id].realized_pnl == D("46")  # (125 - 120.2) x 10 - 2
    assert "Realized P&L  EUR 0 → 46" in out and "Realized P&L  USD 0 → 294" in out


def test_a_bad_file_among_good_ones_changes_nothing(missed_sale, tmp_path, capsys):
    good = write(tmp_path / "good.xml", StatementXml("DU111").trade(BUY).trade(SALE))
    broken = StatementXml("DU111").trade(
        fill(AAPL, "BOT", "1", "1", minutes=DAY + 60), tradePrice=""
    )
    bad = write(tmp_path / "bad.xml", broken)
    before = ledger_dump(missed_sale)
    code = main(["flex", "import", str(good), str(bad), "--db", missed_sale])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{bad}: line 6: Trade " in err and "has no tradePrice" in err
    assert ledger_dump(missed_sale) == before
    missing = tmp_path / "nope.xml"
    assert main(["flex", "import", str(missing), "--db", missed_sale]) == 2
    assert f"{missing}: cannot read it" in capsys.readouterr().err
    assert ledger_dump(missed_sale) == before


def test_a_sale_after_the_last_sync_is_booked_after_it(missed_sale, tmp_path, capsys):
    """A statement newer than the last sync: its fills follow the last observation."""
    later = fill(AAPL, "SLD", "60", "170", commission="1", minutes=2 * DAY, exec_id="0001.d.01.01")
    path = write(tmp_path / "dec.xml", StatementXml("DU111").trade(BUY).trade(SALE).trade(later))
    flex_import(missed_sale, path, capsys=capsys)
    (life,) = aapl_lifecycles(missed_sale)
    assert life.status is PositionStatus.CLOSED and life.closed_at == later.time
    assert life.realized_pnl == D("418.5965") + D("1228.4")  # (170 - 149.51) x 60 - 1
    assert life.pnl_basis is PnlBasis.EXACT
    assert life.closed_at - life.opened_at == timedelta(days=4)
    assert Decimal(0) == life.realized_pnl_estimated


def test_rates_to_base_and_the_json_summary(ledger_url, tmp_path, capsys):
    """IB's fxRateToBase of a EUR trade is kept as the account's EUR → USD rate (status uses
    it); the JSON summary keeps currencies apart and decimals exact."""
    sap = Contract(14094, "SAP", currency="EUR", exchange="IBIS", local_symbol="SAP")
    buy = fill(sap, "BOT", "10", "120", commission="2", minutes=0)
    sale = fill(sap, "SLD", "10", "125.5", commission="2", minutes=30)
    statement = StatementXml("DU111").trade(buy, fxRateToBase="1.0856")
    statement.trade(sale, fxRateToBase="1.0861")
    path = write(tmp_path / "eur.xml", statement)
    assert main(["flex", "import", str(path), "--json", "--db", ledger_url]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["new"], doc["already_known"], doc["accounts_added"]) == (2, 0, ["DU111"])
    assert doc["realized_pnl_changes"] == [
        {"currency": "EUR", "before": "0", "after": "51", "change": "51",
         "estimated_before": "0", "estimated_after": "0"}
    ]  # fmt: skip  # (125.5 - 120.2) x 10 - 2
    with open_database(ledger_url) as db:
        status = db.run_sync(repository.ledger_status, db.location, None)
    (rate,) = status.exchange_rates
    assert (rate.currency, rate.base_currency, rate.rate) == ("EUR", "USD", D("1.0861"))
    assert rate.at == sale.time


def test_a_statement_correction_replaces_the_live_fill(ledger_url, tmp_path, capsys):
    """IB corrected an execution (`….01` → `….02`) after the live stream delivered it: the
    statement's version replaces the stored one and the key is re-derived."""
    live_buy = fill(AAPL, "BOT", "100", "150", commission="1", minutes=1, exec_id="0006.a.01.01")
    live_sale = fill(AAPL, "SLD", "40", "160", commission="1", minutes=3, exec_id="0006.b.01.01")
    with open_database(ledger_url) as db:
        commit(db, snapshot(pos(AAPL, "60", "150.01"), fills=(live_buy, live_sale), minutes=5))
    corrected = replace(live_sale, exec_id="0006.b.01.02", price=D("161"))
    statement = StatementXml("DU111").trade(live_buy).trade(corrected)
    out = flex_import(ledger_url, write(tmp_path / "c.xml", statement), capsys=capsys)
    assert "0 new, 1 already known, 1 completed" in out
    _, _, fills = ledger_dump(ledger_url)
    assert [(f.exec_id, f.price) for f in fills] == [
        (live_buy.exec_id, D(150)),
        (corrected.exec_id, D(161)),
    ]
    (life,) = aapl_lifecycles(ledger_url)
    assert life.realized_pnl == D("438.6") and life.pnl_basis is PnlBasis.EXACT  # 10.99x40-1


def test_an_import_waits_for_no_one_and_writes_nothing_while_another_process_syncs(
    tmp_path, capsys
):
    """Guards against `flex import` writing a SQLite ledger another process syncs (two writers
    of one file: SQLite 3.40's WAL-reset bug). It is refused naming that process, the ledger is
    unchanged, and it imports once the syncer has gone."""
    from tests.db.test_sync_lock import Holder

    url = str(tmp_path / "ledger.sqlite")
    path = write(tmp_path / "s.xml", StatementXml("DU111").trade(fill(AAPL, "BOT", "5", "150")))
    with open_database(url):
        pass
    before = ledger_dump(url)
    holder = Holder(Path(url))
    try:
        assert holder.first == "held"
        assert main(["flex", "import", str(path), "--db", url]) == 4
        err = capsys.readouterr().err
        assert f"pid {holder.proc.pid} (holder test) syncs this ledger" in err, err
        assert ledger_dump(url) == before
    finally:
        holder.close()
    flex_import(url, path, capsys=capsys)
    assert [life.quantity for life in aapl_lifecycles(url)] == [5]
