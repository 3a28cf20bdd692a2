"""Re-deriving one key with 1,000 fills (DESIGN.md "Budgets": ≤ 50 ms).

A real SQLite ledger (Alembic migrations) is built through the app's own sync transaction
(LedgerStore.commit_snapshot): one stock key traded 1,000 times — buys and sells with
commissions, a few commissions that have not arrived yet, the position closed and opened again
now and then — synced every 50 fills, so its history holds the fills and a REPORTED observation
between every 50 of them, as a day-trader's ledger would. Then, per round:

- `refold.fold`: the pure `fold(KeyHistory(...))` of the key's stored history;
- `refold.mark_closed`: the user's Mark closed through its one write door (app.db.manual:
  a USER_CLOSE observation recorded, `repository.load_histories` + `refold` +
  `repository.apply_refold`, one transaction, committed) on a fresh copy of the ledger;
- `refold.commission`: the late commission report of the key's earliest fill stored without one
  arriving with a sync
  (the sync transaction folds the key again from its whole history and rewrites the events
  whose P&L it changes), on a fresh copy of the ledger.

Both writes are timed as the running app does them: the app opens its engine once and keeps it
all day, so every statement a sync or a Mark closed runs was compiled by an earlier one
(SQLAlchemy caches compiled SQL per engine). Each copy is opened on a fresh engine, and the same
action is run once on it first and rolled back (nothing of it stays: the ledger is as copied,
and the timed action starts with no kept state, reading the ledger as any first write of a
store does); only then is the action timed. The same action on a brand-new engine, compiling
its SQL on the way (~10-20 ms more), is timed too, as `….cold` (the first write after the app
starts; no budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session

from app.db import manual, repository
from app.db import store as ledger_store
from app.db.migrate import open_database
from app.db.store import LedgerStore
from app.domain.fold import KeyHistory, fold
from app.domain.manual import LifecycleVersion, MarkClosedRequest
from app.domain.plan import ReconcileOptions
from app.domain.values import BrokerPosition, BrokerSnapshot, Contract, Fill, Side, SyncTrigger
from tests.ib_average import ib_average

ACCOUNT = "DU100001"
CONTRACT = Contract(265598, "AAPL", "STK", "USD", "SMART", "AAPL")
KEY = (ACCOUNT, CONTRACT.con_id)
FILLS_PER_SYNC = 50
START = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)


def make_fills(count: int, seed: int = 15) -> list[Fill]:
    """`count` fills of one long-only stock position: random-walk prices, buys and sells of
    1-200 shares, IB's tiered commission ($0.005 a share, at least $1), about one in 40 without
    its commission report yet, and the position closed out about one fill in 100."""
    rng = random.Random(seed)
    fills: list[Fill] = []
    quantity = 0
    price = Decimal("180.00")
    at = START
    for i in range(count):
        price = max(Decimal("1.00"), price + Decimal(rng.randint(-40, 40)) / 100)
        if quantity == 0 or rng.random() < 0.55:
            side, shares = Side.BOUGHT, rng.randint(1, 200)
        elif rng.random() < 0.02 or quantity <= 5:
            side, shares = Side.SOLD, quantity  # closed out
        else:
            side, shares = Side.SOLD, rng.randint(1, quantity)
        quantity += shares if side is Side.BOUGHT else -shares
        commission = max(Decimal("1.00"), Decimal(shares) * Decimal("0.005")).quantize(
            Decimal("0.0001")
        )
        late = rng.random() < 0.025
        fills.append(
            Fill(
                exec_id=f"0000e0d5.6{i:07d}.01.01",
                account=ACCOUNT,
                contract=CONTRACT,
                side=side,
                shares=Decimal(shares),
                price=price,
                time=at,
                perm_id=1_000_000 + i,
                commission=None if late else commission,
                commission_currency="" if late else "USD",
            )
        )
        # Fills a few minutes apart; syncs fall between them (further than the fold's
        # boundary window from the next fill, as they do between a day's orders).
        at += timedelta(minutes=6) if (i + 1) % FILLS_PER_SYNC else timedelta(minutes=20)
    return fills


def build_ledger(path: Path, fills: list[Fill]) -> None:
    """The ledger the app writes for these fills when it syncs after every FILLS_PER_SYNC."""
    db = open_database(path)
    store = LedgerStore(db)
    try:
        loop = asyncio.new_event_loop()
        try:
            for end in range(FILLS_PER_SYNC, len(fills) + FILLS_PER_SYNC, FILLS_PER_SYNC):
                seen = fills[:end]
                taken_at = seen[-1].time + timedelta(minutes=10)
                quantity, average = ib_average(seen)
                row = BrokerPosition(ACCOUNT, CONTRACT, quantity, average, seen[-1].price)
                snapshot = BrokerSnapshot(
                    taken_at, frozenset({ACCOUNT}), (row,), tuple(fills[end - FILLS_PER_SYNC : end])
                )
                loop.run_until_complete(
                    store.commit_snapshot(
                        snapshot, ReconcileOptions(), SyncTrigger.PERIODIC, taken_at
                    )
                )
        finally:
            loop.close()
    finally:
        db.close()


class _RolledBack(Exception):
    """Ends a warm-up transaction: Database.run_sync rolls back what it wrote."""


def _time_on_copy(
    ledger: Path,
    workdir: Path,
    name: str,
    action: Callable[[LedgerStore], object],
    warm_up: Callable[[Session], object] | None = None,
) -> float:
    """Seconds `action` takes on a fresh copy of the ledger (opening it is not timed). With
    `warm_up` (the same work as `action`, in a session), it runs first on the copy's engine and
    is rolled back: the engine has then compiled the statements, as a running app's has."""
    copy = workdir / f"{name}.db"
    shutil.copyfile(ledger, copy)
    db = open_database(copy)
    try:
        if warm_up is not None:

            def rolled_back(session: Session) -> None:
                warm_up(session)
                raise _RolledBack

            with contextlib.suppress(_RolledBack):
                db.run_sync(rolled_back)
        store = LedgerStore(db)
        started = time.perf_counter()
        action(store)
        return time.perf_counter() - started
    finally:
        db.close()
        copy.unlink()


