"""One client connection: handshake, request handling and the pushes it subscribed to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.sim import messages as msg
from app.sim.faults import (
    ACCOUNT_UPDATES_REFUSED_CODE,
    ACCOUNT_UPDATES_REFUSED_TEXT,
    POSITIONS_REFUSED_CODE,
    POSITIONS_REFUSED_TEXT,
    request_kind,
)
from app.sim.fields import mask_account
from app.sim.framing import (
    API_PREFIX,
    SERVER_VERSION,
    FrameError,
    decode_fields,
    encode_frames,
    parse_version_range,
    read_frame,
)
from app.sim.host import SessionHost
from app.sim.model import Execution, Holding
from app.sim.requests import ORDER_MESSAGES, In, request_name

logger = logging.getLogger(__name__)

READ_ONLY_TEXT = (
    "Error validating request.-'bB' : cause - The API interface is currently in Read-Only mode."
)
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
# Where the request id sits in requests we do not serve, so the refusal ends the client's wait.
_REFUSED: dict[int, tuple[int, int, str]] = {
    In.REQ_MKT_DATA: (2, 354, "Requested market data is not subscribed."),
    In.REQ_HISTORICAL_DATA: (1, 162, "Historical Market Data Service error message:No data"),
}


class ProtocolError(Exception):
    """The client broke the protocol; its connection is closed, the server goes on."""


class ClientSession:
    """The server side of one socket. Lives on the simulator's loop."""

    def __init__(
        self,
        server: SessionHost,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn_id: int,
    ) -> None:
        self.server = server
        self.state = server.state
        self.reader = reader
        self.writer = writer
        self.conn_id = conn_id
        self.client_id: int | None = None
        self.ready = False
        self.closed = False
        self.received: list[int] = []
        self.positions_subscribed = False
        self.positions_multi: dict[int, str] = {}  # reqPositionsMulti: reqId → account
        self.account_updates: str | None = None
        self.multi_subs: dict[int, list[str]] = {}
        self.summary_subs: dict[int, list[str]] = {}
        self.pnl_subs: dict[int, str] = {}
        self.pnl_single_subs: dict[int, tuple[str, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: dict[int, Callable[[list[str]], None]] = {
            In.REQ_POSITIONS: self._req_positions,
            In.CANCEL_POSITIONS: self._cancel_positions,
            In.REQ_POSITIONS_MULTI: self._req_positions_multi,
            In.CANCEL_POSITIONS_MULTI: self._cancel_positions_multi,
            In.REQ_ACCOUNT_UPDATES: self._req_account_updates,
            In.REQ_ACCOUNT_UPDATES_MULTI: self._req_account_updates_multi,
            In.CANCEL_ACCOUNT_UPDATES_MULTI: self._cancel_account_updates_multi,
            In.REQ_ACCOUNT_SUMMARY: self._req_account_summary,
            In.CANCEL_ACCOUNT_SUMMARY: self._cancel_account_summary,
            In.REQ_EXECUTIONS: self._req_executions,
            In.REQ_CONTRACT_DETAILS: self._req_contract_details,
            In.REQ_OPEN_ORDERS: self._req_open_orders,
            In.REQ_ALL_OPEN_ORDERS: self._req_open_orders,
            In.REQ_AUTO_OPEN_ORDERS: self._ignore,
            In.REQ_COMPLETED_ORDERS: self._req_completed_orders,
            In.REQ_IDS: self._req_ids,
            In.REQ_CURRENT_TIME: self._req_current_time,
            In.REQ_MANAGED_ACCTS: self._req_managed_accts,
            In.REQ_MARKET_DATA_TYPE: self._ignore,
            In.REQ_PNL: self._req_pnl,
            In.CANCEL_PNL: self._cancel_pnl,
            In.REQ_PNL_SINGLE: self._req_pnl_single,
            In.CANCEL_PNL_SINGLE: self._cancel_pnl_single,
        }

    # ------------------------------------------------------------------ lifecycle
    def __repr__(self) -> str:
        return f"<session #{self.conn_id} client {self.client_id}>"

    async def run(self) -> None:
        """Serve the socket until EOF, a protocol error or close()."""
        try:
            await asyncio.wait_for(self._handshake(), self.server.handshake_timeout)
            while not self.closed:
                payload = await read_frame(self.reader, self.server.max_frame)
                self._dispatch(decode_fields(payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            logger.debug("%r: peer closed", self)
        except TimeoutError:
            logger.warning("%r: no handshake in time; closing", self)
        except (FrameError, ProtocolError) as exc:
            logger.warning("%r: %s; closing this connection", self, exc)
        finally:
            self.close()

    async def _handshake(self) -> None:
        prefix = await self.reader.readexactly(len(API_PREFIX))
        if prefix != API_PREFIX:
            raise ProtocolError(f"bad prefix {prefix!r}")
        payload = await read_frame(self.reader, self.server.max_frame)
        text = payload.decode("ascii", errors="replace").rstrip("\0")
        versions = parse_version_range(text)
        if versions is None or not versions[0] <= SERVER_VERSION <= versions[1]:
            raise ProtocolError(f"cannot serve version range {text!r}")
        now = datetime.now(ZoneInfo(self.state.exec_zone))
        # One write with exactly two fields: ibapi reads the reply with a single recv().
        self.send(msg.handshake_reply(now))

    def close(self) -> None:
        """Close the socket after what was already written (FIN, not RST)."""
        if self.closed:
            return
        self.closed = True
        self.ready = False
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(RuntimeError):  # the loop is already shutting down
            self.writer.close()
        self.server.forget(self)

    def abort(self) -> None:
        """Drop the connection at once, discarding anything unsent."""
        if not self.closed:
            self.writer.transport.abort()
        self.close()

    def send(self, *messages: msg.Fields) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(encode_frames(list(messages)))

    def send_raw(self, data: bytes) -> None:
        if not self.closed and not self.writer.is_closing():
            self.writer.write(data)

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, fields: list[str]) -> None:
        if not fields:
            raise ProtocolError("empty frame")
        try:
            msg_id = int(fields[0])
        except ValueError:
            raise ProtocolError(f"garbage frame starting {fields[0][:20]!r}") from None
        if msg_id == In.START_API:
            try:
                self.client_id = int(fields[2])
            except (IndexError, ValueError):
                raise ProtocolError("malformed startApi") from None
        self.received.append(msg_id)
        self.server.record(self, msg_id)
        if msg_id == In.START_API:
            self._start_api()
            return
        if not self.ready:
            logger.info("%r: %s before startApi ignored", self, request_name(msg_id))
            return
        handler = self._handlers.get(msg_id)
        try:
            if handler is not None:
                self._respond(request_kind(msg_id), handler, fields)
            else:
                self._refuse(msg_id, fields)
        except (IndexError, ValueError) as exc:
            raise ProtocolError(f"malformed {request_name(msg_id)}: {exc}") from exc

    def _respond(self, kind: str, handler: Callable[[list[str]], None], fields: list[str]) -> None:
        delay = self.server.faults.delay_for(kind)
        if delay <= 0:
            handler(fields)
            return

        async def later() -> None:
            await asyncio.sleep(delay)
            if self.closed:
                return
            try:
                handler(fields)
            except (IndexError, ValueError) as exc:
                logger.warning("%r: malformed %s (%s); closing", self, kind, exc)
                self.close()

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _withheld(self, kind: str) -> bool:
        return kind in self.server.faults.withhold_end

    def _refuse(self, msg_id: int, fields: list[str]) -> None:
        """Requests we do not serve get the answer TWS gives: an error, never silence."""
        name = request_name(msg_id)
        if msg_id in ORDER_MESSAGES:
            logger.warning("%r sent %s: refused (read-only)", self, name)
            if msg_id == In.PLACE_ORDER:
                req_id = int(fields[1])
            elif msg_id == In.REQ_GLOBAL_CANCEL:
                req_id = -1
            else:
                req_id = int(fields[2])
            self.send(msg.error(req_id, 321, READ_ONLY_TEXT))
            return
        refused = _REFUSED.get(msg_id)
        if refused is not None:
            index, code, text = refused
            self.send(msg.error(int(fields[index]), code, text))
            return
        logger.warning("%r sent unsupported request %s", self, name)
        self.send(msg.error(-1, 320, f"Error reading request. Unsupported message id {msg_id}"))

    @staticmethod
    def _ignore(fields: list[str]) -> None:
        """Requests that TWS acknowledges with no message of their own."""

    # ------------------------------------------------------------------ connect
    def _start_api(self) -> None:
        client_id = self.client_id
        if client_id is None or self.server.client_id_in_use(client_id, self):
            logger.warning("client id %s already in use; refusing %r", client_id, self)
            self.send(
                msg.error(
                    -1,
                    326,
                    "Unable to connect as the client id is already in use. "
                    "Retry with a unique client id.",
                )
            )
            self.close()
            return
        self.ready = True
        logger.info("%r started the API", self)
        self.send(
            msg.managed_accounts(self.state.managed_accounts()),
            msg.next_valid_id(self.state.next_order_id),
            *(msg.error(-1, code, text) for code, text in FARM_NOTICES),
        )

    # ------------------------------------------------------------------ positions
    def _req_positions(self, fields: list[str]) -> None:
        faults = self.server.faults
        if faults.refuses_positions(len(self.state.managed_accounts())):
            # See Faults.refuse_positions: refused, and no positionEnd.
            self.send(msg.error(-1, POSITIONS_REFUSED_CODE, POSITIONS_REFUSED_TEXT))
            return
        self.positions_subscribed = True
        shown = (self.server.shown(h) for h in self.state.holdings.values())
        rows = [msg.position(h) for h in shown if h is not None]
        faults = self.server.faults
        drop_after = faults.drop_after_position_rows
        if drop_after is not None:
            if faults.drop_once:
                faults.drop_after_position_rows = None
            logger.info("%r: dropping after position row %s (fault)", self, drop_after)
            self.send(*rows[:drop_after])
            self.close()
            return
        if not self._withheld("positions"):
            rows.append(msg.position_end())
        self.send(*rows)

    def _cancel_positions(self, fields: list[str]) -> None:
        self.positions_subscribed = False

    def _req_positions_multi(self, fields: list[str]) -> None:
        """reqPositionsMulti(reqId, account, modelCode): "subscribe to updates from individual
        subaccounts" (tws-api/positions.html): that account's rows, positionMultiEnd, then a
        row whenever one of its positions changes. Model codes are not modelled ("" only)."""
        req_id, account = int(fields[2]), fields[3]
        self.positions_multi[req_id] = account
        accounts = self._accounts_for(account)
        shown = (self.server.shown(h) for a in accounts for h in self.state.holdings_of(a))
        rows = [msg.position_multi(req_id, h) for h in shown if h is not None]
        if not self._withheld("positions_multi"):
            rows.append(msg.position_multi_end(req_id))
        self.send(*rows)

    def _cancel_positions_multi(self, fields: list[str]) -> None:
        self.positions_multi.pop(int(fields[2]), None)

    # ------------------------------------------------------------------ account data
    def _req_account_updates(self, fields: list[str]) -> None:
        subscribe = fields[2] == "1"
        managed = self.state.managed_accounts()
        account = fields[3] if len(fields) > 3 and fields[3] else (managed[0] if managed else "")
        if not subscribe:
            self.account_updates = None
            return
        if self._account_updates_held(account):
            # See Faults.exclusive_account_updates: a warning, no data, no download end.
            self.send(msg.error(-1, ACCOUNT_UPDATES_REFUSED_CODE, ACCOUNT_UPDATES_REFUSED_TEXT))
            return
        if self.account_updates not in (None, account):
            # Only one reqAccountUpdates subscription per client: the new one replaces it.
            self.send(msg.error(-1, 2100, "API client has been unsubscribed from account data."))
        self.account_updates = account
        out = [
            msg.account_value(k, v, c, account) for k, v, c in self.state.account_values(account)
        ]
        shown = (self.server.shown(h) for h in self.state.holdings_of(account))
        out += [self._portfolio(h) for h in shown if h is not None]
        out.append(msg.account_time(self._hh_mm()))
        if not self._withheld("account_updates"):
            out.append(msg.account_download_end(account))
        logger.debug("%r: account updates for %s", self, mask_account(account))
        self.send(*out)

    def _account_updates_held(self, account: str) -> bool:
        """Another API client holds the one account-updates subscription for another account."""
        faults = self.server.faults
        if faults.account_updates_holder not in (None, account):
            return True
        if not faults.exclusive_account_updates:
            return False
        return any(
            s is not self and s.account_updates not in (None, account)
            for s in self.server.ready_sessions()
        )

    def _portfolio(self, holding: Holding) -> msg.Fields:
        return msg.portfolio_value(holding, *self.state.valuation(holding))

    def _hh_mm(self) -> str:
        return self.state.clock().astimezone(ZoneInfo(self.state.exec_zone)).strftime("%H:%M")

    def _accounts_for(self, account: str) -> list[str]:
        return self.state.managed_accounts() if account in ("", "All") else [account]

    def _req_account_updates_multi(self, fields: list[str]) -> None:
        req_id, account = int(fields[2]), fields[3]
        accounts = self._accounts_for(account)
        self.multi_subs[req_id] = accounts
        out = [
            msg.account_update_multi(req_id, acct, k, v, c)
            for acct in accounts
            for k, v, c in self.state.account_values(acct)
        ]
        if not self._withheld("account_updates_multi"):
            out.append(msg.account_update_multi_end(req_id))
        self.send(*out)

    def _cancel_account_updates_multi(self, fields: list[str]) -> None:
        self.multi_subs.pop(int(fields[2]), None)

    def _req_account_summary(self, fields: list[str]) -> None:
        req_id, tags = int(fields[2]), [t for t in fields[4].split(",") if t]
        self.summary_subs[req_id] = tags
        out = [
            msg.account_summary(req_id, acct, tag, value, currency)
            for acct in self.state.managed_accounts()
            for tag, value, currency in self.state.account_summary(acct, tags)
        ]
        if not self._withheld("account_summary"):
            out.append(msg.account_summary_end(req_id))
        self.send(*out)

    def _cancel_account_summary(self, fields: list[str]) -> None:
        self.summary_subs.pop(int(fields[2]), None)

    def _req_pnl(self, fields: list[str]) -> None:
        req_id, account = int(fields[1]), fields[2]
        self.pnl_subs[req_id] = account
        self.send(msg.pnl(req_id, *self.state.pnl(account)))

    def _cancel_pnl(self, fields: list[str]) -> None:
        self.pnl_subs.pop(int(fields[1]), None)

    def _req_pnl_single(self, fields: list[str]) -> None:
        req_id, account, con_id = int(fields[1]), fields[2], int(fields[4])
        self.pnl_single_subs[req_id] = (account, con_id)
        self.send(msg.pnl_single(req_id, *self.state.pnl_single(account, con_id)))

    def _cancel_pnl_single(self, fields: list[str]) -> None:
        self.pnl_single_subs.pop(int(fields[1]), None)

    # ------------------------------------------------------------------ executions & orders
    def _req_executions(self, fields: list[str]) -> None:
        if self.server.faults.silent_executions:
            return  # see Faults.silent_executions: no rows, no end
        req_id = int(fields[2])
        matching = [
            e
            for e in self.state.executions.values()
            if self.server.sees(self.client_id, e) and _matches(e, fields[3:10])
        ]
        zone = self.state.exec_zone
        form = self.state.exec_time_form
        out = [msg.exec_details(req_id, e, zone, form) for e in matching]
        # A withheld commissionReport is not in the answer until it was released.
        out += [msg.commission_report(e) for e in matching if not e.commission_pending]
        if not self._withheld("executions"):
            out.append(msg.exec_details_end(req_id))
        self.send(*out)

    # ------------------------------------------------------------------ contract details
    def _req_contract_details(self, fields: list[str]) -> None:
        """`9|8|reqId|conId|symbol|…`: the contract of that conId (the only way the app asks),
        with its priceMagnifier; error 200 for a conId TWS does not know, as TWS answers."""
        req_id = int(fields[2])
        try:
            contract = self.state.contract(int(fields[3] or 0))
        except KeyError:
            self.send(
                msg.error(req_id, 200, "No security definition has been found for the request")
            )
            return
        out = [msg.contract_data(req_id, contract)]
        if not self._withheld("contract_details"):
            out.append(msg.contract_data_end(req_id))
        self.send(*out)

    def _req_open_orders(self, fields: list[str]) -> None:
        # Fills complete at once, so nothing is ever working: just the end marker.
        if not self._withheld("open_orders"):
            self.send(msg.open_order_end())

    def _req_completed_orders(self, fields: list[str]) -> None:
        if not self._withheld("completed_orders"):
            self.send(msg.completed_orders_end())

    def _req_ids(self, fields: list[str]) -> None:
        self.send(msg.next_valid_id(self.state.next_order_id))

    def _req_current_time(self, fields: list[str]) -> None:
        self.send(msg.current_time(int(self.state.clock().timestamp())))

    def _req_managed_accts(self, fields: list[str]) -> None:
        self.send(msg.managed_accounts(self.state.managed_accounts()))

    # ------------------------------------------------------------------ pushes
    def push_fill(self, execution: Execution) -> None:
        """TWS's order for a fill: openOrder, orderStatus, execDetails(-1), …, commission."""
        if not self.ready:
            return
        shares = execution.shares
        self.send(
            msg.open_order(execution, "Submitted"),
            msg.order_status(execution, "Submitted", shares * 0, shares),
            msg.exec_details(-1, execution, self.state.exec_zone, self.state.exec_time_form),
            msg.open_order(execution, "Filled"),
            msg.order_status(execution, "Filled", shares, shares * 0),
            *self._commission(execution),
        )

    @staticmethod
    def _commission(execution: Execution) -> list[msg.Fields]:
        return [] if execution.commission_pending else [msg.commission_report(execution)]

    def push_commission(self, execution: Execution) -> None:
        """A commissionReport released after its execDetails."""
        if self.ready:
            self.send(msg.commission_report(execution))

    def push_correction(self, execution: Execution) -> None:
        """A corrected execution: the order again (new sessions may not know it), then 11, 59."""
        if not self.ready:
            return
        self.send(
            msg.open_order(execution, "Filled"),
            msg.order_status(execution, "Filled", execution.shares, execution.shares * 0),
            msg.exec_details(-1, execution, self.state.exec_zone, self.state.exec_time_form),
            *self._commission(execution),
        )

    def push_holding(self, holding: Holding, *, quantity_changed: bool = True) -> None:
        """A position row to position subscribers, a portfolio row to that account's.

        A price tick (`quantity_changed=False`) moves only the portfolio row: TWS's position
        subscription reports quantity and average cost, which a tick does not change.
        """
        if not self.ready:
            return
        out: list[msg.Fields] = []
        shown = self.server.shown(holding)
        if shown is not None and self.positions_subscribed and quantity_changed:
            out.append(msg.position(shown))
        if shown is not None and quantity_changed:
            out += [
                msg.position_multi(req_id, shown)
                for req_id, account in self.positions_multi.items()
                if account in ("", "All", holding.account)
            ]
        if shown is not None and self.account_updates == holding.account:
            out.append(self._portfolio(shown))
            out.append(msg.account_time(self._hh_mm()))
        for req_id, (account, con_id) in self.pnl_single_subs.items():
            if account == holding.account and con_id == holding.contract.con_id:
                out.append(msg.pnl_single(req_id, *self.state.pnl_single(account, con_id)))
        if out:
            self.send(*out)

    def push_account(self, account: str) -> None:
        """Account values to the subscribers of `account` (6, 73 and 94)."""
        if not self.ready:
            return
        values = self.state.account_values(account)
        out: list[msg.Fields] = []
        if self.account_updates == account:
            out += [msg.account_value(k, v, c, account) for k, v, c in values]
        for req_id, accounts in self.multi_subs.items():
            if account in accounts:
                out += [msg.account_update_multi(req_id, account, k, v, c) for k, v, c in values]
        for req_id, pnl_account in self.pnl_subs.items():
            if pnl_account == account:
                out.append(msg.pnl(req_id, *self.state.pnl(account)))
        if out:
            self.send(*out)


def _matches(e: Execution, flt: list[str]) -> bool:
    """reqExecutions filter: clientId acctCode time symbol secType exchange side (empty = any)."""
    flt = flt + [""] * (7 - len(flt))
    client_id, account, since, symbol, sec_type, exchange, side = flt[:7]
    if client_id not in ("", "0") and int(client_id) != e.client_id:
        return False
    if account and account != e.account:
        return False
    if symbol and symbol != e.contract.symbol:
        return False
    if sec_type and sec_type != e.contract.sec_type:
        return False
    if exchange and exchange != e.exchange:
        return False
    if side and side[:1] != e.side[:1]:  # BUY/BOT, SELL/SLD
        return False
    if since:
        cutoff = _parse_filter_time(since)
        if cutoff is not None and e.time < cutoff:
            return False
    return True


def _parse_filter_time(text: str) -> datetime | None:
    """`yyyymmdd hh:mm:ss` or `yyyymmdd-hh:mm:ss`, read as UTC (the API's documented form)."""
    try:
        return datetime.strptime(text[:17].replace("-", " "), "%Y%m%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
