"""The ledger's two doors: `LedgerReader` (snapshot reads, no lock) and `LedgerWriter` (the write
commands), on a real SQLite file and on PostgreSQL (tests.engines).

The ledger is written through the writer as the app writes it (a sync's snapshot, a Mark closed,
a statement's import), and every read is checked against the repository's own queries run in a
plain transaction, so the reader adds a door, not different answers.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from app.db import account_values, rates, repository
from app.db.database import Database
from app.db.errors import DatabaseError, DatabaseLockedError
from app.db.export import read_export
from app.db.lots import open_lots
from app.db.migrate import open_database
from app.db.reader import RUNS, BlockingLedgerReader, LedgerReader
from app.db.revision import ledger_status_now
from app.db.store import LedgerStore
from app.db.writer import BlockingLedgerWriter, LedgerWriter
from app.domain.export import ExportKind
from app.domain.manual import LifecycleChangedError, LifecycleVersion, MarkClosedRequest
from app.domain.plan import ReconcileOptions
from app.domain.records import RunOutcome
from app.domain.series import daily_realized
from app.domain.statements import Statement
from app.domain.summary import summarize
from app.domain.values import (
    AccountValue,
    CostBasis,
    ExchangeRate,
    Lifecycle,
    PnlBasis,
    PositionStatus,
    SyncStatus,
    SyncTrigger,
)
from tests.db.test_reads import _expect, writer  # noqa: F401 (the writing process, a fixture)
from tests.domain.ledger_fixture import AAPL, ES, MSFT, at, fill, pos, snapshot

D = Decimal
OPTIONS = ReconcileOptions()
UTC_DAY = at(0).replace(hour=0, minute=0, second=0, microsecond=0)
AAPL_KEY = ("DU111", AAPL.con_id)


def _doors(db: Database) -> tuple[LedgerReader, LedgerWriter]:
    """Both doors over one store, as app.runtime builds them."""
    store = LedgerStore(db)
    return LedgerReader(db, store.kept), LedgerWriter(store)


async def _fill_ledger(doors: LedgerWriter) -> None:
    """AAPL bought 100 @ 150 then 40 sold @ 160 (realized 400 less commission), MSFT held,
    ES held then gone (missing at broker); IB's EUR rate and NetLiquidation stored."""
    buy = fill(AAPL, "BOT", "100", "150", commission="1", minutes=1)
    sell = fill(AAPL, "SLD", "40", "160", commission="1", minutes=10)
    rate = ExchangeRate("DU111", "EUR", "USD", D("1.08"), at(2))
    value = AccountValue("DU111", "NetLiquidation", "USD", "250000.00", at(2))
    first = snapshot(
        pos(AAPL, "100", "150", market="151"), pos(MSFT, "5", "400"), pos(ES, "-2", "4500.25"),
        fills=(buy,), minutes=2,
    )  # fmt: skip
    first = replace(first, exchange_rates=(rate,), account_values=(value,))
    for snap in (
        first,
        snapshot(pos(AAPL, "60", "150"), pos(MSFT, "5", "400"), pos(ES, "-2", "4500.25"),
                 fills=(sell,), minutes=11),
        snapshot(pos(AAPL, "60", "150"), pos(MSFT, "5", "400"), minutes=12),
    ):  # fmt: skip
        plan, _ = await doors.commit_snapshot(snap, OPTIONS, SyncTrigger.MANUAL, snap.taken_at)
        assert plan.incomplete_reason is None


