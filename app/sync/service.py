"""PositionSyncService: keeps the ledger equal to the broker, on every trigger, one run at a time.

Triggers (DESIGN "Triggers and connection"): every `interval` seconds; after broker position or
execution pushes (debounced, and limited to the contracts they named); on demand; after every
(re)connect. Runs never overlap: a trigger during a run coalesces into ONE follow-up run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.domain.plan import ReconcileOptions
from app.domain.records import RunOutcome
from app.domain.values import PositionKey, SyncStatus, SyncTrigger
from app.sync.ports import (
    BrokerEvent,
    BrokerEventKind,
    BrokerPort,
    BrokerUnavailableError,
    ConnectionState,
    ConnectionStatus,
    IncompleteSnapshotError,
    LedgerPort,
)
from app.sync.results import SyncResult
from app.sync.tasks import TaskGroup

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """The settings the service obeys (built from app.settings by the composition root)."""

    enabled: bool = True
    interval: float = 300.0
    debounce: float = 1.0
    on_trade: bool = True
    on_position_update: bool = True
    reconcile: ReconcileOptions = field(default_factory=ReconcileOptions)
    refresh_every: float = 0.0
    """Seconds between periodic syncs that download every position again (see _refresh_due).

    0: every periodic sync does. Reusing the live subscription is unsafe with two syncers on one
    ledger: one's stale live view flips the other's MISSING warning back and forth (regression
    caught by tests/sync/test_two_syncers.py)."""


@dataclass(slots=True)
class _Pending:
    """The one follow-up run that triggers arriving during a run coalesce into."""

    trigger: SyncTrigger
    scope: set[PositionKey] | None
    future: asyncio.Future[SyncResult]


class PositionSyncService:
    """Owns the triggers and the single flight; the broker and ledger are injected."""

    def __init__(self, broker: BrokerPort, ledger: LedgerPort, options: SyncOptions) -> None:
        self.broker = broker
        self.ledger = ledger
        self.options = options
        self._tasks = TaskGroup("sync")
        self._running: asyncio.Task[SyncResult] | None = None
        self._pending: _Pending | None = None
        self._listeners: list[Callable[[SyncResult], None]] = []
        self._started: list[Callable[[SyncTrigger], None]] = []
        self._debounce: asyncio.TimerHandle | None = None
        self._debounce_keys: set[PositionKey] | None = set()
        self._debounce_trigger = SyncTrigger.POSITION_UPDATE
        self._connected_once = False
        self._periodic: asyncio.Task[None] | None = None
        self._refreshed_at: float | None = None  # monotonic time of the last full download
        self._last_full_ok = False  # the latest full sync committed a complete snapshot
        self.last_result: SyncResult | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Hook into the broker, start connecting and the periodic timer."""
        self.broker.on_status(self._on_status)
        self.broker.on_event(self._on_event)
        await self.broker.start()
        if self.options.enabled:
            self._periodic = self._tasks.spawn(self._periodic_loop(), "periodic")

    async def stop(self) -> None:
        """Stop timers and the broker; a run in progress is awaited, not torn mid-commit."""
        if self._debounce is not None:
            self._debounce.cancel()
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)
        await self._tasks.cancel_all()
        await self.broker.stop()

    def apply_options(self, options: SyncOptions) -> None:
        """New settings take effect now (the periodic timer restarts with the new interval)."""
        self.options = options
        if self._periodic is not None:
            self._periodic.cancel()
            self._periodic = None
        if options.enabled:
            self._periodic = self._tasks.spawn(self._periodic_loop(), "periodic")

    def on_result(self, callback: Callable[[SyncResult], None]) -> None:
        """Call `callback` with every finished run's result."""
        self._listeners.append(callback)

    def on_run_started(self, callback: Callable[[SyncTrigger], None]) -> None:
        """Call `callback` when a run starts (the window shows "Syncing…")."""
        self._started.append(callback)

    @property
    def running(self) -> bool:
        """True while a run is in flight."""
        return self._running is not None and not self._running.done()

    # ------------------------------------------------------------------ single flight
    async def sync_positions(
        self,
        trigger: SyncTrigger = SyncTrigger.MANUAL,
        scope: set[PositionKey] | None = None,
    ) -> SyncResult:
        """Run a sync now, or join the one follow-up run if a run is in flight.

        `scope` limits the run to some keys (selective sync); None means a full sync, and a full
        request absorbs any selective ones waiting with it.
        """
        if self._running is None or self._running.done():
            self._running = self._tasks.spawn(self._run(trigger, scope), f"run-{trigger}")
            self._running.add_done_callback(self._after_run)
            return await asyncio.shield(self._running)
        if self._pending is None:
            future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
            self._pending = _Pending(trigger, set(scope) if scope is not None else None, future)
        else:
            pending = self._pending
            if scope is None or pending.scope is None:
                pending.scope = None
            else:
                pending.scope |= scope
            if scope is None and pending.trigger in _SELECTIVE_TRIGGERS:
                pending.trigger = trigger
        return await asyncio.shield(self._pending.future)

    def _after_run(self, _task: asyncio.Task[SyncResult]) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        scope = pending.scope
        self._running = self._tasks.spawn(self._run(pending.trigger, scope), "follow-up")
        self._running.add_done_callback(self._after_run)

        def resolve(task: asyncio.Task[SyncResult]) -> None:
            if pending.future.done():
                return
            if task.cancelled():
                pending.future.cancel()
            elif task.exception() is not None:
                pending.future.set_exception(task.exception())  # type: ignore[arg-type]
            else:
                pending.future.set_result(task.result())

        self._running.add_done_callback(resolve)

    async def _run(self, trigger: SyncTrigger, scope: set[PositionKey] | None) -> SyncResult:
        for callback in self._started:
            callback(trigger)
        frozen = frozenset(scope) if scope is not None else None
        result, superseded = await self._attempt(trigger, frozen)
        for _ in range(SUPERSEDED_RETRIES):
            if not superseded:
                break
            # Another syncer sharing the ledger committed a newer snapshot while this one was
            # taken, and theirs may still predate what triggered this run: take a fresh one (it
            # starts after theirs ended; app.db.concurrency). A few times at most: the other
            # syncer is making progress meanwhile, and the ledger shows its commit.
            log.info("%s; taking a fresh snapshot", result.summary())
            result, superseded = await self._attempt(trigger, frozen)
        self.last_result = result
        log.info("%s", result.summary())
        for listener in self._listeners:
            try:
                listener(result)
            except Exception:
                log.exception("a sync result listener failed")
        return result

    def _refresh_due(self, trigger: SyncTrigger) -> bool:
        """Whether a full sync asks TWS for every position again.

        DESIGN: while connected, a periodic sync need not download again what the live position
        subscription delivered since the last complete snapshot (the adapter still asks again
        after any drop or IB outage, and for the market data of every account but the one
        subscribed). So periodic syncs download positions again only every `refresh_every`
        seconds, and after any full sync that did not commit; every other full sync (start-up,
        reconnect, Sync now, the CLI) always does.
        """
        if trigger is not SyncTrigger.PERIODIC or self._refreshed_at is None:
            return True
        if not self._last_full_ok:
            return True  # after any failure, ground truth again: the next one asks for all
        return time.monotonic() - self._refreshed_at >= self.options.refresh_every

    async def _attempt(
        self, trigger: SyncTrigger, frozen: frozenset[PositionKey] | None
    ) -> tuple[SyncResult, bool]:
        """One snapshot and its commit; (the result, whether another syncer superseded it)."""
        started = datetime.now(UTC)
        refresh = frozen is None and self._refresh_due(trigger)
        try:
            # A full sync downloads everything again: it is the safety net that catches what no
            # push announced (a position removed silently). Selective syncs reuse live data, and
            # so do periodic ones between refreshes (_refresh_due).
            snapshot = await self.broker.snapshot(frozen, refresh=refresh)
        except BrokerUnavailableError as exc:
            status, reason = SyncStatus.SKIPPED, exc.reason
        except IncompleteSnapshotError as exc:
            status, reason = SyncStatus.FAILED, exc.reason
        else:
            try:
                plan, run_id = await self.ledger.commit_snapshot(
                    snapshot, self.options.reconcile, trigger, started
                )
            except Exception as exc:  # a database failure: nothing was committed
                log.exception("sync could not be written")
                failed = SyncResult(
                    trigger,
                    SyncStatus.FAILED,
                    started,
                    datetime.now(UTC),
                    error=f"the ledger could not be written: {exc}",
                    ledger_error=True,
                )
                self._last_full_ok = self._last_full_ok and frozen is not None
                return failed, False
            if plan.superseded:
                status = SyncStatus.SKIPPED
            else:
                status = SyncStatus.OK if plan.incomplete_reason is None else SyncStatus.FAILED
            result = SyncResult(
                trigger=trigger,
                status=status,
                started_at=started,
                finished_at=datetime.now(UTC),
                run_id=run_id,
                positions_seen=plan.positions_seen,
                opened=plan.opened,
                updated=plan.updated,
                closed=plan.closed,
                missing=plan.missing,
                skipped_rows=len(plan.skipped),
                error=plan.incomplete_reason,
                pnl_mismatches=plan.pnl_mismatches,
                selective=frozen is not None,
                changed_keys=frozenset(c.after.key for c in plan.changes),
                market_moved=bool(plan.market_updates),
                superseded=plan.superseded,
                held_fills=plan.held_exec_ids,
                stale_prices=snapshot.stale_prices if status is SyncStatus.OK else (),
                fills_unavailable=snapshot.fills_unavailable if status is SyncStatus.OK else None,
            )
            if plan.held_exec_ids:
                log.info("%s", result.summary())
            if frozen is None:
                self._last_full_ok = status is SyncStatus.OK
                if refresh and self._last_full_ok:
                    self._refreshed_at = time.monotonic()
            return result, plan.superseded
        if frozen is None:
            self._last_full_ok = False
        return await self._nothing_changed(trigger, started, status, reason), False

    async def _nothing_changed(
        self, trigger: SyncTrigger, started: datetime, status: SyncStatus, reason: str
    ) -> SyncResult:
        finished = datetime.now(UTC)
        run_id: int | None = None
        try:
            run_id = await self.ledger.record_run(
                RunOutcome(trigger, started, finished, status, error=reason)
            )
        except Exception:
            log.exception("could not record the %s sync run", status.value)
        return SyncResult(trigger, status, started, finished, run_id=run_id, error=reason)

    # ------------------------------------------------------------------ triggers
    async def _periodic_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.interval)
            if self.broker.status.state is ConnectionState.CONNECTED:
                await self.sync_positions(SyncTrigger.PERIODIC)

    def _on_status(self, status: ConnectionStatus) -> None:
        if status.state is not ConnectionState.CONNECTED or not self.options.enabled:
            return
        # Every (re)connect gets a full resync: pushes may have been missed while away.
        trigger = SyncTrigger.RECONNECT if self._connected_once else SyncTrigger.STARTUP
        self._connected_once = True
        self._tasks.spawn(self.sync_positions(trigger), f"on-{status.state}")

    def _on_event(self, event: BrokerEvent) -> None:
        # Price ticks change no quantity: the periodic full sync stores the latest marks, and a
        # sync per tick would fill the sync log with a run every second.
        if not self.options.enabled or event.kind is BrokerEventKind.MARKET:
            return
        if event.kind is BrokerEventKind.EXECUTION:
            if not self.options.on_trade:
                return
            self._debounce_trigger = SyncTrigger.EXECUTION
        elif not self.options.on_position_update:
            return
        if self._debounce_keys is not None:
            if event.key is None:
                self._debounce_keys = None  # an event without a key needs a full sync
            else:
                self._debounce_keys.add(event.key)
        if self._debounce is not None:
            self._debounce.cancel()
        loop = asyncio.get_running_loop()
        self._debounce = loop.call_later(self.options.debounce, self._fire_debounced)

    def _fire_debounced(self) -> None:
        self._debounce = None
        keys, self._debounce_keys = self._debounce_keys, set()
        trigger, self._debounce_trigger = self._debounce_trigger, SyncTrigger.POSITION_UPDATE
        self._tasks.spawn(self.sync_positions(trigger, keys), f"debounced-{trigger}")


SUPERSEDED_RETRIES = 2
"""Fresh snapshots a run takes after another syncer superseded its own (app.db.concurrency)."""

"""Seconds between the periodic syncs that download every position again (the others reuse
the live subscription; see PositionSyncService._refresh_due)."""

_SELECTIVE_TRIGGERS = frozenset({SyncTrigger.POSITION_UPDATE, SyncTrigger.EXECUTION})
