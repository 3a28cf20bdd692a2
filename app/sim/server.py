"""The simulated TWS: listens on 127.0.0.1, serves sessions, and exposes a control API.

Every public control method is safe to call from any thread: called from outside the
simulator's loop thread it is handed to the loop and waited for, so tests and the Qt app can
script the broker while the server runs in its own thread (see runner.SimulatorThread).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Concatenate, ParamSpec, TypeVar

from app.sim import messages as msg
from app.sim.faults import Faults
from app.sim.fields import mask_account
from app.sim.framing import DEFAULT_MAX_FRAME, encode_frame
from app.sim.model import Contract, Execution, Holding, Price
from app.sim.session import ClientSession
from app.sim.state import SimState

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

ERROR_TEXTS = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2104: "Market data farm connection is OK:usfarm",
    2103: "Market data farm connection is broken:usfarm",
    2100: "API client has been unsubscribed from account data.",
    326: "Unable to connect as the client id is already in use. Retry with a unique client id.",
}


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One message a client sent: which connection, which client id (None before startApi)."""

    conn_id: int
    client_id: int | None
    msg_id: int


def threadsafe(
    method: Callable[Concatenate[GatewaySimulator, P], R],
) -> Callable[Concatenate[GatewaySimulator, P], R]:
    """Run the method on the simulator's loop thread, waiting for its result."""

    @functools.wraps(method)
    def wrapper(self: GatewaySimulator, /, *args: P.args, **kwargs: P.kwargs) -> R:
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() == self._loop_thread:
            return method(self, *args, **kwargs)
        result: concurrent.futures.Future[R] = concurrent.futures.Future()

        def call() -> None:
            try:
                result.set_result(method(self, *args, **kwargs))
            except BaseException as exc:  # handed to the calling thread, not swallowed
                result.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return result.result(timeout=self.control_timeout)

    return wrapper


def _check_host(host: str, allow_non_loopback: bool) -> None:
    """Refuse to listen beyond loopback unless explicitly asked: this broker has no auth."""
    if allow_non_loopback or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"refusing to listen on {host!r}: the simulator serves 127.0.0.1 only "
            "unless allow_non_loopback=True"
        )


