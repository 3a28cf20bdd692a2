"""A shared PostgreSQL ledger: URLs, refusals, several writers, roles and secrets (issue 9).

The suites that run on both engines (repository, migrations, sync) show the ledger behaves the
same on PostgreSQL; these tests cover what only a server has: other processes writing at the
same time, other databases' tables, roles and passwords.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from app.cli.exit_codes import ExitCode
from app.cli.main import main
from app.db import concurrency, engine, repository, store
from app.db.database import Database
from app.db.engine import describe, to_url
from app.db.errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseNotLedgerError,
    DatabaseReadOnlyError,
    DatabaseTooNewError,
    DatabaseUnreachableError,
)
from app.db.migrate import current, head_revision, open_database, upgrade
from app.db.repository import queries
from app.db.store import LedgerStore
from app.domain.manual import mark_closed
from app.domain.plan import ReconcileOptions
from app.domain.values import BrokerSnapshot, EventKind, PositionStatus, SyncStatus, SyncTrigger
from tests.db.conftest import execute, query
from tests.domain.ledger_fixture import AAPL, MSFT, D, at, fill, pos, snapshot
from tests.engines import PgServer

OPTIONS = ReconcileOptions()
MANUAL = SyncTrigger.MANUAL


def commit(db: Database, snap: BrokerSnapshot, started_minutes: float | None = None) -> Any:
    """LedgerStore.commit_snapshot from a thread without a loop; the run started 1 min before."""
    started = at(started_minutes) if started_minutes is not None else snap.taken_at - MINUTE
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(
            LedgerStore(db).commit_snapshot(snap, OPTIONS, MANUAL, started)
        )
    finally:
        loop.close()


MINUTE = timedelta(minutes=1)


def in_threads(*calls: Callable[[], Any], timeout: float = 30) -> list[Any]:
    """Run each call in its own thread at once; their results (or raised exceptions)."""
    results: list[Any] = [None] * len(calls)

    def runner(index: int, call: Callable[[], Any]) -> None:
        try:
            results[index] = call()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=runner, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a writer hung"
    return results


@pytest.fixture
def two(pg_url: str) -> Iterator[tuple[Database, Database]]:
    """Two Databases (two connections, as two workstations) on one PostgreSQL ledger."""
    first = open_database(pg_url)
    second = open_database(pg_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def open_rows(db: Database) -> list[Any]:
    return [p for p in db.run_sync(repository.positions) if p.status is PositionStatus.OPEN]


# ---------------------------------------------------------------------------- URLs
def test_postgresql_urls_use_psycopg_3() -> None:
    """`postgresql://` means psycopg 3 (the driver shipped), not SQLAlchemy's psycopg2 default."""
    assert to_url("postgresql://desk@db.example/ledger").drivername == "postgresql+psycopg"
    url = "postgresql+psycopg://desk@db.example/ledger?sslmode=verify-full"
    assert to_url(url).query["sslmode"] == "verify-full"
    with pytest.raises(DatabaseError, match="unsupported database"):
        to_url("mysql://desk:s3cret-pw@db.example/ledger")


def test_describe_hides_passwords_in_user_info_and_query() -> None:
    """Guards against a password reaching a log line, an error message or `status` output."""
    for url in (
        "postgresql+psycopg://desk:s3cret-pw@db.example:5433/ledger",
        "postgresql+psycopg://desk@db.example/ledger?password=s3cret-pw&sslmode=require",
        "postgresql+psycopg://desk@db.example/ledger?sslpassword=s3cret-pw",
    ):
        shown = describe(to_url(url))
        assert "s3cret-pw" not in shown and "***" in shown and "db.example" in shown
    with pytest.raises(DatabaseError) as error:
        to_url("mysql://desk:s3cret-pw@db.example/ledger")
    assert "s3cret-pw" not in str(error.value)


