"""The store's kept copy of the OPEN positions never differs from reading the ledger.

`LedgerStore` keeps the OPEN lifecycles a sync leaves (SQLite) so the next sync need not read
20,000 rows back. These tests pin the two halves of that promise: the copy is exactly what a
read would give (values, digits, time zones), and any other write — another connection, a Mark
closed, a failed run, a rolled-back transaction — makes the next sync read the ledger again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db import repository
from app.db import store as store_module
from app.db.database import Database
from app.db.migrate import open_database
from app.db.reader import LedgerReader
from app.db.repository import queries, writes
from app.db.repository.rows import MARKET_NAMES, P
from app.db.store import LedgerStore
from app.domain.manual import mark_closed
from app.domain.plan import LifecycleChange, ReconcileOptions
from app.domain.values import (
    BrokerPosition,
    BrokerSnapshot,
    Contract,
    Fill,
    Lifecycle,
    PositionStatus,
    Side,
    SyncStatus,
    SyncTrigger,
)
from tests.domain.ledger_fixture import AAPL, ES, MSFT, SPY_C, at

ACCOUNTS = ("DU111", "DU222")
CONTRACTS = (AAPL, MSFT, ES, SPY_C, replace(AAPL, con_id=42, sec_type="", symbol="ODD"))

# Digits the database normalises: trailing zeros, exponents, negative zero.
texts = st.sampled_from(
    ["0", "-0", "1", "10", "1.50", "190.5", "190.50", "1E+2", "0.0001", "-3", "2.3500", "7E-7"]
)
amounts = texts.map(Decimal)
maybe = st.one_of(st.none(), amounts, st.just(Decimal("NaN")))


def _run(store: LedgerStore, snap: BrokerSnapshot, minute: float) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            store.commit_snapshot(snap, ReconcileOptions(), SyncTrigger.MANUAL, at(minute))
        )
    finally:
        loop.close()


def _plain(db: Database, snap: BrokerSnapshot, minute: float) -> None:
    db.run_sync(store_module._commit, snap, ReconcileOptions(), SyncTrigger.MANUAL, at(minute))


def _dump(db: Database) -> list[str]:
    """Every row of the ledger's position and event tables as the text SQLite holds."""

    def read(session: Any) -> list[str]:
        connection = session.connection()
        out = []
        for table in ("positions", "position_events", "executions"):
            rows = connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id").all()
            out += [f"{table}: {tuple(r)!r}" for r in rows]
        return out

    return db.run_sync(read)


def _kept(store: LedgerStore) -> dict[Any, Lifecycle] | None:
    """The kept copy as it stands for the ledger (its lazily moved last_synced_at applied)."""
    kept = store._open._kept
    return kept.exact() if kept is not None else None


def _current(store: LedgerStore, db: Database) -> bool:
    """Whether the kept copy would be used by the next sync (nobody wrote since)."""
    kept = store._open._kept
    token = db.run_sync(store_module._token)
    return kept is not None and token is not None and kept.token.same(token)


def _read_back(db: Database, accounts: tuple[str, ...] = ACCOUNTS) -> dict[Any, Lifecycle]:
    snap = BrokerSnapshot(taken_at=at(0), accounts=frozenset(accounts))
    return db.run_sync(repository.load_state, snap).open_positions


def _same(kept: dict[Any, Lifecycle], read: dict[Any, Lifecycle]) -> None:
    assert kept == read
    assert {k: repr(v) for k, v in kept.items()} == {k: repr(v) for k, v in read.items()}


