"""IbBroker: the read-only Interactive Brokers adapter behind app.sync's BrokerPort.

    broker = IbBroker("127.0.0.1", 7497, client_id=0, account="", timeout=10.0)
    broker.on_status(print); broker.on_event(print)
    await broker.start()              # returns at once; connects in the background
    snapshot = await broker.snapshot()  # complete, or IncompleteSnapshotError(reason)
    await broker.stop()

Everything runs on the running asyncio loop (plain asyncio or qasync). ib_insync finds that loop
through the policy (`asyncio.get_event_loop_policy().get_event_loop()`), so the loop must be the
one set with `asyncio.set_event_loop()`; start() checks that rather than fail later with
"Future attached to a different loop" (STYLE.md traps).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from app.broker.contract_details import PriceUnits
from app.broker.logs import tame_ib_insync_logs
from app.broker.session import IbSession
from app.broker.supervisor import Backoff, Supervisor
from app.broker.tasks import BackgroundTasks
from app.domain.connection import (
    BrokerEvent,
    BrokerUnavailableError,
    ConnectionState,
    ConnectionStatus,
)
from app.domain.values import BrokerPosition, BrokerSnapshot, PositionKey

logger = logging.getLogger(__name__)


class IbBroker:
    """A read-only TWS / IB Gateway connection that produces complete snapshots (BrokerPort).

    `account` limits everything to that one account code ("" = every managed account);
    `timeout` (seconds) bounds the connection and each request of a snapshot. `tws_timezone` is
    the TWS login's IANA zone, in which execution times TWS sends without a zone are read (the
    app passes the tws_timezone setting; each connection logs once when it had to). The other
    keyword-only knobs tune reconnecting: backoff from `backoff_initial` doubling to
    `backoff_cap` seconds, at least `client_id_retry` seconds between attempts while the client
    id is in use.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        client_id: int = 0,
        account: str = "",
        timeout: float = 10.0,
        *,
        tws_timezone: str = "UTC",
        backoff_initial: float = 1.0,
        backoff_cap: float = 30.0,
        client_id_retry: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.account = account.strip()
        self.timeout = timeout
        self.tws_timezone = tws_timezone
        self._backoff = Backoff(backoff_initial, backoff_cap)
        self._client_id_retry = client_id_retry
        self._status = ConnectionStatus(ConnectionState.DISCONNECTED, "Not started.")
        self._status_callbacks: list[Callable[[ConnectionStatus], None]] = []
        self._event_callbacks: list[Callable[[BrokerEvent], None]] = []
        self._session: IbSession | None = None
        self._tasks = BackgroundTasks()
        self._snapshot_lock: asyncio.Lock | None = None
        # A contract's price unit never changes: learnt once, kept across reconnects.
        self.price_units = PriceUnits()
        tame_ib_insync_logs()

    # ------------------------------------------------------------------ BrokerPort
    @property
    def status(self) -> ConnectionStatus:
        """The connection's current state."""
        return self._status

    def on_status(self, callback: Callable[[ConnectionStatus], None]) -> None:
        """Call `callback` on every state change; CONNECTED comes after every (re)connect and
        after IB connectivity is restored, and means "resync everything"."""
        self._status_callbacks.append(callback)

    def on_event(self, callback: Callable[[BrokerEvent], None]) -> None:
        """Call `callback` for every live position, portfolio, execution or commission push."""
        self._event_callbacks.append(callback)

    async def start(self) -> None:
        """Start connecting in the background (idempotent); returns at once."""
        loop = asyncio.get_running_loop()
        if asyncio.get_event_loop_policy().get_event_loop() is not loop:
            raise RuntimeError(
                "the running loop is not the policy's event loop; ib_insync would use another "
                "loop. Call asyncio.set_event_loop(loop) before loop.run_until_complete()."
            )
        if self._tasks:
            return
        self._snapshot_lock = asyncio.Lock()
        self._set_status(ConnectionStatus(ConnectionState.CONNECTING, self._where()))
        supervisor = Supervisor(
            self._new_session,
            on_status=self._set_status,
            on_session=self._set_session,
            backoff=self._backoff,
            client_id_retry=self._client_id_retry,
            stable_after=self._backoff.cap,
        )
        self._tasks.spawn(supervisor.run(), name="ib-broker-supervisor")

    async def stop(self) -> None:
        """Disconnect and stop reconnecting; snapshots in flight fail as incomplete."""
        await self._tasks.cancel_all()
        self._session = None
        self._set_status(ConnectionStatus(ConnectionState.DISCONNECTED, "Stopped."))

    async def snapshot(
        self, scope: frozenset[PositionKey] | None = None, *, refresh: bool = False
    ) -> BrokerSnapshot:
        """A complete snapshot, or raise IncompleteSnapshotError naming the reason.

        BrokerUnavailableError (a subclass) when not connected, or while TWS has lost IB
        (1100). `scope` limits it to those keys (live data is reused where it is current);
        `refresh` requests positions and account data again when an earlier snapshot already
        used what the live subscription holds (an answer nothing used yet, like the connect's
        own, is as fresh as a new one); executions are always requested again.
        """
        lock = self._snapshot_lock
        if lock is None:
            raise BrokerUnavailableError("the broker adapter is not started")
        # One snapshot at a time: ib_insync keys the positions request by name, not by id.
        async with lock:
            session = self._session
            if session is None:
                raise BrokerUnavailableError(self._status.message or "not connected to TWS")
            return await session.snapshot(scope, refresh=refresh)

    def live_positions(self, keys: Iterable[PositionKey] | None = None) -> list[BrokerPosition]:
        """The live subscription's rows (all, or these keys) for the window; no request is made.

        Empty while not connected. Unlike `snapshot()`, this promises no completeness: it is a
        view, never a reason to change the ledger.
        """
        session = self._session
        if session is None or self._status.state is not ConnectionState.CONNECTED:
            return []
        return session.live_positions(keys)

    # ------------------------------------------------------------------ internals
    def _where(self) -> str:
        return f"Connecting to TWS at {self.host}:{self.port} as client id {self.client_id}…"

    def _new_session(self) -> IbSession:
        return IbSession(
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            account=self.account,
            timeout=self.timeout,
            on_status=self._set_status,
            on_event=self._emit_event,
            tws_timezone=self.tws_timezone,
            price_units=self.price_units,
        )

    def _set_session(self, session: IbSession | None) -> None:
        self._session = session

    def _set_status(self, status: ConnectionStatus) -> None:
        # CONNECTED is always announced (each one asks for a full resync); others on change.
        if status == self._status and status.state is not ConnectionState.CONNECTED:
            return
        self._status = status
        logger.info("broker %s: %s", status.state.value, status.message)
        for callback in list(self._status_callbacks):
            try:
                callback(status)
            except Exception:
                logger.exception("a connection status callback failed")

    def _emit_event(self, event: BrokerEvent) -> None:
        for callback in list(self._event_callbacks):
            try:
                callback(event)
            except Exception:
                logger.exception("a broker event callback failed")
