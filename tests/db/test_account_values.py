"""IB's NetLiq and cash account values in the ledger (issue 19): stored per (account, tag,
currency) with their time by an OK sync run only, the newest kept, exactly as IB sent them; a
value IB leaves out keeps its last report. On SQLite and PostgreSQL (`any_db`)."""

from __future__ import annotations

from dataclasses import replace

from app.db import account_values, repository
from app.db.database import Database
from app.db.store import LedgerStore
from app.domain.values import AccountValue
from tests.db.test_rates import _commit
from tests.domain.ledger_fixture import AAPL, at, pos, snapshot


def value(tag: str, currency: str, text: str, minutes: float, account: str = "DU111"):
    return AccountValue(account, tag, currency, text, at(minutes))


def test_an_ok_run_stores_the_newest_value_as_sent_and_keeps_what_ib_left_out(
    any_db: Database,
) -> None:
    """Guards: NetLiq lost between runs (offline the strip had nothing), a value rewritten as a
    number (`125000.10` → `125000.1`), an older report replacing a newer one, a value IB left out
    of an answer turned into a zero or dropped, and a failed run writing values at all."""
    store = LedgerStore(any_db)
    first = replace(
        snapshot(pos(AAPL, "10", "150"), minutes=1),
        account_values=(
            value("NetLiquidation", "USD", "125000.10", 1),
            value("TotalCashValue", "USD", "-310.00", 1),
            value("CashBalance", "EUR", "2000.5", 1),
            value("ExchangeRate", "EUR", "1.08", 1),  # not a kept tag: never stored here
        ),
    )
    _commit(store, first, 1)
    stored = any_db.run_sync(account_values.latest_account_values)
    assert stored == [
        value("CashBalance", "EUR", "2000.5", 1),
        value("NetLiquidation", "USD", "125000.10", 1),
        value("TotalCashValue", "USD", "-310.00", 1),
    ]
    # The next answer: a newer NetLiq, an older (late, duplicate) cash report, and no EUR cash.
    later = replace(
        snapshot(pos(AAPL, "10", "150"), minutes=2),
        account_values=(
            value("NetLiquidation", "USD", "126000.00", 2),
            value("TotalCashValue", "USD", "999", 0.5),
        ),
    )
    _commit(store, later, 2)
    by = {(v.tag, v.currency): v for v in any_db.run_sync(account_values.latest_account_values)}
    assert by[("NetLiquidation", "USD")] == value("NetLiquidation", "USD", "126000.00", 2)
    assert by[("TotalCashValue", "USD")] == value("TotalCashValue", "USD", "-310.00", 1)
    assert by[("CashBalance", "EUR")] == value("CashBalance", "EUR", "2000.5", 1)  # its age kept
    # A failed (incomplete) run changes nothing, account values included.
    failed = replace(
        snapshot(pos(AAPL, "10", "150"), minutes=3, incomplete="positionEnd never came"),
        account_values=(value("NetLiquidation", "USD", "1", 3),),
    )
    _commit(store, failed, 3)
    by = {(v.tag, v.currency): v for v in any_db.run_sync(account_values.latest_account_values)}
    assert by[("NetLiquidation", "USD")].value == "126000.00"
    # `status` reads them back, with the account's base currency.
    status = any_db.run_sync(repository.ledger_status, "db", None)
    assert len(status.account_values) == 3 and "DU111" in status.base_currencies


def test_values_of_an_unknown_account_are_skipped(db: Database) -> None:
    written = db.run_sync(
        account_values.store_account_values, [value("NetLiquidation", "USD", "1", 1, "DU999")]
    )
    assert written == 0
    assert db.run_sync(account_values.latest_account_values) == []