# ---------------------------------------------------------------------------- as_stored
contracts = st.builds(
    Contract,
    con_id=st.integers(1, 10**9),
    symbol=st.sampled_from(["AAPL", "", "123"]),
    sec_type=st.sampled_from(["STK", "OPT", ""]),
    currency=st.sampled_from(["USD", ""]),
    exchange=st.sampled_from(["SMART", ""]),
    local_symbol=st.sampled_from(["AAPL", ""]),
    multiplier=st.sampled_from(["1", "100", "100.0", "1E+2", "0.5"]).map(Decimal),
    expiry=st.sampled_from(["", "20271217"]),
    strike=st.one_of(st.none(), amounts),
    right=st.sampled_from(["", "C"]),
)
zones = st.sampled_from([UTC, UTC, timezone(timedelta(hours=-5))])
moments = st.builds(
    lambda minutes, zone: (at(0) + timedelta(minutes=minutes)).astimezone(zone),
    st.integers(0, 10**6),
    zones,
)


@given(
    contract=contracts,
    quantity=amounts,
    average=amounts,
    extras=st.tuples(maybe, maybe, maybe, maybe, maybe),
    realized=amounts,
    opened=moments,
    synced=st.one_of(st.none(), moments),
    missing=st.one_of(st.none(), moments),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_as_stored_is_what_reading_gives(
    tmp_path_factory: pytest.TempPathFactory,
    contract: Contract,
    quantity: Decimal,
    average: Decimal,
    extras: tuple[Decimal | None, ...],
    realized: Decimal,
    opened: datetime,
    synced: datetime | None,
    missing: datetime | None,
) -> None:
    """A lifecycle written and read back equals as_stored(), down to digits and time zones."""
    finite = [v if v is None or v.is_finite() else None for v in extras]
    life = Lifecycle(
        None, "DU111", contract, quantity, average, PositionStatus.OPEN, opened, finite[0],
        finite[1], finite[2], finite[3], finite[4], realized, None, None, synced, missing,
        "0001.a", None,
    )  # fmt: skip
    db = open_database(tmp_path_factory.mktemp("stored") / "ledger.sqlite")
    try:

        def write(session: Any) -> int:
            ids = repository.account_ids(session, ["DU111"], create=True)
            change = LifecycleChange(None, life, ())
            (new_id,) = writes._write_changes(session, [change], ids, None)
            return new_id

        new_id = db.run_sync(write)
        (read,) = db.run_sync(repository.positions)
        stored = repository.as_stored(life, new_id)
        assert stored == read
        assert repr(stored) == repr(read)
        moved = repository.with_last_synced(read, at(99).astimezone(timezone(timedelta(hours=3))))
        assert repr(moved) == repr(replace(read, last_synced_at=at(99)))

        market = (average, *finite[:4], extras[4] if extras[4] and extras[4].is_finite() else None)

        def update(session: Any, when: datetime) -> None:
            writes._executemany(session, writes._UPDATE_BY_ID, MARKET_NAMES, [(new_id, *market)])
            session.execute(P.update().values(last_synced_at=when))

        for when in (at(120), at(121).astimezone(timezone(timedelta(hours=-2)))):
            expected = repository.with_market(read, *market, when)  # type: ignore[arg-type]
            db.run_sync(update, when)
            (again,) = db.run_sync(repository.positions)
            assert repr(expected) == repr(again)
    finally:
        db.close()


# ---------------------------------------------------------------------------- equivalence
@st.composite
def rows(draw: st.DrawFn) -> tuple[BrokerPosition, ...]:
    out = []
    for account in ACCOUNTS:
        for contract in CONTRACTS:
            if draw(st.integers(0, 3)) == 0:
                continue  # not reported: absence (MISSING) or never held
            quantity = draw(st.sampled_from(["0", "5", "10", "-5", "2.50", "1E+1"]))
            out.append(
                BrokerPosition(
                    account,
                    contract,
                    Decimal(quantity),
                    draw(amounts.filter(lambda v: v > 0)) * contract.multiplier,
                    draw(maybe),
                    draw(maybe),
                    draw(maybe),
                )
            )
    return tuple(out)


fills_of = st.lists(
    st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(CONTRACTS[:4]), st.booleans(),
              st.sampled_from(["1", "5", "2.5"]), st.sampled_from(["100", "190.50"])),
    max_size=3,
)  # fmt: skip

