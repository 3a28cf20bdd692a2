"""Broker vs cache: the three disagreements the window highlights."""

from __future__ import annotations

from dataclasses import replace

from app.domain.discrepancy import Discrepancy, compare
from app.domain.reconcile import reconcile
from tests.domain.ledger_fixture import AAPL, ES, MSFT, SPY_C, MemoryLedger, at, pos, snapshot


def cached_rows():
    ledger = MemoryLedger()
    ledger.apply(
        reconcile(
            ledger.state(),
            snapshot(pos(AAPL, "100", "150"), pos(MSFT, "5", "400"), pos(ES, "1", "4500")),
        )
    )
    return list(ledger.rows.values())


def test_each_kind_is_found_with_a_reason():
    rows = cached_rows()
    broker = [pos(AAPL, "100", "150"), pos(MSFT, "7", "400"), pos(SPY_C, "2", "5")]
    found = compare(rows, broker)
    assert found[("DU111", MSFT.con_id)].kind is Discrepancy.QUANTITY_DIFFERS
    assert "reports 7" in found[("DU111", MSFT.con_id)].explanation
    assert found[("DU111", ES.con_id)].kind is Discrepancy.MISSING_AT_BROKER
    assert found[("DU111", SPY_C.con_id)].kind is Discrepancy.NOT_CACHED
    assert ("DU111", AAPL.con_id) not in found


def test_offline_shows_only_recorded_warnings():
    rows = cached_rows()
    rows[0] = replace(rows[0], missing_since=at(30))
    found = compare(rows, None)
    assert list(found) == [rows[0].key]
    assert found[rows[0].key].kind is Discrepancy.MISSING_AT_BROKER


def test_explicit_zero_at_broker_counts_as_absent():
    rows = cached_rows()
    broker = [pos(AAPL, "0", "0"), pos(MSFT, "5", "400"), pos(ES, "1", "4500")]
    assert compare(rows, broker)[("DU111", AAPL.con_id)].kind is Discrepancy.MISSING_AT_BROKER
