"""Our figures for one size: full syncs, the single-update path, and the headless command.

Everything runs against the simulator in its own process (tests.bench.gateway) and a real SQLite
file on disk, with the app's own classes wired as app.runtime wires them (IbBroker, LedgerStore,
PositionSyncService), on a plain asyncio loop.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.broker.adapter import IbBroker
from app.db.database import Database
from app.db.migrate import open_database
from app.db.store import LedgerStore
from app.domain.connection import ConnectionState
from app.domain.values import BrokerSnapshot, SyncTrigger
from app.runtime import heap_friendly_gc
from app.sync.results import SyncResult
from app.sync.service import PositionSyncService, SyncOptions
from tests.bench.floors import SqliteFloor, ib_process, ib_snapshot, timed_process
from tests.bench.gateway import REPO, Gateway
from tests.bench.probe import Probe

BROKER_CLIENT_ID = 100  # plus the round: a new connection per round
FLOOR_CLIENT_ID = 12
CLI_CLIENT_ID = 13
RESTART_CLIENT_ID = 20
DEBOUNCE = 0.05  # the single-update figure is measured from the debounce firing


@dataclass
class Samples:
    """Every sample of every figure of one size, in seconds (MB for memory)."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)


@dataclass
class _Sync:
    total: float
    own: float
    transaction: float
    reconcile: float
    load: float
    apply: float
    hooks: float
    result: SyncResult