def run_refold(
    fill_count: int, rounds: int, log: Callable[[str], None] = print
) -> dict[str, list[float]]:
    """Samples of the three figures (seconds) for one key with `fill_count` fills."""
    samples: dict[str, list[float]] = {}
    fills = make_fills(fill_count)
    with tempfile.TemporaryDirectory(prefix="bench-refold-") as tmp:
        workdir = Path(tmp)
        ledger = workdir / "ledger.db"
        started = time.perf_counter()
        build_ledger(ledger, fills)
        db = open_database(ledger)
        try:
            stored = db.run_sync(repository.load_histories, [KEY])[KEY]
            events = db.run_sync(
                lambda s: sum(len(repository.events(s, life.id)) for life in stored.lifecycles)
            )
        finally:
            db.close()
        open_life = next(life for life in stored.lifecycles if life.is_open)
        assert len(stored.fills) == fill_count, "every fill stored"
        log(
            f"  ledger: {len(stored.fills):,} fills, {len(stored.observations)} observations, "
            f"{len(stored.lifecycles)} lifecycles, {events:,} events "
            f"(built in {time.perf_counter() - started:.1f} s)"
        )
        history = KeyHistory(ACCOUNT, CONTRACT, stored.fills, stored.observations)
        last_event = stored.events[open_life.id or 0][-1]  # type: ignore[index]
        version = LifecycleVersion.of(open_life, last_event.id)  # type: ignore[attr-defined]
        request = MarkClosedRequest(
            version, Decimal("190.00"), fills[-1].time + timedelta(hours=1), "benchmark"
        )
        # The earliest fill stored without its commission report: the report arrives now.
        index = next(i for i, f in enumerate(fills) if f.commission is None)
        late = replace(fills[index], commission=Decimal("1.00"), commission_currency="USD")
        quantity, average = ib_average([*fills[:index], late, *fills[index + 1 :]])
        taken_at = fills[-1].time + timedelta(hours=2)
        snapshot = BrokerSnapshot(
            taken_at,
            frozenset({ACCOUNT}),
            (BrokerPosition(ACCOUNT, CONTRACT, quantity, average, fills[-1].price),),
            (late,),
        )

        def mark_closed(store: LedgerStore) -> None:
            closed = store.db.run_sync(manual.mark_closed, request)
            assert not closed.is_open, "the key was folded again and closed"

        def commission(store: LedgerStore) -> None:
            loop = asyncio.new_event_loop()
            try:
                plan, _ = loop.run_until_complete(
                    store.commit_snapshot(
                        snapshot, ReconcileOptions(), SyncTrigger.EXECUTION, taken_at
                    )
                )
            finally:
                loop.close()
            assert plan.changes, "the late commission changed the key's ledger"

        def warm_mark_closed(session: Session) -> None:
            manual.mark_closed(session, request)

        def warm_commission(session: Session) -> None:
            ledger_store._commit(
                session, snapshot, ReconcileOptions(), SyncTrigger.EXECUTION, taken_at
            )

        for i in range(rounds):
            t0 = time.perf_counter()
            folded = fold(history)
            samples.setdefault("refold.fold", []).append(time.perf_counter() - t0)
            assert len(folded.lifecycles) == len(stored.lifecycles)
            for figure, action, warm_up in (
                ("refold.mark_closed", mark_closed, warm_mark_closed),
                ("refold.commission", commission, warm_commission),
            ):
                cold = _time_on_copy(ledger, workdir, "cold", action)
                samples.setdefault(f"{figure}.cold", []).append(cold)
                warm = _time_on_copy(ledger, workdir, "warm", action, warm_up)
                samples.setdefault(figure, []).append(warm)
            log(
                f"  round {i + 1}: fold {samples['refold.fold'][-1] * 1000:.1f} ms, "
                f"Mark closed {_ms(samples, 'refold.mark_closed', -1)}, "
                f"late commission (a sync) {_ms(samples, 'refold.commission', -1)}"
            )
    log(
        "  median: fold "
        f"{statistics.median(samples['refold.fold']) * 1000:.1f} ms, Mark closed "
        f"{_ms(samples, 'refold.mark_closed')}, late commission "
        f"{_ms(samples, 'refold.commission')}"
    )
    return samples


def _ms(samples: dict[str, list[float]], figure: str, index: int | None = None) -> str:
    """A figure's sample (or median) with its cold twin: "41.2 ms (fresh engine 55.0 ms)"."""

    def pick(values: list[float]) -> float:
        return values[index] if index is not None else statistics.median(values)

    warm, cold = pick(samples[figure]), pick(samples[f"{figure}.cold"])
    return f"{warm * 1000:.1f} ms (fresh engine {cold * 1000:.1f} ms)"