def _calls(
    reader: LedgerReader, life: Lifecycle
) -> dict[str, Callable[[], Coroutine[Any, Any, Any]]]:
    """Every public read of the reader, with arguments that find something in `_fill_ledger`'s
    ledger. A method added to LedgerReader without a case here fails the tests below."""
    assert life.id is not None
    pid = life.id
    return {
        "positions": lambda: reader.positions(include_closed=True),
        "lifecycles_for": lambda: reader.lifecycles_for([AAPL_KEY]),
        "lifecycle": lambda: reader.lifecycle(pid),
        "missing_at_broker": reader.missing_at_broker,
        "position_counts": reader.position_counts,
        "accounts": reader.accounts,
        "events": lambda: reader.events(pid),
        "events_with_basis": lambda: reader.events_with_basis([pid], [PnlBasis.EXACT]),
        "fills_for": lambda: reader.fills_for(AAPL_KEY, at(0)),
        "open_lots": lambda: reader.open_lots("DU111"),
        "sync_runs": reader.sync_runs,
        "last_success": reader.last_success,
        "sync_stats": reader.sync_stats,
        "stale_prices": reader.stale_prices,
        "realized_amounts": lambda: reader.realized_amounts(None, CostBasis.FIFO),
        "realized_total": lambda: reader.realized_total(CostBasis.AVERAGE),
        "realized_by_day": lambda: reader.realized_by_day(None, None, CostBasis.AVERAGE),
        "summary": lambda: reader.summary([life], None, UTC_DAY, CostBasis.AVERAGE),
        "exchange_rates": reader.exchange_rates,
        "account_values": reader.account_values,
        "base_currencies": reader.base_currencies,
        "export_rows": lambda: reader.export_rows(ExportKind.EVENTS, "DU111", at(60)),
        "status": lambda: reader.status(CostBasis.AVERAGE),
    }


def _public_reads() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(LedgerReader)
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }


def _aapl(db: Database) -> Lifecycle:
    (life,) = [p for p in db.run_sync(repository.lifecycles_for, [AAPL_KEY]) if p.is_open]
    return life


def test_every_read_gives_what_the_repository_reads(any_db: Database, run: Any) -> None:
    """The reader's answers are the queries' own (read in a plain writing transaction before)."""
    reader, writer_ = _doors(any_db)
    run(_fill_ledger(writer_))
    db = any_db
    life = _aapl(db)
    pid = life.id
    calls = _calls(reader, life)
    assert set(calls) == _public_reads()

    got = {name: run(call()) for name, call in calls.items()}

    expected = {
        "positions": db.run_sync(repository.positions, include_closed=True),
        "lifecycles_for": db.run_sync(repository.lifecycles_for, [AAPL_KEY]),
        "lifecycle": db.run_sync(repository.position, pid),
        "missing_at_broker": db.run_sync(repository.missing_at_broker),
        "position_counts": db.run_sync(repository.position_counts),
        "accounts": db.run_sync(repository.account_codes),
        "events": db.run_sync(repository.events, pid),
        "events_with_basis": {
            pid: [e for e in db.run_sync(repository.events, pid) if e.pnl_basis is PnlBasis.EXACT]
        },
        "fills_for": db.run_sync(repository.fills_for, AAPL_KEY, at(0)),
        "open_lots": db.run_sync(open_lots, "DU111"),
        "sync_runs": db.run_sync(repository.sync_runs, RUNS),
        "last_success": db.run_sync(repository.last_success),
        "sync_stats": db.run_sync(repository.sync_stats),
        "stale_prices": db.run_sync(repository.stale_prices),
        "realized_amounts": db.run_sync(repository.realized_amounts, None, CostBasis.FIFO),
        "realized_total": db.run_sync(repository.realized_total, CostBasis.AVERAGE),
        "exchange_rates": db.run_sync(rates.latest_rates),
        "account_values": db.run_sync(account_values.latest_account_values),
        "base_currencies": db.run_sync(account_values.base_currencies),
        "export_rows": db.run_sync(read_export, ExportKind.EVENTS, "DU111", at(60)),
        "status": db.run_sync(ledger_status_now, db.location, CostBasis.AVERAGE),
        # The two reads that also compute, from what the repository reads:
        "realized_by_day": daily_realized(
            db.run_sync(repository.realized_amounts, None, CostBasis.AVERAGE)
        ),
        "summary": summarize(
            [life],
            db.run_sync(repository.realized_amounts, UTC_DAY, CostBasis.AVERAGE),
            db.run_sync(rates.latest_rates),
            account_values=db.run_sync(account_values.latest_account_values),
            bases=db.run_sync(account_values.base_currencies),
        ),
    }
    assert set(expected) == set(calls)
    for name, value in expected.items():
        assert repr(got[name]) == repr(value), name

    # What the ledger holds, so the comparisons above compared something.
    assert [p.contract.symbol for p in got["positions"]] == ["AAPL", "ES", "MSFT"]
    assert [p.contract.symbol for p in got["missing_at_broker"]] == ["ES"]
    assert got["position_counts"] == {PositionStatus.OPEN.value: 3}
    assert got["accounts"] == ["DU111"]
    assert len(got["fills_for"]) == 2 and len(got["sync_runs"]) == 3
    assert got["realized_total"]["USD"].total == D("400") - D("0.4") - D("1")
    assert [r.currency for r in got["exchange_rates"]] == ["EUR"]
    assert [v.tag for v in got["account_values"]] == ["NetLiquidation"]
    assert sum(item.lot.quantity for item in got["open_lots"]) == D(60) + D(5) - D(2)
    assert got["status"].open_positions == 3 and got["status"].revision
    assert got["realized_by_day"].currencies == ("USD",)
    assert got["summary"].account is None
    assert len(got["export_rows"].rows) == len(db.run_sync(repository.all_events))
    assert isinstance(got["lifecycle"], Lifecycle) and got["lifecycle"].id == pid