class Bench:
    """One size: a gateway, one connected broker, a fresh ledger file per round."""

    def __init__(self, size: int, workdir: Path, log: Callable[[str], None] = print) -> None:
        self.size = size
        self.workdir = workdir
        self.log = log
        self.samples = Samples()
        self.probe = Probe()
        self.captured: BrokerSnapshot | None = None

    # ------------------------------------------------------------------ entry point
    def run(self, rounds: int, updates: int, cli: bool) -> Samples:
        # The process settings every Runtime applies (the app's own syncs run under them).
        with Gateway(f"scale-{self.size}") as gateway, heap_friendly_gc():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)  # ib_insync reads the policy's loop (STYLE.md traps)
            try:
                loop.run_until_complete(self._in_process(gateway, rounds, updates))
            finally:
                _close_loop(loop)
            if cli:
                for number in range(rounds):
                    self._headless(gateway, number)
        return self.samples

    async def _in_process(self, gateway: Gateway, rounds: int, updates: int) -> None:
        self.probe.install_ledger()
        try:
            for number in range(rounds):
                # Every round starts as a fresh start of the app would: the last round's files
                # gone and its connection's and ledger's objects collected (left for a
                # whole-heap collection, they made each round slower than the one before).
                _remove_files(self.workdir)
                gc.collect()
                # A new connection per round, as when the app starts: its first sync decodes
                # every row afresh (the same connection would hand out rows decoded before).
                broker = IbBroker(
                    "127.0.0.1", gateway.port, client_id=BROKER_CLIENT_ID + number, timeout=120
                )
                started = time.perf_counter()
                await broker.start()
                try:
                    await _connected(broker)
                    if number == 0:
                        self.log(f"  connected in {time.perf_counter() - started:.2f} s")
                    self.probe.install_broker(broker)
                    db = await self._full_syncs(gateway, broker, number)
                    try:
                        if number == rounds - 1:
                            await self._single_updates(gateway, broker, db, updates)
                    finally:
                        db.close()
                finally:
                    await broker.stop()
        finally:
            self.probe.uninstall()

    # ------------------------------------------------------------------ full syncs
    async def _full_syncs(self, gateway: Gateway, broker: IbBroker, number: int) -> Database:
        connect, (floor,) = await ib_snapshot(gateway.port, FLOOR_CLIENT_ID, 1)
        self.samples.add("ib.connect", connect)
        self.samples.add("ib.snapshot", floor)

        path = self.workdir / f"ledger-{self.size}-{number}.sqlite"
        db = open_database(path)
        self.probe.install_db(db)
        store = LedgerStore(db)
        original = store.commit_snapshot

        async def capture(snapshot: BrokerSnapshot, *args: Any) -> Any:
            self.captured = snapshot
            return await original(snapshot, *args)

        store.commit_snapshot = capture  # type: ignore[method-assign]
        service = PositionSyncService(broker, store, SyncOptions(enabled=False))

        first = await self._sync(service, "first")
        assert self.captured is not None and first.result.opened == self.size, first.result
        floor_db = SqliteFloor(
            self.workdir / f"floor-{self.size}-{number}.sqlite", self.captured.accounts
        )
        self.samples.add("floor.sqlite.first", floor_db.upsert(self.captured))
        # The sync after the first reads the 20,000 new rows back once (the store keeps no copy
        # of a sync with that many changes); the syncs after it run on the kept copy.
        cold = await self._sync(service, "cold")
        assert cold.result.updated == 0 and cold.result.opened == 0, cold.result
        gateway.move_prices(Decimal("0.01") * (number + 1))
        moved = await self._sync(service, "moved")
        assert moved.result.opened == moved.result.updated == 0, moved.result
        self.samples.add("floor.sqlite.moved", floor_db.upsert(self.captured))
        unchanged = await self._sync(service, "unchanged")
        assert unchanged.result.updated == 0 and unchanged.result.opened == 0, unchanged.result
        self.samples.add("floor.sqlite.unchanged", floor_db.upsert(self.captured))
        floor_db.close()
        # The periodic timer's sync: nothing changed, positions taken from the live subscription.
        periodic = await self._sync(service, "periodic", SyncTrigger.PERIODIC)
        assert periodic.result.updated == 0 and periodic.result.opened == 0, periodic.result
        restarted = await self._after_restart(gateway, db, number)
        self.log(
            f"  round {number + 1}: first {first.total:.3f} s (own {first.own:.3f}), "
            f"the next {cold.total:.3f} s (own {cold.own:.3f}), "
            f"unchanged {unchanged.total:.3f} s (own {unchanged.own:.3f}), "
            f"moved {moved.total:.3f} s (own {moved.own:.3f}), periodic {periodic.total:.3f} s "
            f"(own {periodic.own:.3f}), after a restart "
            f"{restarted.total:.3f} s (own {restarted.own:.3f}); ib_insync alone {floor:.3f} s"
        )
        return db

    async def _after_restart(self, gateway: Gateway, db: Database, number: int) -> _Sync:
        """Nothing changed, but the app just started: a new connection and a new store."""
        broker = IbBroker(
            "127.0.0.1", gateway.port, client_id=RESTART_CLIENT_ID + number, timeout=120
        )
        try:
            await broker.start()
            await _connected(broker)
            self.probe.install_broker(broker)
            service = PositionSyncService(broker, LedgerStore(db), SyncOptions(enabled=False))
            return await self._sync(service, "restart")
        finally:
            await broker.stop()

    async def _sync(
        self, service: PositionSyncService, kind: str, trigger: SyncTrigger = SyncTrigger.MANUAL
    ) -> _Sync:
        self.probe.reset()
        started = time.perf_counter()
        result = await service.sync_positions(trigger)
        done = time.perf_counter()
        if not result.ok:
            raise RuntimeError(f"{kind} sync failed: {result.summary()}")
        p = self.probe.phases
        if p.last_byte is None:
            raise RuntimeError("the executions end never reached the probe")
        sync = _Sync(
            total=done - started,
            own=p.hooks + (done - p.last_byte),
            transaction=p.transaction,
            reconcile=p.reconcile,
            load=p.load,
            apply=p.apply,
            hooks=p.hooks,
            result=result,
        )
        add = self.samples.add
        add(f"sync.{kind}.total", sync.total)
        add(f"sync.{kind}.own", sync.own)
        add(f"sync.{kind}.db", sync.transaction - sync.reconcile)
        add(f"sync.{kind}.reconcile", sync.reconcile)
        add(f"sync.{kind}.load", sync.load)
        add(f"sync.{kind}.apply", sync.apply)
        add(f"sync.{kind}.hooks", sync.hooks)
        add(f"sync.{kind}.tail", done - p.last_byte)
        return sync

    # ------------------------------------------------------------------ one update
    async def _single_updates(
        self, gateway: Gateway, broker: IbBroker, db: Database, updates: int
    ) -> None:
        """A live quantity push for one contract → debounced selective sync → committed."""
        service = PositionSyncService(
            broker, LedgerStore(db), SyncOptions(interval=1e9, debounce=DEBOUNCE)
        )
        fired: list[float] = []
        results: asyncio.Queue[tuple[float, SyncResult]] = asyncio.Queue()
        original = service._fire_debounced

        def fire() -> None:
            fired.append(time.perf_counter())
            original()

        service._fire_debounced = fire  # type: ignore[method-assign]
        service.on_result(lambda result: results.put_nowait((time.perf_counter(), result)))
        await service.start()  # connected already: no startup sync, only live triggers
        try:
            for number in range(updates):
                account, con_id, quantity = gateway.holding(number * 7919)
                fired.clear()
                self.probe.reset()
                bigger = quantity + 1 if quantity > 0 else quantity - 1  # INCREASED, either side
                await asyncio.to_thread(gateway.adjust_quantity, account, con_id, bigger)
                done, result = await asyncio.wait_for(results.get(), 30)
                if not result.ok or not result.selective or result.updated != 1 or not fired:
                    raise RuntimeError(f"single update: unexpected {result.summary()}")
                self.samples.add("update.committed", done - fired[-1])
                self.samples.add("update.db", self.probe.phases.transaction)
                await asyncio.sleep(DEBOUNCE * 2)
        finally:
            await service._tasks.cancel_all()  # the broker is stopped by the caller

    # ------------------------------------------------------------------ headless command
    def _headless(self, gateway: Gateway, number: int) -> None:
        """`position-sync sync` as a fresh process: on an empty ledger, then an existing one."""
        _remove_files(self.workdir)
        path = self.workdir / f"cli-{self.size}-{number}.sqlite"
        argv = [
            sys.executable, "-m", "app", "sync", "--db", str(path),
            "--port", str(gateway.port), "--client-id", str(CLI_CLIENT_ID),
        ]  # fmt: skip
        floor, floor_rss = ib_process(gateway.port, FLOOR_CLIENT_ID)
        self.samples.add("floor.ib.process", floor)
        self.samples.add("floor.ib.process.rss", floor_rss)
        first, first_rss = timed_process(argv, cwd=REPO)
        self.samples.add("cli.first", first)
        self.samples.add("cli.first.rss", first_rss)
        gateway.move_prices(Decimal("0.01"))
        again, again_rss = timed_process(argv, cwd=REPO)
        self.samples.add("cli.moved", again)
        self.samples.add("cli.moved.rss", again_rss)
        self.log(
            f"  headless sync: first {first:.2f} s, prices moved {again:.2f} s; "
            f"ib_insync process alone {floor:.2f} s; peak RSS {max(first_rss, again_rss):.0f} MB"
        )


async def _connected(broker: IbBroker) -> None:
    deadline = time.monotonic() + 120.0
    while broker.status.state is not ConnectionState.CONNECTED:
        if time.monotonic() > deadline:
            raise RuntimeError(f"broker never connected: {broker.status.message}")
        await asyncio.sleep(0.01)


def _remove_files(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            path.unlink()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    asyncio.set_event_loop(None)


def run_size(
    size: int, rounds: int, updates: int, *, cli: bool, log: Callable[[str], None] = print
) -> dict[str, list[float]]:
    """Every sample of one size (in a scratch folder removed afterwards)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"position-sync-bench-{size}-"))
    try:
        return Bench(size, workdir, log).run(rounds, updates, cli).values
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