class GatewaySimulator:
    """A TWS speaking the real socket protocol (server version 176) over a scripted SimState."""

    def __init__(
        self,
        state: SimState | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_non_loopback: bool = False,
        faults: Faults | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        handshake_timeout: float = 10.0,
        control_timeout: float = 10.0,
    ) -> None:
        _check_host(host, allow_non_loopback)
        self.state = state or SimState()
        self.host = host
        self.faults = faults or Faults()
        self.max_frame = max_frame
        self.handshake_timeout = handshake_timeout
        self.control_timeout = control_timeout
        self.inbound: list[InboundRecord] = []
        self._port = port
        self._server: asyncio.Server | None = None
        self._sessions: list[ClientSession] = []
        self._conn_seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # drivers, relisten: cancelled on stop
        self._connection_tasks: set[asyncio.Task[Any]] = set()
        self._restart_handle: asyncio.TimerHandle | None = None
        self._restarts = 0  # a relisten from an earlier restart must not outlive a later one

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        """The listening port (the real one once started with port 0)."""
        return self._port

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> int:
        """Start listening; returns the port."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await self._listen()
        return self._port

    async def _listen(self, restart: int | None = None) -> None:
        server = await asyncio.start_server(
            self._on_connect, self.host, self._port, reuse_address=True
        )
        if restart is not None and restart != self._restarts:
            server.close()  # another restart began while this one was coming back
            return
        self._port = server.sockets[0].getsockname()[1]
        self._server = server
        logger.info("TWS simulator listening on %s:%s", self.host, self._port)

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def stop(self) -> None:
        """Stop listening, close every connection and cancel background tasks."""
        if self._restart_handle is not None:
            self._restart_handle.cancel()
            self._restart_handle = None
        self._stop_listening()
        for session in list(self._sessions):
            session.close()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        # Connection handlers end by themselves once their socket is closed; cancelling them
        # instead makes asyncio's stream callback log the CancelledError as an error.
        waiting = tasks + list(self._connection_tasks)
        if waiting:
            await asyncio.wait(waiting, timeout=2.0)
        await asyncio.sleep(0)  # let transports finish closing

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run a background coroutine (a scenario driver) until stop(); its failure is logged."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("simulator task %s failed", t.get_name(), exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # a connection that raced a restart
            writer.close()
            return
        self._conn_seq += 1
        session = ClientSession(self, reader, writer, self._conn_seq)
        self._sessions.append(session)
        task = asyncio.current_task()
        if task is not None:
            self._connection_tasks.add(task)
        try:
            await session.run()
        finally:
            if task is not None:
                self._connection_tasks.discard(task)

    def _forget(self, session: ClientSession) -> None:
        if session in self._sessions:
            self._sessions.remove(session)

    def _record(self, session: ClientSession, msg_id: int) -> None:
        self.inbound.append(InboundRecord(session.conn_id, session.client_id, msg_id))

    def _client_id_in_use(self, client_id: int, asking: ClientSession) -> bool:
        return any(
            s is not asking and s.ready and not s.closed and s.client_id == client_id
            for s in self._sessions
        )

    def _ready(self, client_id: int | None = None) -> list[ClientSession]:
        return [
            s for s in self._sessions if s.ready and (client_id is None or s.client_id == client_id)
        ]

    # ------------------------------------------------------------------ inspection
    @threadsafe
    def received_ids(self, client_id: int | None = None) -> list[int]:
        """Every message id received, in order (optionally from one client id only)."""
        return [r.msg_id for r in self.inbound if client_id is None or r.client_id == client_id]

    @threadsafe
    def inbound_records(self) -> list[InboundRecord]:
        return list(self.inbound)

    @threadsafe
    def connected_client_ids(self) -> list[int]:
        """Client ids of the sessions that completed startApi and are still open."""
        return [s.client_id for s in self._ready() if s.client_id is not None]

    @threadsafe
    def is_listening(self) -> bool:
        return self._server is not None

    @threadsafe
    def positions(self) -> list[tuple[str, int, Decimal, Decimal]]:
        """(account, conId, quantity, avgCost) of every holding, as a snapshot would send."""
        return [
            (h.account, h.contract.con_id, h.quantity, h.avg_cost)
            for h in self.state.holdings.values()
        ]

    @threadsafe
    def executions(self) -> list[Execution]:
        return list(self.state.executions.values())

    @threadsafe
    def call(self, fn: Callable[[SimState], R]) -> R:
        """Run `fn(state)` on the loop thread (for reads or edits this API does not cover)."""
        return fn(self.state)

    # ------------------------------------------------------------------ scripting
    @threadsafe
    def set_faults(self, /, **changes: Any) -> None:
        """Change fault switches, e.g. set_faults(withhold_end={"positions"})."""
        for name, value in changes.items():
            if not hasattr(self.faults, name):
                raise AttributeError(f"no fault named {name!r}")
            setattr(self.faults, name, value)

    @threadsafe
    def add_account(
        self, code: str, base_currency: str = "USD", cash: dict[str, Decimal] | None = None
    ) -> None:
        """Add a managed account (clients that connect later see it in managedAccounts)."""
        self.state.add_account(code, base_currency, cash)

    @threadsafe
    def set_position(
        self,
        account: str,
        contract: Contract,
        quantity: Decimal,
        avg_cost: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Holding:
        """Create or overwrite a holding (no fill) and push it to subscribers."""
        holding = self.state.set_position(account, contract, quantity, avg_cost, price)
        self._push_holding(holding)
        return holding

    @threadsafe
    def fill(
        self,
        account: str,
        contract: Contract | int,
        shares: Decimal | int | str,
        price: Decimal | int | str,
        *,
        commission: Decimal | None = None,
        order_ref: str = "",
    ) -> Execution:
        """Book and push a fill (+ shares bought, − sold) in TWS's message order."""
        if isinstance(contract, int):
            contract = self.state.contract(contract)
        execution, holding = self.state.fill(
            account,
            contract,
            Decimal(shares),
            Decimal(price),
            commission=commission,
            order_ref=order_ref,
        )
        for session in self._ready():
            session.push_fill(execution)
        self._push_holding(holding)
        self._push_account(account)
        return execution

    @threadsafe
    def correct_fill(
        self, exec_id: str, *, price: Decimal | None = None, commission: Decimal | None = None
    ) -> Execution:
        """Send a correction: the same execId with a higher last segment, replacing it."""
        corrected = self.state.correct(exec_id, price=price, commission=commission)
        for session in self._ready():
            session.push_correction(corrected)
        return corrected

    @threadsafe
    def set_price(self, con_id: int, price: Price) -> None:
        """A price tick (Decimal, NaN, ±Infinity, or None for unset): portfolio rows move."""
        for holding in self.state.set_price(con_id, price):
            self._push_holding(holding, quantity_changed=False)

    @threadsafe
    def set_prices(self, prices: Mapping[int, Price]) -> None:
        """Several ticks at once; account values follow for every account touched."""
        touched: set[str] = set()
        for con_id, price in prices.items():
            for holding in self.state.set_price(con_id, price):
                self._push_holding(holding, quantity_changed=False)
                touched.add(holding.account)
        for account in touched:
            self._push_account(account)

    @threadsafe
    def adjust_quantity(
        self, account: str, con_id: int, quantity: Decimal, avg_cost: Decimal | None = None
    ) -> Holding:
        """A quantity change with no fill (a transfer in or out)."""
        holding = self.state.adjust_quantity(account, con_id, quantity, avg_cost)
        self._push_holding(holding)
        self._push_account(account)
        return holding

    @threadsafe
    def split(self, account: str, con_id: int, ratio: Decimal | int) -> Holding:
        """A ratio:1 split (2 → quantity doubles, avgCost halves); no fill."""
        holding = self.state.split(account, con_id, Decimal(ratio))
        self._push_holding(holding)
        return holding

    @threadsafe
    def remove_position(self, account: str, con_id: int) -> None:
        """The broker stops reporting a holding: no fill, no zero row, no push."""
        self.state.remove_position(account, con_id)
        logger.info("position %s of %s removed silently", con_id, mask_account(account))

    @threadsafe
    def set_empty_quantity(self, account: str, con_id: int, empty: bool = True) -> None:
        """Send this holding's quantity field empty in position and portfolio rows."""
        self.state.holding(account, con_id).empty_quantity = empty

    @threadsafe
    def push_error(
        self, code: int, req_id: int = -1, text: str | None = None, client_id: int | None = None
    ) -> None:
        """An error/notice (1100, 1101, 1102, 2104, 326, …) to every ready client, or one."""
        message = msg.error(req_id, code, text or ERROR_TEXTS.get(code, f"Simulated error {code}"))
        for session in self._ready(client_id):
            session.send(message)

    @threadsafe
    def send_garbage(self, kind: str = "unknown", client_id: int | None = None) -> None:
        """Send a bad frame: `unknown` message id, `short` position row, or `binary` junk."""
        if kind == "unknown":
            data = encode_frame(["9999", "1", "garbage"])
        elif kind == "short":
            data = encode_frame(["61", "3", "DU0000000", "1"])
        elif kind == "binary":
            data = len(b"\xff\xfe\x00\x01junk\x00").to_bytes(4, "big") + b"\xff\xfe\x00\x01junk\x00"
        else:
            raise ValueError(f"unknown garbage kind {kind!r}")
        for session in self._ready(client_id):
            session.send_raw(data)

    @threadsafe
    def drop_connections(self, client_id: int | None = None) -> int:
        """Close every connection (or one client id's); returns how many were closed."""
        victims = [s for s in self._sessions if client_id is None or s.client_id == client_id]
        for session in victims:
            session.close()
        return len(victims)

    @threadsafe
    def restart(self, down_for: float = 2.0) -> None:
        """TWS's daily restart: drop everyone, refuse connections for `down_for` s, come back."""
        logger.info("simulated restart: down for %.1f s", down_for)
        self._stop_listening()
        for session in list(self._sessions):
            session.close()
        loop = asyncio.get_running_loop()
        if self._restart_handle is not None:
            self._restart_handle.cancel()  # restarted while down: come back once, later
        self._restarts += 1
        restart = self._restarts

        def relisten() -> None:
            self._restart_handle = None
            self.spawn(self._listen(restart), name="relisten")

        self._restart_handle = loop.call_later(down_for, relisten)

    # ------------------------------------------------------------------ push helpers
    def _push_holding(self, holding: Holding, *, quantity_changed: bool = True) -> None:
        for session in self._ready():
            session.push_holding(holding, quantity_changed=quantity_changed)

    def _push_account(self, account: str) -> None:
        for session in self._ready():
            session.push_account(account)