steps = st.lists(
    st.one_of(
        st.tuples(st.just("full"), rows(), fills_of),
        st.tuples(st.just("scoped"), rows(), fills_of),
        st.tuples(st.just("incomplete"), st.just(()), st.just([])),
        st.tuples(st.just("mark"), st.just(()), st.just([])),
        st.tuples(st.just("outside"), st.just(()), st.just([])),
    ),
    min_size=1,
    max_size=8,
)


@given(steps)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_kept_copy_changes_nothing(tmp_path_factory: pytest.TempPathFactory, script: list) -> None:
    """Random syncs, Mark closed, failed runs and outside writes: the ledger kept with the copy
    is byte for byte the ledger written without it, and the copy always equals a fresh read."""
    folder = tmp_path_factory.mktemp("pair")
    cached, plain = open_database(folder / "cached.sqlite"), open_database(folder / "plain.sqlite")
    store = LedgerStore(cached)
    exec_n = 0
    try:
        for minute, (kind, positions, fill_specs) in enumerate(script, start=1):
            fills = []
            for account, contract, buy, shares, price in fill_specs:
                exec_n += 1
                fills.append(
                    Fill(f"0000e0d5.{exec_n:08x}.01.01", account, contract,
                         Side.BOUGHT if buy else Side.SOLD, Decimal(shares), Decimal(price),
                         at(minute - 0.5), commission=Decimal("1.00"))
                )  # fmt: skip
            snap = BrokerSnapshot(
                at(minute), frozenset(ACCOUNTS), positions=positions, fills=tuple(fills)
            )
            if kind == "scoped":
                keys = {p.key for p in positions[:2]} | {("DU222", MSFT.con_id)}
                snap = replace(
                    snap,
                    positions=tuple(p for p in positions if p.key in keys),
                    fills=tuple(f for f in fills if f.key in keys),
                    scope=frozenset(keys),
                )
            if kind == "incomplete":
                snap = replace(snap, incomplete_reason="positionEnd never came")
            if kind in ("full", "scoped", "incomplete"):
                _run(store, snap, minute)
                _plain(plain, snap, minute)
            elif kind == "mark":
                for db in (cached, plain):
                    open_rows = db.run_sync(repository.positions)
                    if open_rows:
                        change = mark_closed(open_rows[0], Decimal("1.5"), at(minute))
                        db.run_sync(repository.apply_manual_change, change)
            else:  # another program edits the file
                for db in (cached, plain):
                    assert db.path is not None
                    other = sqlite3.connect(db.path)
                    other.execute("UPDATE positions SET quantity = '77' WHERE id = 1")
                    other.commit()
                    other.close()
            assert _dump(cached) == _dump(plain)
            kept = _kept(store)
            if kept is not None and _current(store, cached):
                _same(kept, _read_back(cached))
            _window_read_is_a_fresh_read(store, cached)
    finally:
        cached.close()
        plain.close()


def test_last_synced_moves_without_rebuilding_and_is_written_exactly(tmp_path: Any) -> None:
    """Quiet syncs move last_synced_at without rebuilding the kept lifecycles; a lifecycle
    then marked missing or closed is written with the stored last_synced_at all the same."""
    cached = open_database(tmp_path / "cached.sqlite")
    plain = open_database(tmp_path / "plain.sqlite")
    store = LedgerStore(cached)

    def rows(aapl: str) -> tuple[BrokerPosition, ...]:
        return (
            BrokerPosition("DU111", AAPL, Decimal(aapl), Decimal(190), Decimal("191.5")),
            BrokerPosition("DU111", MSFT, Decimal(5), Decimal(400)),
        )

    one = frozenset({"DU111"})
    script = [
        BrokerSnapshot(at(1), one, positions=rows("10")),
        BrokerSnapshot(at(2), one, positions=rows("10")),  # read once, kept from here on
        BrokerSnapshot(at(3), one, positions=rows("10")),  # quiet: nothing rebuilt
        BrokerSnapshot(at(4), one, positions=rows("10")[1:]),  # AAPL missing
        BrokerSnapshot(at(5), one, positions=rows("0")),  # AAPL closed (an explicit zero)
    ]
    try:
        for minute, snap in enumerate(script, start=1):
            before = dict(store._open._kept.positions) if store._open._kept else {}
            _run(store, snap, minute)
            _plain(plain, snap, minute)
            assert _dump(cached) == _dump(plain), f"after sync {minute}"
            _same(_kept(store) or {}, _read_back(cached, ("DU111",)))
            if minute == 3:
                kept = store._open._kept
                assert kept is not None and kept.synced
                assert all(kept.positions[k] is life for k, life in before.items())
    finally:
        cached.close()
        plain.close()


