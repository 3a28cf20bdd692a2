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
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any, Concatenate, ParamSpec, TypeVar

from app.sim import messages as msg
from app.sim.faults import Faults
from app.sim.fields import mask_account
from app.sim.framing import DEFAULT_MAX_FRAME, encode_frame
from app.sim.host import Peer
from app.sim.model import Contract, Execution, Holding, Price
from app.sim.session import ClientSession
from app.sim.state import ZERO, SimState

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
    2106: "HMDS data farm connection is OK:ushmds",
    2110: "Connectivity between TWS and server is broken. It will be restored automatically.",
    2158: "Sec-def data farm connection is OK:secdefnj",
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
        master_client_id: int | None = None,
        broadcast_executions: bool = True,
    ) -> None:
        _check_host(host, allow_non_loopback)
        self.state = state or SimState()
        self.host = host
        self.faults = faults or Faults()
        self.max_frame = max_frame
        self.handshake_timeout = handshake_timeout
        self.control_timeout = control_timeout
        self.inbound: list[InboundRecord] = []
        # Who sees executions (see sees()): TWS's "Master API client ID" setting, and whether
        # every client sees every execution anyway (the simulator's old, simpler behaviour).
        self.master_client_id = master_client_id
        self.broadcast_executions = broadcast_executions
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

    # ------------------------------------------------------------------ the sessions' side
    # app.sim.host.SessionHost: called by ClientSession on the loop thread only (not threadsafe).
    def forget(self, session: Peer) -> None:
        """The session closed: no more pushes to it."""
        self._sessions = [s for s in self._sessions if s is not session]

    def record(self, session: Peer, msg_id: int) -> None:
        """Note a message the session received (inbound_records)."""
        self.inbound.append(InboundRecord(session.conn_id, session.client_id, msg_id))

    def client_id_in_use(self, client_id: int, asking: Peer) -> bool:
        """Another open, ready session already uses `client_id`."""
        return any(
            s is not asking and s.ready and not s.closed and s.client_id == client_id
            for s in self._sessions
        )

    def ready_sessions(self, client_id: int | None = None) -> list[ClientSession]:
        """Sessions that completed startApi and are still open (of one client id, if given)."""
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
        return [s.client_id for s in self.ready_sessions() if s.client_id is not None]

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

    def sees(self, client_id: int | None, execution: Execution) -> bool:
        """Whether a client id gets this execution (live, and in reqExecutions answers).

        IB: orders placed through the API are bound to the client id that placed them
        (interactivebrokers.github.io/tws-api/open_orders.html); client id 0 also gets the
        orders entered in TWS by hand; and "To receive commissions reports for all clients it is
        necessary to connect as the Master Client ID" (tws-api/executions_commissions.html).
        We apply the same rule to execDetails, commissionReport and reqExecutions answers: the
        placing client, client 0 and the Master API client id. A fill made by hand in TWS
        (client id 0) thus reaches only client 0 and the master.
        """
        if client_id is None:
            return False
        if self.broadcast_executions:
            return True
        return client_id in (execution.client_id, 0, self.master_client_id)

    def _watchers(self, execution: Execution) -> list[ClientSession]:
        return [s for s in self.ready_sessions() if self.sees(s.client_id, execution)]

    def _lag_before(self, account: str, con_id: int) -> tuple[Decimal, Decimal] | None:
        holding = self.state.holdings.get((account, con_id))
        return None if holding is None else (holding.quantity, holding.avg_cost)

    def _start_lag(
        self, holding: Holding, before: tuple[Decimal, Decimal] | None, lag: float
    ) -> None:
        """Keep showing `before` in position and portfolio rows for `lag` more seconds."""
        now = time.monotonic()
        if holding.lagged is None or holding.lag_until <= now:
            holding.lagged = before if before is not None else (ZERO, ZERO)
            holding.lag_new = before is None
        holding.lag_until = now + lag
        if self._loop is not None and self._loop.is_running():
            self._loop.call_later(lag, self._end_lag, holding)

    def _end_lag(self, holding: Holding) -> None:
        if holding.lagged is None or time.monotonic() < holding.lag_until - 0.001:
            return  # a later fill extended the lag; its own timer ends it
        holding.lagged = None
        if self.state.holdings.get((holding.account, holding.contract.con_id)) is holding:
            self._push_holding(holding)
            self._push_account(holding.account)

    def shown(self, holding: Holding) -> Holding | None:
        """The holding as position and portfolio rows show it now (None: no row yet).

        Under Faults.position_lag a holding filled in the last `position_lag` seconds still
        shows its quantity and avgCost from before the fill.
        """
        if holding.lagged is None or time.monotonic() >= holding.lag_until:
            return holding
        if holding.lag_new:
            return None
        quantity, avg_cost = holding.lagged
        return replace(holding, quantity=quantity, avg_cost=avg_cost, lagged=None)

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
        client_id: int = 0,
        order_id: int = 0,
        withhold_commission: bool = False,
    ) -> Execution:
        """Book and push a fill (+ shares bought, − sold) in TWS's message order.

        `client_id`/`order_id` name the API client that placed the order (0/0: by hand in TWS).
        `withhold_commission`: the commissionReport waits for release_commission().
        """
        if isinstance(contract, int):
            contract = self.state.contract(contract)
        lag = self.faults.position_lag
        before = self._lag_before(account, contract.con_id)
        execution, holding = self.state.fill(
            account,
            contract,
            Decimal(shares),
            Decimal(price),
            commission=commission,
            order_ref=order_ref,
            client_id=client_id,
            order_id=order_id,
            withhold_commission=withhold_commission,
        )
        for session in self._watchers(execution):
            session.push_fill(execution)
        if lag > 0:
            self._start_lag(holding, before, lag)
            return execution
        self._push_holding(holding)
        self._push_account(account)
        return execution

    @threadsafe
    def release_commission(self, exec_id: str, commission: Decimal | None = None) -> Execution:
        """Send a withheld commissionReport now; later reqExecutions answers include it.

        IB sends commissionReport separately from, and after, execDetails; clients key it by
        execId and must not assume it comes at once (rust-ibapi issue #788 and PR #811;
        pysystemtrade PR #1661: "IB sends commission reports separately from executions").
        `commission` replaces the amount booked at the fill (re-booking avgCost and P&L).
        """
        execution = self.state.release_commission(exec_id, commission)
        for session in self._watchers(execution):
            session.push_commission(execution)
        if commission is not None:
            holding = self.state.holding(execution.account, execution.contract.con_id)
            self._push_holding(holding)
            self._push_account(execution.account)
        return execution

    @threadsafe
    def correct_fill(
        self,
        exec_id: str,
        *,
        price: Decimal | int | str | None = None,
        shares: Decimal | int | str | None = None,
        commission: Decimal | None = None,
        withhold_commission: bool = False,
    ) -> Execution:
        """Send a correction: the same execId with the last segment + 1, replacing the fill.

        The holding (quantity, avgCost), cash and realized P&L are re-booked with the corrected
        fill (see SimState.correct); position, portfolio and account rows follow.
        """
        corrected, holding = self.state.correct(
            exec_id,
            price=None if price is None else Decimal(price),
            shares=None if shares is None else Decimal(shares),
            commission=commission,
            withhold_commission=withhold_commission,
        )
        for session in self._watchers(corrected):
            session.push_correction(corrected)
        self._push_holding(holding)
        self._push_account(holding.account)
        return corrected

    @threadsafe
    def new_day(self) -> list[tuple[str, int]]:
        """End the simulated trading day; returns the (account, conId) rows dropped.

        TWS keeps reporting a position closed today with quantity 0 (and avgCost 0) in position
        and portfolio rows until the next day: ib_insync removes a position on a 0 row for that
        reason (tws-protocol.md §6), and IB users filter such rows out (lumibot PR #177 "don't
        include positions with 0 quantity in Interactive Brokers"; nautilus_trader PR #3305).
        The morning after they are gone. Executions: reqExecutions answers today's (TWS Users'
        Guide, "The Trade Log displays reports for daily executions"; DESIGN.md); TWS can be set
        to keep up to 7 days (not found in the stored IB docs; a third-party IB tool notes
        history "beyond ~7 days" needs a Flex query) — set_execution_days(n). Clients are not
        told: TWS restarts overnight, and a reconnecting client asks again.
        """
        dropped = self.state.new_day()
        return [(h.account, h.contract.con_id) for h in dropped]

    @threadsafe
    def set_execution_days(self, days: int) -> None:
        """How many trading days of executions reqExecutions answers (1–7; TWS default 1)."""
        if not 1 <= days <= 7:
            raise ValueError("TWS keeps between 1 and 7 days of executions")
        self.state.execution_days = days

    @threadsafe
    def expire(self, account: str, con_id: int, *, zero_row: bool = False) -> None:
        """An option/warrant past its expiry date expires worthless: no execution, no cash.

        IB books expiries, exercises and assignments as non-trade events (the Flex statement's
        OptionEAE section, e.g. DeclaRenta PR #129; other brokers' APIs likewise keep them out
        of order history, robin_stocks issue #227), not as API executions: we send no
        execDetails. It happens in IB's overnight processing, so no row is pushed either; the
        next reqPositions/reqAccountUpdates answer lacks it (`zero_row=True`: answers carry it
        with quantity 0 until new_day(), as nautilus_trader PR #3305 saw for expired options).
        """
        self.state.expire(account, con_id, zero_row=zero_row)
        logger.info("option %s of %s expired", con_id, mask_account(account))

    @threadsafe
    def exercise_option(
        self,
        account: str,
        con_id: int,
        underlying: Contract | int,
        quantity: Decimal | int | None = None,
    ) -> None:
        """Exercise (long) or assignment (short) with no execution (see expire() for sources).

        The option position shrinks by `quantity` (default: all of it) and the underlying moves
        by ± multiplier × quantity at the strike. Unsure whether TWS sends an execDetails for the
        underlying's delivery; the conservative reading (none, as for expiries) leaves the
        change unexplained by fills, the harder case for the ledger. No rows are pushed.
        """
        if isinstance(underlying, int):
            underlying = self.state.contract(underlying)
        self.state.exercise(
            account, con_id, underlying, None if quantity is None else Decimal(quantity)
        )

    @threadsafe
    def set_exchange_rate(self, currency: str, usd_per_unit: Decimal | str) -> None:
        """Set the FX table (USD per unit of `currency`); account values follow at once."""
        self.state.set_exchange_rate(currency, Decimal(usd_per_unit))
        for account in self.state.managed_accounts():
            self._push_account(account)

    @threadsafe
    def set_base_currency(self, account: str, currency: str) -> None:
        """Change an account's base currency (ExchangeRate and BASE values follow)."""
        self.state.accounts[account].base_currency = currency
        self._push_account(account)

    @threadsafe
    def set_master_client_id(self, client_id: int | None) -> None:
        """TWS's "Master API client ID" setting (None: no master); see sees()."""
        self.master_client_id = client_id

    @threadsafe
    def set_broadcast_executions(self, broadcast: bool) -> None:
        """True: every client sees every execution; False: TWS's rule (see sees())."""
        self.broadcast_executions = broadcast

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
    def convert(self, account: str, con_id: int, new: Contract, per_old_unit: Fraction) -> Holding:
        """A new-conId corporate action (SimState.convert). The old conId just stops being
        reported (IB's documentation does not say whether TWS pushes a zero row for it; the
        quieter case is simulated), the new one is pushed."""
        holding, _ = self.state.convert(account, con_id, new, per_old_unit)
        self._push_holding(holding)
        self._push_account(account)
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
        for session in self.ready_sessions(client_id):
            session.send(message)

    @threadsafe
    def break_server_link(self) -> None:
        """TWS's link to IB's servers breaks *without* 1100: warning 2110 to every client.

        IB's message codes: 2110 "Connectivity between TWS and server is broken. It will be
        restored automatically." — "usually only ... during the IB nightly server reset"
        (IB's TWS API message-codes page, as carried e.g. in client libraries' TWSMessageCode
        tables). Nothing else changes: answers go on from what TWS holds, which may be stale.
        """
        for session in self.ready_sessions():
            session.send(msg.error(-1, 2110, ERROR_TEXTS[2110]))

    @threadsafe
    def restore_server_link(self) -> None:
        """The link is back: the data farms report OK (2104, 2106, 2158), as at a connect. IB
        documents no dedicated "restored" code for 2110; farm notices are what clients see."""
        for session in self.ready_sessions():
            session.send(*(msg.error(-1, code, ERROR_TEXTS[code]) for code in (2104, 2106, 2158)))

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
        for session in self.ready_sessions(client_id):
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
        for session in self.ready_sessions():
            session.push_holding(holding, quantity_changed=quantity_changed)

    def _push_account(self, account: str) -> None:
        for session in self.ready_sessions():
            session.push_account(account)