def test_blocking_reads_are_the_same_reads(any_db: Database, run: Any) -> None:
    """The command line's reader answers exactly as the window's does."""
    reader, writer_ = _doors(any_db)
    run(_fill_ledger(writer_))
    blocking = BlockingLedgerReader(any_db)
    assert repr(blocking.positions(include_closed=True)) == repr(
        run(reader.positions(include_closed=True))
    )
    assert repr(blocking.open_lots()) == repr(run(reader.open_lots()))
    rows = blocking.export_rows(ExportKind.LOTS, None, at(60))
    assert repr(rows) == repr(run(reader.export_rows(ExportKind.LOTS, None, at(60))))
    assert repr(blocking.status(CostBasis.FIFO)) == repr(run(reader.status(CostBasis.FIFO)))


def test_mark_closed_through_the_writer_checks_the_version(any_db: Database, run: Any) -> None:
    """The window's Mark closed goes through the writer, which refuses a lifecycle that moved
    since the user saw it and writes it when it did not."""
    reader, writer_ = _doors(any_db)
    run(_fill_ledger(writer_))
    (msft,) = [p for p in run(reader.positions()) if p.contract.symbol == "MSFT"]
    assert msft.id is not None
    events = run(reader.events(msft.id))
    seen = LifecycleVersion.of(msft, events[-1].id)
    stale = LifecycleVersion.of(msft, None)  # as if shown before its last event

    with pytest.raises(LifecycleChangedError):
        run(writer_.mark_closed(MarkClosedRequest(stale, D("401"), at(20), "")))
    assert run(reader.lifecycle(msft.id)) == msft  # nothing written

    closed = run(writer_.mark_closed(MarkClosedRequest(seen, D("401"), at(20), "sold elsewhere")))
    assert closed.status is PositionStatus.CLOSED
    assert run(reader.lifecycle(msft.id)) == closed
    assert "MSFT" not in {p.contract.symbol for p in run(reader.positions())}


def test_record_run_and_import_statement_through_the_writer(any_db: Database, run: Any) -> None:
    """A run that changed nothing, then an IB statement's fill the syncs never saw (the window's
    import, then the command line's re-import, which finds nothing new)."""
    reader, writer_ = _doors(any_db)
    run(_fill_ledger(writer_))
    outcome = RunOutcome(SyncTrigger.PERIODIC, at(30), at(30), SyncStatus.SKIPPED, "TWS down")
    run_id = run(writer_.record_run(outcome))
    (newest, *_) = run(reader.sync_runs())
    assert newest.id == run_id and newest.status is SyncStatus.SKIPPED

    # A buy of 5 MSFT the syncs never saw (IB's record: no seen_at).
    missed = fill(MSFT, "BOT", "5", "400", commission="1", minutes=1)
    statement = Statement(("flex.xml",), fills=(missed,), contracts={MSFT.con_id: MSFT},
                          accounts=frozenset({"DU111"}))  # fmt: skip
    summary = run(writer_.import_statement(statement, OPTIONS))
    assert summary.new == 1
    msft_key = ("DU111", MSFT.con_id)
    assert [f.exec_id for f in run(reader.fills_for(msft_key))] == [missed.exec_id]

    again = BlockingLedgerWriter(any_db).import_statement(statement, OPTIONS)
    assert again.new == 0 and again.known == 1 and not again.changed