# ---------------------------------------------------------------------------- the window's read
def _store_positions(store: LedgerStore, include_closed: bool) -> list[Lifecycle]:
    loop = asyncio.new_event_loop()
    try:
        # The window's read: the ledger reader over the store's kept copy (as app.runtime wires).
        reader = LedgerReader(store.db, store.kept)
        return loop.run_until_complete(reader.positions(include_closed=include_closed))
    finally:
        loop.close()


def _window_read_is_a_fresh_read(store: LedgerStore, db: Database) -> None:
    """LedgerReader.positions gives exactly what repository.positions reads, in its order."""
    for include_closed in (False, True):
        shared = _store_positions(store, include_closed)
        read = db.run_sync(repository.positions, include_closed=include_closed)
        assert [repr(p) for p in shared] == [repr(p) for p in read]


def _legacy_copy(db: Database, position_id: int) -> None:
    """A copy of a row without a conId, as the seed's rows were (keyed by symbol)."""

    def write(session: Any) -> None:
        connection = session.connection()
        names = [r[1] for r in connection.exec_driver_sql("PRAGMA table_info(positions)")]
        columns = ", ".join(n for n in names if n != "id")
        picked = ", ".join("NULL" if n == "con_id" else n for n in names if n != "id")
        connection.exec_driver_sql(
            f"INSERT INTO positions ({columns}) SELECT {picked} FROM positions "
            f"WHERE id = {position_id}"
        )

    db.run_sync(write)


def test_the_window_shares_the_kept_rows_and_reads_the_rest(db: Database) -> None:
    both = frozenset(ACCOUNTS)
    rows = (
        BrokerPosition("DU111", AAPL, Decimal(10), Decimal(190), Decimal("191.5")),
        BrokerPosition("DU111", MSFT, Decimal(5), Decimal(400)),
        BrokerPosition("DU222", ES, Decimal(2), Decimal(250_000)),
    )
    _run(LedgerStore(db), BrokerSnapshot(at(1), both, positions=rows), 1)
    _legacy_copy(db, 1)  # an OPEN row with no conId in a kept account
    # A store that has only ever synced DU111 keeps only DU111's rows; AAPL closes (an
    # explicit zero).
    store = LedgerStore(db)
    closed = BrokerPosition("DU111", AAPL, Decimal(0), Decimal(0))
    only_111 = BrokerSnapshot(at(2), frozenset({"DU111"}), positions=(closed, rows[1]))
    _run(store, only_111, 2)
    _run(store, replace(only_111, taken_at=at(3)), 3)  # the kept copy is in use now
    assert _current(store, db)
    assert set(_kept(store) or {}) == {("DU111", MSFT.con_id)}

    _window_read_is_a_fresh_read(store, db)
    every = _store_positions(store, include_closed=True)
    kept = store._open._kept.positions if store._open._kept is not None else {}
    assert {(p.account, p.contract.symbol, p.status) for p in every} == {
        ("DU111", "AAPL", PositionStatus.CLOSED),
        ("DU111", "AAPL", PositionStatus.OPEN),  # the legacy row, read from the ledger
        ("DU111", "MSFT", PositionStatus.OPEN),
        ("DU222", "ES", PositionStatus.OPEN),  # another account's, read from the ledger
    }
    shared = [p for p in every if p.key == ("DU111", MSFT.con_id)]
    assert shared == [kept[("DU111", MSFT.con_id)]] and shared[0] is kept[shared[0].key]

    # Once somebody else writes, the window reads everything again (nothing stale shown).
    assert db.path is not None
    other = sqlite3.connect(db.path)
    other.execute("UPDATE positions SET quantity = '7' WHERE con_id = ?", (MSFT.con_id,))
    other.commit()
    other.close()
    fresh = [p for p in _store_positions(store, False) if p.key == ("DU111", MSFT.con_id)]
    assert fresh[0].quantity == Decimal(7) and fresh[0] is not kept[fresh[0].key]