# ---------------------------------------------------------------------------- refusals
def test_too_new_server_database_is_refused_untouched(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Guards against migrating (or stamping) a shared ledger a newer version already upgraded."""
    upgrade(pg_url)
    execute(pg_url, "UPDATE alembic_version SET version_num = '9999'")
    tables = query(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")

    with pytest.raises(DatabaseTooNewError) as error:
        open_database(pg_url)
    assert "'9999'" in str(error.value) and head_revision() in str(error.value)

    assert main(["status", "--db", pg_url]) == ExitCode.DATABASE  # exit 4
    assert "9999" in capsys.readouterr().err
    assert current(pg_url) == "9999"
    assert query(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == tables


def test_another_applications_database_is_refused(pg_url: str) -> None:
    """Guards against creating the ledger's tables inside some other application's database."""
    execute(pg_url, "CREATE TABLE photos (id integer PRIMARY KEY, name text)")
    with pytest.raises(DatabaseNotLedgerError, match="photos"):
        open_database(pg_url)
    assert query(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == [
        ("photos",)
    ]


def test_backup_is_left_to_pg_dump(pg_url: str) -> None:
    """No fake backup of a server database: `db backup` says to use pg_dump."""
    upgrade(pg_url)
    assert main(["db", "backup", "--db", pg_url]) == ExitCode.DATABASE


def test_two_workstations_upgrading_at_once(pg_url: str) -> None:
    """Guards against the second of two starting workstations failing on half-made tables."""
    results = in_threads(lambda: upgrade(pg_url), lambda: upgrade(pg_url))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(r.changed for r in results) == [False, True]
    assert current(pg_url) == head_revision()


# ---------------------------------------------------------------------------- several writers
def test_concurrent_syncs_of_one_account_serialise(two: tuple[Database, Database]) -> None:
    """Guards against two syncers each opening the same lifecycle and storing the same fill."""
    first, second = two
    buy = fill(AAPL, "BOT", "100", "150", minutes=1)
    snap = snapshot(pos(AAPL, "100", "150"), fills=(buy,), minutes=2)

    results = in_threads(lambda: commit(first, snap), lambda: commit(second, snap))
    assert not [r for r in results if isinstance(r, BaseException)], results

    (row,) = open_rows(first)
    assert [e.kind for e in first.run_sync(repository.events, row.id)] == [EventKind.OPENED]
    assert [f.exec_id for f in first.run_sync(repository.fills_for, row.key)] == [buy.exec_id]
    runs = first.run_sync(repository.sync_runs)
    # The second waited for the first's locks, then found a snapshot at least as new committed.
    assert sorted(r.status.value for r in runs) == ["ok", "skipped"]
    assert next(r for r in runs if r.status is SyncStatus.SKIPPED).error.startswith("superseded")


def test_a_second_writer_waits_while_readers_do_not(two: tuple[Database, Database]) -> None:
    """The account lock holds a writer of the same account back; viewers read committed rows."""
    first, second = two
    commit(first, snapshot(pos(AAPL, "100", "150"), minutes=1))
    holding, release = threading.Event(), threading.Event()

    def hold(session: Any) -> None:
        concurrency.lock_accounts(session, ["DU111"])
        holding.set()
        assert release.wait(10)

    def viewer() -> list[Any]:
        return second.run_sync(repository.positions)

    holder = threading.Thread(target=first.run_sync, args=(hold,))
    holder.start()
    try:
        assert holding.wait(10)
        writer: list[Any] = []
        thread = threading.Thread(
            target=lambda: writer.append(
                commit(second, snapshot(pos(AAPL, "60", "150"), minutes=3))
            )
        )
        started = time.monotonic()
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive(), "the second writer did not wait for the account lock"
        # A viewer of the same database is not blocked by the lock.
        viewer_db = open_database(first.url.render_as_string(hide_password=False))
        try:
            assert [p.quantity for p in viewer_db.run_sync(repository.positions)] == [100]
        finally:
            viewer_db.close()
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join(10)
    thread.join(10)
    assert not thread.is_alive()
    assert [p.quantity for p in viewer()] == [60]


def test_a_writer_stuck_holding_a_lock_does_not_stall_the_desk(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards against a hung syncer (inside its transaction) blocking every other one forever."""
    monkeypatch.setattr(engine, "PG_LOCK_TIMEOUT", "200ms")
    first, second = open_database(pg_url), open_database(pg_url)
    holding, release = threading.Event(), threading.Event()

    def hang(session: Any) -> None:
        concurrency.lock_accounts(session, ["DU111"])
        holding.set()
        assert release.wait(10)

    holder = threading.Thread(target=first.run_sync, args=(hang,))
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(DatabaseLockedError, match="busy"):
            commit(second, snapshot(pos(AAPL, "100", "150"), minutes=1))
    finally:
        release.set()
        holder.join(10)
        first.close()
        second.close()


def test_viewers_see_committed_state_only(two: tuple[Database, Database]) -> None:
    """Guards against a viewer showing a sync's rows before (or without) its commit."""
    writer, viewer = two
    seen_during: list[int] = []

    def sync_then_look(session: Any) -> None:
        store._commit(session, snapshot(pos(AAPL, "100", "150"), minutes=2), OPTIONS, MANUAL, at(1))
        seen_during.append(len(viewer.run_sync(repository.positions)))

    writer.run_sync(sync_then_look)
    assert seen_during == [0]
    assert len(viewer.run_sync(repository.positions)) == 1

    def sync_then_fail(session: Any) -> None:
        store._commit(session, snapshot(pos(MSFT, "5", "400"), minutes=4), OPTIONS, MANUAL, at(3))
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        writer.run_sync(sync_then_fail)
    assert [p.contract for p in viewer.run_sync(repository.positions)] == [AAPL]


def test_unique_indexes_are_the_last_line_and_the_loser_retries(
    two: tuple[Database, Database],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without the locks, the one-OPEN-row and execId indexes stop the duplicate; a retry heals.

    Both transactions read the empty ledger (a barrier makes sure), both insert; the second
    insert waits for the first commit, then violates a unique index, rolls back and runs again.
    """
    first, second = two
    monkeypatch.setattr(concurrency, "lock_accounts", lambda session, codes: None)
    monkeypatch.setattr(concurrency, "superseded", lambda session, codes, started_at: None)
    barrier = threading.Barrier(2, timeout=10)
    load_state = queries.load_state
    calls = 0

    def both_read_first(session: Any, snap: BrokerSnapshot) -> Any:
        nonlocal calls
        calls += 1
        state = load_state(session, snap)
        if calls <= 2:
            barrier.wait()
        return state

    monkeypatch.setattr(queries, "load_state", both_read_first)
    buy = fill(AAPL, "BOT", "100", "150", minutes=1)
    snap = snapshot(pos(AAPL, "100", "150"), fills=(buy,), minutes=2)
    caplog.set_level(logging.WARNING, logger="app.db.store")

    results = in_threads(lambda: commit(first, snap), lambda: commit(second, snap))

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert "collided with another writer" in caplog.text and "DU111" not in caplog.text
    (row,) = open_rows(first)
    assert [e.kind for e in first.run_sync(repository.events, row.id)] == [EventKind.OPENED]
    assert len(first.run_sync(repository.fills_for, row.key)) == 1
    assert [r.status for r in first.run_sync(repository.sync_runs)] == [SyncStatus.OK] * 2


def test_an_older_snapshot_never_undoes_a_newer_one(any_db: Database) -> None:
    """Guards against a fill undone then re-realized at market (double P&L) by a late snapshot.

    Syncer B took its snapshot after the sale and committed first; syncer A's snapshot, begun
    before the sale, reaches the ledger last. On PostgreSQL it is superseded (a `skipped` run);
    SQLite has one syncer per file and applies every snapshot in commit order.
    """
    commit(any_db, snapshot(pos(AAPL, "100", "150"), minutes=1))
    sale = fill(AAPL, "SLD", "40", "160", minutes=3, commission="1")
    commit(any_db, snapshot(pos(AAPL, "60", "150"), fills=(sale,), minutes=5), started_minutes=4)
    if not any_db.is_sqlite:
        plan, _ = commit(any_db, snapshot(pos(AAPL, "100", "150"), minutes=4.5), started_minutes=2)
        assert plan.superseded and plan.is_empty
        last = any_db.run_sync(repository.sync_runs)[0]
        assert last.status is SyncStatus.SKIPPED and last.error.startswith("superseded")
    (row,) = open_rows(any_db)
    assert row.quantity == 60 and row.realized_pnl == D("399")
    # A snapshot begun after the newest committed one applies as usual.
    plan, _ = commit(any_db, snapshot(pos(AAPL, "50", "150"), minutes=8), started_minutes=6)
    assert not plan.superseded and plan.updated == 1


def test_mark_closed_racing_a_sync_closes_once(two: tuple[Database, Database]) -> None:
    """Guards against a Mark closed and a sync's sale closing one position twice.

    The sale (minute 2) happened before the trader's Mark closed (minute 3), so in either commit
    order the ledger ends as the fold of that history: closed once, by the sale, at its price.
    The Mark closed either loses the race (its version check refuses a changed row) or lands
    first and is re-derived away when the earlier sale arrives — never a second close."""
    first, second = two
    commit(first, snapshot(pos(AAPL, "100", "150"), minutes=1))
    (row,) = open_rows(first)
    change = mark_closed(row, D("155"), at(3), "closed at another broker")
    sale = fill(AAPL, "SLD", "100", "160", minutes=2, commission="1")
    results = in_threads(
        lambda: commit(second, snapshot(fills=(sale,), minutes=3)),
        lambda: first.run_sync(repository.apply_manual_change, change),
    )
    assert not [r for r in results if isinstance(r, BaseException) and r is not results[1]]
    assert results[1] is None or isinstance(results[1], ValueError)
    closes = [
        (e.kind, e.price)
        for e in first.run_sync(repository.events, row.id)
        if e.kind in (EventKind.CLOSED, EventKind.MARKED_CLOSED)
    ]
    assert closes == [(EventKind.CLOSED, D("160"))]
    closed = first.run_sync(repository.position, row.id)
    assert closed is not None and closed.status is PositionStatus.CLOSED
    assert closed.realized_pnl == D("999")  # (160 − 150) × 100 − 1 commission, in either order


# ---------------------------------------------------------------------------- roles and secrets
@pytest.fixture
def desk_roles(pg_server: PgServer) -> Iterator[dict[str, str]]:
    """The README's setup: an owner role (migrations) and a desk login role (DML only)."""
    tag = uuid.uuid4().hex[:8]
    names = {"owner": f"ps_owner_{tag}", "desk": f"ps_desk_{tag}", "db": f"ps_ledger_{tag}"}
    secrets = {"owner_pw": uuid.uuid4().hex, "desk_pw": uuid.uuid4().hex}
    admin = pg_server.admin_url.username
    try:
        pg_server.execute(f"CREATE ROLE {names['owner']} LOGIN PASSWORD '{secrets['owner_pw']}'")
    except sa.exc.ProgrammingError as exc:  # a developer's server role without CREATEROLE
        pytest.skip(f"the test role may not create roles: {type(exc).__name__}")
    pg_server.execute(f"CREATE ROLE {names['desk']} LOGIN PASSWORD '{secrets['desk_pw']}'")
    pg_server.execute(f"GRANT {names['owner']} TO {admin}")
    pg_server.execute(f"CREATE DATABASE {names['db']} OWNER {names['owner']}")
    owner_url = make_url(pg_server.url(names["db"])).set(
        username=names["owner"], password=secrets["owner_pw"]
    )
    desk_url = owner_url.set(username=names["desk"], password=secrets["desk_pw"])
    try:
        # README, "A desk on one PostgreSQL database": run once as the owner, in the database.
        execute(
            owner_url.render_as_string(hide_password=False),
            f"REVOKE ALL ON DATABASE {names['db']} FROM PUBLIC",
            f"GRANT CONNECT ON DATABASE {names['db']} TO {names['desk']}",
            f"GRANT USAGE ON SCHEMA public TO {names['desk']}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {names['desk']}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"GRANT USAGE ON SEQUENCES TO {names['desk']}",
        )
        yield {
            **names,
            **secrets,
            "owner_url": owner_url.render_as_string(hide_password=False),
            "desk_url": desk_url.render_as_string(hide_password=False),
        }
    finally:
        pg_server.drop_database(pg_server.url(names["db"]))
        pg_server.execute(f"DROP ROLE IF EXISTS {names['desk']}")
        pg_server.execute(f"DROP ROLE IF EXISTS {names['owner']}")


def test_least_privilege_desk_role(desk_roles: dict[str, str]) -> None:
    """The README's roles work: the owner migrates, the desk role syncs but cannot migrate."""
    with pytest.raises(DatabaseReadOnlyError, match="owner role"):
        open_database(desk_roles["desk_url"])  # creating tables needs the owner
    assert upgrade(desk_roles["owner_url"]).after == head_revision()

    desk = open_database(desk_roles["desk_url"])
    try:
        commit(desk, snapshot(pos(AAPL, "100", "150"), pos(MSFT, "1", "400"), minutes=1))
        first = fill(AAPL, "SLD", "40", "160", minutes=2, exec_id="0000e0d5.0aa.01.01")
        commit(desk, snapshot(pos(AAPL, "60", "150"), pos(MSFT, "1", "400"), fills=(first,)))
        fixed = fill(AAPL, "SLD", "40", "160.5", minutes=2, exec_id="0000e0d5.0aa.01.02")
        snap = snapshot(pos(AAPL, "60", "150"), pos(MSFT, "1", "400"), fills=(first, fixed))
        commit(desk, snap, started_minutes=5.5)  # a correction deletes the replaced fill
        msft = next(p for p in open_rows(desk) if p.contract == MSFT)
        desk.run_sync(repository.apply_manual_change, mark_closed(msft, D("410"), at(7), ""))
        assert [p.contract for p in open_rows(desk)] == [AAPL]
        with pytest.raises(DatabaseReadOnlyError, match="privilege"):
            desk.run_sync(lambda session: session.execute(sa.text("DROP TABLE executions")))
    finally:
        desk.close()


def test_password_file_instead_of_a_password_in_the_url(
    desk_roles: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's advice works: no password in the URL, libpq reads PGPASSFILE."""
    upgrade(desk_roles["owner_url"])
    url = make_url(desk_roles["desk_url"])
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{url.host}:{url.port}:{url.database}:{url.username}:{url.password}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    without = URL.create(
        url.drivername, username=url.username, host=url.host, port=url.port, database=url.database
    ).render_as_string(hide_password=False)
    assert desk_roles["desk_pw"] not in without
    with open_database(without) as desk:
        assert desk.run_sync(repository.positions) == []


def test_password_never_in_logs_or_messages(
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guards against the database password leaking into logs, errors or command output."""
    password = make_url(pg_url).password
    assert password
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # SQL echo, as with -v -v
    try:
        assert main(["db", "upgrade", "--db", pg_url, "-v", "-v"]) == ExitCode.OK
        with open_database(pg_url) as db:
            commit(db, snapshot(pos(AAPL, "100", "150"), minutes=1))
            assert password not in repr(db) and password not in db.location
        assert main(["status", "--json", "--db", pg_url]) == ExitCode.OK
        assert main(["positions", "--db", pg_url]) == ExitCode.OK
        assert main(["db", "current", "--db", pg_url]) == ExitCode.OK
        failures: list[BaseException] = []
        url = make_url(pg_url)
        for broken in (
            url.set(password="wrong-" + password),  # a wrong password
            url.set(database="no_such_ledger"),  # a database that does not exist
            url.set(port=1),  # nothing listens there
        ):
            text = broken.render_as_string(hide_password=False)
            with pytest.raises(DatabaseError) as error:
                open_database(text)
            assert isinstance(error.value, DatabaseUnreachableError), error.value
            failures.append(error.value)
            assert main(["status", "--db", text]) == ExitCode.DATABASE
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.NOTSET)
    output = capsys.readouterr()
    shown = [output.out, output.err, caplog.text, *map(str, failures)]
    assert "***" in output.out + output.err  # databases are named, passwords masked
    for text in shown:
        assert password not in text