def test_reads_share_the_kept_copy_and_do_not_spoil_it(
    tmp_path: Any, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: after a sync, `positions` hands out the sync's own kept objects (the window's
    fast path), and reading (a snapshot, with query_only switched on and off) leaves the copy
    valid, so the next sync still does not read the ledger again. A statement imported through
    the writer makes the next sync read it."""
    loads: list[int] = []
    original = repository.load_state

    def counting(*args: Any) -> Any:
        loads.append(1)
        return original(*args)

    monkeypatch.setattr(repository, "load_state", counting)
    db = open_database(tmp_path / "ledger.sqlite")
    try:
        reader, writer_ = _doors(db)
        store_kept = reader._kept  # the store's own copy, shared

        async def sync(minute: float) -> None:
            snap = snapshot(pos(AAPL, "100", "150"), pos(MSFT, "5", "400"), minutes=minute)
            await writer_.commit_snapshot(snap, OPTIONS, SyncTrigger.PERIODIC, snap.taken_at)

        run(sync(1))
        run(sync(2))
        shown = run(reader.positions())
        assert store_kept._kept is not None  # made exact by that read, and kept so
        kept = store_kept._kept.positions
        assert shown and all(p is kept[p.key] for p in shown), "the kept objects were not shared"
        again = run(reader.positions())
        assert all(a is b for a, b in zip(again, shown, strict=True)), "read twice"
        for call in _calls(reader, shown[0]).values():
            run(call())
        before = len(loads)
        run(sync(3))
        assert len(loads) == before, "a read made the next sync read the ledger again"

        missed = fill(AAPL, "BOT", "100", "150", commission="1", minutes=0.5)
        run(writer_.import_statement(Statement(("flex.xml",), fills=(missed,)), OPTIONS))
        assert store_kept._kept is None
        run(sync(4))
        assert len(loads) == before + 1
    finally:
        db.close()


def test_no_read_waits_for_another_process_writing(
    ledger_url: str,
    writer: Any,  # noqa: F811 (the fixture imported above)
    run: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Guards against a read of the window, the API or the CLI taking the write lock: while
    another process holds an uncommitted 20,000-position sync, every read of the reader
    answers at once, from the state before it (a read on `Database.run` would wait here for the
    busy timeout, then fail locked)."""
    from app.db import engine as engine_module

    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_S", 1.0)
    db = open_database(ledger_url)
    try:
        reader, writer_ = _doors(db)
        run(_fill_ledger(writer_))
        life = _aapl(db)
        calls = _calls(reader, life)
        assert set(calls) == _public_reads()
        before = {name: repr(run(call())) for name, call in calls.items()}

        process = writer()
        _expect(process, "written")
        if db.is_sqlite:  # the other process really holds the write lock
            with pytest.raises(DatabaseLockedError):
                run(writer_.record_run(RunOutcome(SyncTrigger.PERIODIC, at(40), at(40),
                                                  SyncStatus.SKIPPED, "x")))  # fmt: skip
        slow = {}
        for name, call in calls.items():
            started = time.monotonic()
            value = run(call())
            elapsed = time.monotonic() - started
            if elapsed >= 0.5:
                slow[name] = round(elapsed, 2)
            assert repr(value) == before[name], f"{name} saw the other process's rows"
        blocking = BlockingLedgerReader(db)
        started = time.monotonic()
        blocking.status()
        blocking.positions()
        assert time.monotonic() - started < 0.5, "a blocking read waited"
        assert not slow, f"reads that waited for the writer: {slow}"

        assert process.stdin is not None
        process.stdin.write("\n")
        process.stdin.flush()
        _expect(process, "committed")
        assert len(run(reader.positions())) == 3 + 20_000
    finally:
        db.close()


def test_a_read_refuses_to_write(any_db: Database, run: Any) -> None:
    """The reader's snapshot is read-only: the writer is the only door (a query that wrote
    would fail here, not commit)."""
    reader, _ = _doors(any_db)

    def sneaky(session: Any) -> None:
        repository.account_ids(session, ["DU999"], create=True)

    with pytest.raises(DatabaseError):
        run(any_db.read(sneaky))
    assert run(reader.accounts()) == []