# ---------------------------------------------------------------------------- invalidation
@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a sync read the ledger's positions."""
    reads: list[int] = []
    original = queries.load_state

    def counting(*args: Any) -> Any:
        reads.append(1)
        return original(*args)

    monkeypatch.setattr(queries, "load_state", counting)
    return reads


def _snap(minute: float, quantity: str = "10") -> BrokerSnapshot:
    rows = (
        BrokerPosition("DU111", AAPL, Decimal(quantity), Decimal(190), Decimal("191.5")),
        BrokerPosition("DU111", MSFT, Decimal(5), Decimal(400)),
    )
    return BrokerSnapshot(at(minute), frozenset({"DU111"}), positions=rows)


def _synced(db: Database, counted: list[int], *outside: Callable[[], None]) -> list[int]:
    """Reads per sync: one sync, then after each write another."""
    store = LedgerStore(db)
    per_sync = []
    for minute, write in enumerate([lambda: None, lambda: None, *outside], start=1):
        write()
        before = len(counted)
        _run(store, _snap(minute, quantity=str(10 + minute)), minute)
        per_sync.append(len(counted) - before)
        _same(_kept(store) or {}, _read_back(db, ("DU111",)))
    return per_sync


def test_syncs_in_a_row_read_once(db: Database, counted: list[int]) -> None:
    assert _synced(db, counted) == [1, 0]


def test_another_connection_committing_forces_a_read(db: Database, counted: list[int]) -> None:
    def outside() -> None:
        assert db.path is not None
        other = sqlite3.connect(db.path)
        other.execute("UPDATE positions SET market_value = '1' WHERE id = 2")
        other.commit()
        other.close()

    assert _synced(db, counted, outside) == [1, 0, 1]


def test_mark_closed_and_failed_runs_force_a_read(db: Database, counted: list[int]) -> None:
    def marked() -> None:
        (msft,) = [p for p in db.run_sync(repository.positions) if p.key[1] == MSFT.con_id]
        db.run_sync(repository.apply_manual_change, mark_closed(msft, Decimal(401), at(30)))

    def failed() -> None:
        from app.domain.records import RunOutcome

        outcome = RunOutcome(SyncTrigger.PERIODIC, at(31), at(31), SyncStatus.SKIPPED, "down")
        db.run_sync(repository.record_run, outcome)

    assert _synced(db, counted, marked, failed) == [1, 0, 1, 1]


def test_rolled_back_write_forces_a_read(db: Database, counted: list[int]) -> None:
    def rolled_back() -> None:
        def write_then_fail(session: Any) -> None:
            session.connection().exec_driver_sql("UPDATE positions SET symbol = 'X' WHERE id = 1")
            raise RuntimeError("crash after a write")

        with pytest.raises(RuntimeError):
            db.run_sync(write_then_fail)

    assert _synced(db, counted, rolled_back) == [1, 0, 1]


def test_failed_commit_keeps_nothing(db: Database, counted: list[int], monkeypatch: Any) -> None:
    """A sync whose transaction fails leaves no copy behind that claims its writes."""
    store = LedgerStore(db)
    _run(store, _snap(1), 1)
    kept_before = store._open._kept
    original = writes.apply_plan

    def failing(*args: Any) -> Any:
        original(*args)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(writes, "apply_plan", failing)
    with pytest.raises(Exception, match="disk I/O"):
        _run(store, _snap(2, quantity="99"), 2)
    assert store._open._kept is kept_before
    monkeypatch.setattr(writes, "apply_plan", original)
    before = len(counted)
    _run(store, _snap(3, quantity="12"), 3)
    assert len(counted) - before == 1
    _same(_kept(store) or {}, _read_back(db, ("DU111",)))


# ------------------------------------------------------------------ the window's read, kept
def test_a_window_read_becomes_the_kept_copy(db: Database, counted: list[int]) -> None:
    """Nothing kept (a new process, or a first sync of thousands of positions): the window's
    read becomes the copy, with the window's own objects, and the next sync reads nothing.

    Guards the window's peak memory: the sync after a first sync read a second copy of every
    lifecycle (~50 MB at 20,000 positions) while the window still held its own."""
    both = frozenset(ACCOUNTS)
    rows = (
        BrokerPosition("DU111", AAPL, Decimal(10), Decimal(190), Decimal("191.5")),
        BrokerPosition("DU111", MSFT, Decimal(5), Decimal(400)),
        BrokerPosition("DU222", ES, Decimal(2), Decimal(250_000)),
    )
    _plain(db, BrokerSnapshot(at(1), both, positions=rows), 1)  # another process's sync
    _legacy_copy(db, 1)  # an OPEN row without a conId: load_state skips it
    closed = BrokerPosition("DU111", AAPL, Decimal(0), Decimal(0))
    _plain(db, BrokerSnapshot(at(2), both, positions=(closed, *rows[1:])), 2)  # AAPL closed
    store = LedgerStore(db)
    assert store._open._kept is None

    every = _store_positions(store, include_closed=True)
    assert _current(store, db)
    kept = store._open._kept.positions if store._open._kept is not None else {}
    _same(kept, _read_back(db))
    assert set(kept) == {("DU111", MSFT.con_id), ("DU222", ES.con_id)}
    assert all(any(life is p for p in every) for life in kept.values())

    before = len(counted)
    moved = (rows[1], replace(rows[2], market_price=Decimal(5001)))
    _run(store, BrokerSnapshot(at(3), both, positions=moved), 3)
    assert len(counted) == before  # the sync used the window's copy
    _same(_kept(store) or {}, _read_back(db))
    _window_read_is_a_fresh_read(store, db)

    # Another program writes: the next window read is a fresh read, and kept in turn.
    assert db.path is not None
    other = sqlite3.connect(db.path)
    other.execute("UPDATE positions SET quantity = '7' WHERE con_id = ?", (MSFT.con_id,))
    other.commit()
    other.close()
    assert not _current(store, db)
    fresh = [p for p in _store_positions(store, False) if p.key == ("DU111", MSFT.con_id)]
    assert fresh[0].quantity == Decimal(7)
    assert _current(store, db)
    _same(_kept(store) or {}, _read_back(db))
    before = len(counted)
    _run(store, BrokerSnapshot(at(4), both, positions=moved), 4)
    assert len(counted) == before
    _same(_kept(store) or {}, _read_back(db))


def test_a_reader_without_a_store_keeps_nothing(db: Database) -> None:
    """The command line's reader (no sync in its process) reads the ledger and keeps nothing."""
    rows = (BrokerPosition("DU111", MSFT, Decimal(5), Decimal(400)),)
    _plain(db, BrokerSnapshot(at(1), frozenset({"DU111"}), positions=rows), 1)
    loop = asyncio.new_event_loop()
    try:
        read = loop.run_until_complete(LedgerReader(db).positions())
    finally:
        loop.close()
    assert [p.key for p in read] == [("DU111", MSFT.con_id)]
