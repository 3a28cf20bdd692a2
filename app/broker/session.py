"""One TWS connection: its ib_insync IB object, the hooks on its decoder, its LiveBook, and the
snapshots taken over it. The hooks and every other use of ib_insync's internals go through
app.broker.ib_internals; this module uses ib_insync's documented API only.

A new session (and a new IB object) is made for every connection attempt, so nothing ib_insync
or we remember from before a drop survives into the next connection (DESIGN rule 1: the socket
stayed up throughout). Only `…Async` requests are used, each bounded by the session's timeout,
on whatever loop is running (plain asyncio or qasync); nothing here creates or patches a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from ib_insync import RequestError

from app.broker.contract_details import PriceUnits
from app.broker.convert import (
    PORTFOLIO_FIELDS,
    POSITION_FIELDS,
    Commission,
    ExecTime,
    Mark,
    RowError,
    account_value_fields,
    commission_fields,
    execution_time,
    fill_from_ib,
    portfolio_fields,
    position_fields,
    row_key,
)
from app.broker.gaps import (
    ACCOUNT_REFUSED,
    IB_SERVER_LINK_BROKEN,
    IB_SERVER_LINK_MESSAGE,
    SERVER_LINK_OK,
    PositionsMulti,
    Refusals,
    multi_as_position,
    positions_refusal,
    use_positions_multi,
)
from app.broker.guard import install_guard
from app.broker.ib_internals import (
    Forward,
    Hook,
    ReadOnlyIB,
    connect_api,
    drop_account_summary_resubscribe,
    hook_decoder,
    on_socket_closed,
    read_in_small_chunks,
    socket_open,
)
from app.broker.live import LiveBook
from app.broker.logs import IB_LOG_MASK, mask_account
from app.domain.connection import (
    BrokerEvent,
    BrokerEventKind,
    BrokerUnavailableError,
    ConnectionState,
    ConnectionStatus,
    IncompleteSnapshotError,
)
from app.domain.values import BrokerPosition, BrokerSnapshot, Fill, PositionKey, SkippedRow

logger = logging.getLogger(__name__)

StatusSink = Callable[[ConnectionStatus], None]
EventSink = Callable[[BrokerEvent], None]

IB_LOST = 1100
IB_RESTORED_DATA_LOST = 1101
IB_RESTORED = 1102
CLIENT_ID_IN_USE = 326

IB_LOST_MESSAGE = (
    "TWS lost its connection to IB's servers (error 1100); syncing is paused until it is restored."
)


EXECUTIONS_GRACE = 0.5
"""Seconds a snapshot waits for execDetailsEnd once this connection saw one never come."""


class ClientIdInUseError(ConnectionError):
    """TWS refused the API connection: another client already uses this client id (326)."""


class _Watch:
    """One snapshot's view of the connection: breaks on a drop, 1100, restore or stop."""

    def __init__(self, generation: int, timeout: float) -> None:
        self.generation = generation
        self.timeout = timeout
        self.broken: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def break_with(self, reason: str) -> None:
        if not self.broken.done():
            self.broken.set_result(reason)

    async def wait(
        self, request: Callable[[], Awaitable[Any]], what: str, within: float | None = None
    ) -> Any:
        """Send `request` and wait for its end marker, the connection breaking, or timeout
        (`within` seconds instead of the session's, when given)."""
        limit = self.timeout if within is None else within
        if self.broken.done():
            raise IncompleteSnapshotError(f"{self.broken.result()} before the {what} request")
        try:
            future = asyncio.ensure_future(request())
        except ConnectionError as exc:
            raise IncompleteSnapshotError(f"could not send the {what} request: {exc}") from exc
        try:
            await asyncio.wait(
                (future, self.broken), timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not future.done():
                future.cancel()  # ib_insync skips cancelled futures when the answer comes
        if future.done() and not future.cancelled():
            try:
                return future.result()
            except ConnectionError as exc:
                raise IncompleteSnapshotError(
                    f"the connection to TWS dropped during the {what} request"
                ) from exc
            except RequestError as exc:
                raise IncompleteSnapshotError(
                    f"TWS answered the {what} request with error {exc.code}: {exc.message}"
                ) from exc
            except Exception as exc:  # whatever it is, the answer is not a complete one
                raise IncompleteSnapshotError(f"the {what} request failed: {exc!r}") from exc
        if self.broken.done():
            raise IncompleteSnapshotError(f"{self.broken.result()} during the {what} request")
        raise IncompleteSnapshotError(
            f"no complete answer to the {what} request within {limit:g} s"
        )


class IbSession:
    """A single API connection to TWS / IB Gateway, read-only."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: int,
        account: str,
        timeout: float,
        on_status: StatusSink,
        on_event: EventSink,
        tws_timezone: str = "UTC",
        price_units: PriceUnits | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.host = host
        self.port = port
        self.client_id = client_id
        self.account = account
        self.timeout = timeout
        self._on_status = on_status
        self._on_event = on_event
        self.book = LiveBook()
        self._decoded = DecodedRows()
        self.commissions: dict[str, Commission] = {}
        # Our reading of each execution's time text (or why it could not be read): see
        # convert.execution_time. `tws_timezone` is the TWS login's zone, for zone-less times.
        self.tws_timezone = tws_timezone
        self.exec_times: dict[str, ExecTime | RowError] = {}
        self._zone_assumed = False
        self.ready = False
        self.ib_lost = False
        self._lost_by = IB_LOST  # the code that paused syncing: 1100 or 2110
        self._closed: asyncio.Future[str] = loop.create_future()
        self._transport_closed: asyncio.Future[None] = loop.create_future()
        self._watches: set[_Watch] = set()
        # priceMagnifier per contract (app.broker.contract_details); shared across connections.
        self.price_units = price_units if price_units is not None else PriceUnits()
        self._account_refusals = Refusals()
        self._positions_refusals = Refusals()
        self._multi = PositionsMulti()
        self._positions_refused: str | None = None  # why TWS refused reqPositions, if it did
        # An executions answer of this connection did not end (TWS 10.30): later snapshots
        # wait only EXECUTIONS_GRACE for theirs, so a fill's sync is not held `timeout` each
        # time; any execDetailsEnd clears it.
        self._executions_unended = False

        ib = ReadOnlyIB()  # type: ignore[no-untyped-call]
        # ib_insync's own Execution.time then agrees with ours for zone-less times (it would
        # read them in this machine's zone); the fills we book use exec_times all the same.
        ib.TimezoneTWS = tws_timezone
        # An error answering one of our requests must fail it, not end it with a partial list.
        ib.RaiseRequestErrors = True
        # No stray reqAccountSummary task after 1102 (ib_internals, internal 3).
        drop_account_summary_resubscribe(ib)
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected
        on_socket_closed(ib, self._on_transport_closed)
        read_in_small_chunks(ib)
        install_guard(ib.client, self._on_request)
        hooks: dict[int, Hook] = {
            15: self._on_managed_accounts,
            61: self._on_position,
            62: self._on_position_end,
            7: self._on_portfolio,
            6: self._on_account_value,
            54: self._on_account_end,
            11: self._on_execution,
            55: self._on_execution_end,
            59: self._on_commission,
            71: self._on_position_multi,
            72: self._on_position_multi_end,
        }
        hook_decoder(ib, hooks)
        self.ib = ib

    # ------------------------------------------------------------------ connect / close
    async def connect(self) -> None:
        """Connect read-only; raises ConnectionRefusedError/OSError, TimeoutError,
        ClientIdInUseError or ConnectionError (closed during the handshake)."""
        loop = asyncio.get_running_loop()
        failure: asyncio.Future[BaseException] = loop.create_future()

        def on_error(req_id: int, code: int, text: str, contract: Any) -> None:
            if code == CLIENT_ID_IN_USE and not failure.done():
                failure.set_result(ClientIdInUseError(f"client id {self.client_id} in use"))

        def on_api_error(message: str) -> None:
            # TWS closed the socket before the API was ready (after a 326, or on overload).
            if not failure.done():
                failure.set_result(ConnectionError(message))

        self.ib.errorEvent += on_error
        self.ib.client.apiError += on_api_error
        connecting = asyncio.ensure_future(self._connect_and_subscribe())
        try:
            # ib_insync bounds each stage (socket, handshake) by `timeout`; this is only a
            # backstop for both together. Nothing else is awaited here (ib_internals.connect_api).
            await asyncio.wait(
                (connecting, failure),
                timeout=self.timeout * 4 + 1,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if not connecting.done():
                connecting.cancel()
                await asyncio.wait((connecting,))
            self.ib.errorEvent -= on_error
            self.ib.client.apiError -= on_api_error
        if failure.done() and isinstance(failure.result(), ClientIdInUseError):
            raise failure.result()
        if connecting.done() and not connecting.cancelled():
            connecting.result()  # raises what connectAsync raised
            if self._closed.done() or not self.ib.isConnected():
                raise ConnectionError("TWS closed the connection right after connecting")
            self.ready = True
            accounts = list(self.ib.client.getAccounts())
            self.book.set_managed(accounts)
            IB_LOG_MASK.remember(accounts)
            logger.info(
                "connected to %s:%s as client id %s; accounts %s",
                self.host,
                self.port,
                self.client_id,
                ", ".join(mask_account(a) for a in self.book.managed),
            )
            return
        if failure.done():
            raise failure.result()
        raise TimeoutError(f"no answer from TWS within {self.timeout * 4 + 1:g} s")

    async def _connect_and_subscribe(self) -> None:
        """The API handshake, then the subscriptions ib_insync's connect would make (positions;
        account updates of a single or the configured account), each bounded and best-effort:
        the snapshots ask again for whatever did not end. No executions (see
        ib_internals.connect_api)."""
        await connect_api(self.ib, self.host, self.port, self.client_id, self.timeout)
        accounts = self.ib.client.getAccounts()
        account = self.account or (accounts[0] if len(accounts) == 1 else "")
        requests: dict[str, Awaitable[Any]] = {}
        if not use_positions_multi(len(accounts), None):
            requests["positions"] = self._positions_refusals.race(self.ib.reqPositionsAsync())
        if account:
            requests["account updates"] = self._account_refusals.race(
                self.ib.reqAccountUpdatesAsync(account)
            )
        answers = await asyncio.gather(
            *(asyncio.wait_for(r, self.timeout) for r in requests.values()), return_exceptions=True
        )
        for name, answer in zip(requests, answers, strict=True):
            if isinstance(answer, BaseException):
                logger.warning("the connect's %s request did not end: %r", name, answer)

    async def wait_closed(self) -> str:
        """Wait until the connection ends; returns why."""
        return await asyncio.shield(self._closed)

    @property
    def closed(self) -> bool:
        return self._closed.done()

    def close(self, reason: str) -> None:
        """Disconnect (idempotent). Snapshots in flight fail with `reason`."""
        self._mark_closed(reason)
        client = self.ib.client
        if client.isConnected():  # type: ignore[no-untyped-call]
            self.ib.disconnect()  # type: ignore[no-untyped-call]
        else:
            client.disconnect()  # type: ignore[no-untyped-call]

    async def aclose(self, reason: str, wait: float = 2.0) -> None:
        """close(), then wait (bounded) until the socket is really closed."""
        opened = socket_open(self.ib)
        self.close(reason)
        if opened and not self._transport_closed.done():
            await asyncio.wait((self._transport_closed,), timeout=wait)
        # The rows die with the connection (the next one starts a new book). Dropping them now
        # frees them at once: the session itself is in reference cycles with ib_insync and
        # waits for a whole-heap collection, which would hold tens of MB per 20,000 positions
        # until then and make that collection long (a 3 s pause after four reconnects).
        self.book = LiveBook()
        self._decoded = DecodedRows()
        self.exec_times = {}

    def _mark_closed(self, reason: str) -> None:
        self.ready = False
        if not self._closed.done():
            self._closed.set_result(reason)
        for watch in list(self._watches):
            watch.break_with(reason)

    def _on_disconnected(self) -> None:
        self._mark_closed("the connection to TWS dropped")

    def _on_transport_closed(self, message: str) -> None:
        if not self._transport_closed.done():
            self._transport_closed.set_result(None)

    # ------------------------------------------------------------------ connectivity
    def _on_error(self, req_id: int, code: int, text: str, contract: Any) -> None:
        self.book.executions_pending.discard(req_id)
        if code == ACCOUNT_REFUSED:
            self._account_refusals.refuse(code, text)
        elif req_id == -1 and self.book.positions_pending is not None:
            refusal = positions_refusal(code, text)
            if refusal is not None:
                self._positions_refused = refusal
                self._positions_refusals.refuse(code, text)
        if code in (IB_LOST, IB_SERVER_LINK_BROKEN):
            # 2110 (TWS <-> IB's servers broken) can come without 1100: what TWS holds then
            # may be stale, so it pauses syncing just the same (app.broker.gaps).
            self.book.invalidate()
            for watch in list(self._watches):
                watch.break_with(f"TWS lost its connection to IB (error {code})")
            if not self.ib_lost:
                self.ib_lost = True
                self._lost_by = code
                logger.warning("TWS lost its connection to IB (%s); syncing paused", code)
                if self.ready:
                    self._on_status(ConnectionStatus(ConnectionState.IB_LOST, self._lost_text()))
        elif code in (IB_RESTORED_DATA_LOST, IB_RESTORED) or (
            # After a 2110 TWS may announce the way back only with its farm notices.
            code in SERVER_LINK_OK and self.ib_lost and self._lost_by == IB_SERVER_LINK_BROKEN
        ):
            # Whatever we held may have missed updates while IB was away: request it all again.
            self.book.invalidate()
            for watch in list(self._watches):
                watch.break_with(f"TWS's connection to IB was restored ({code}) meanwhile")
            was_lost, self.ib_lost = self.ib_lost, False
            logger.info("TWS's connection to IB restored (%s)", code)
            if self.ready:
                detail = {
                    IB_RESTORED_DATA_LOST: "data lost",
                    IB_RESTORED: "data maintained",
                }.get(code, "data farms OK after error 2110")
                self._on_status(
                    ConnectionStatus(
                        ConnectionState.CONNECTED,
                        f"{self.describe()}; IB connectivity restored ({code}, {detail})"
                        if was_lost
                        else self.describe(),
                    )
                )

    def describe(self) -> str:
        """`Connected to TWS at host:port as client id N`."""
        return f"Connected to TWS at {self.host}:{self.port} as client id {self.client_id}"

    def status(self) -> ConnectionStatus:
        """What the banner should say about this (connected) session."""
        if self.ib_lost:
            return ConnectionStatus(ConnectionState.IB_LOST, self._lost_text())
        return ConnectionStatus(ConnectionState.CONNECTED, self.describe())

    def _lost_text(self) -> str:
        return IB_SERVER_LINK_MESSAGE if self._lost_by == IB_SERVER_LINK_BROKEN else IB_LOST_MESSAGE

    # ------------------------------------------------------------------ outgoing requests
    def _on_request(self, fields: list[str]) -> None:
        """Every request that passed the guard: note which answers are now in flight."""
        msg_id = fields[0]
        if msg_id == "61":
            self.book.begin_positions()
        elif msg_id == "6" and len(fields) > 3 and fields[2] == "1" and fields[3]:
            self.book.begin_account(fields[3])
        elif msg_id == "7" and len(fields) > 2:
            self.book.executions_pending.add(int(fields[2]))
            self.book.executions_request = int(fields[2])

    # ------------------------------------------------------------------ incoming rows
    def _emit(self, kind: BrokerEventKind, key: PositionKey | None) -> None:
        if self.account and key is not None and key[0] != self.account:
            return  # another managed account, outside the `account` limit: not ours to sync
        self._on_event(BrokerEvent(kind, key))

    def _on_managed_accounts(self, fields: list[str], forward: Forward) -> None:
        if len(fields) == 3:
            self.book.set_managed(fields[2].split(","))
            IB_LOG_MASK.remember(self.book.managed)
        forward(fields)

    def _on_position(self, fields: list[str], forward: Forward) -> None:
        # Not forwarded: ib_insync would read an empty quantity as an explicit 0 (a close) and
        # drop a garbled row silently (an absence). We keep our own book instead.
        solicited = self.book.positions_pending is not None
        try:
            row = self._decoded.position(fields)
        except RowError as exc:
            key = row_key(fields[2], fields[3]) if len(fields) > 3 else None
            self.book.skip(key, str(exc))
            if not solicited:
                self._emit(BrokerEventKind.POSITION, key)
            return
        if row.account not in self.book.managed_set:
            self.book.skip(
                row.key, f"account {mask_account(row.account)} is not managed by this login"
            )
            return
        self.book.put_position(row)
        if not solicited:
            self._emit(BrokerEventKind.POSITION, row.key)

    def _on_position_multi(self, fields: list[str], forward: Forward) -> None:
        # Read as a position row: the same book, the same bad-row rules (not forwarded:
        # ib_insync's wrapper ignores these rows anyway).
        try:
            known = self._multi.knows(int(fields[2]))
        except (IndexError, ValueError):
            known = False
        if known:
            self._on_position(multi_as_position(fields), forward)

    def _on_position_multi_end(self, fields: list[str], forward: Forward) -> None:
        with contextlib.suppress(IndexError, ValueError):
            self._multi.end(int(fields[2]))

    def _on_position_end(self, fields: list[str], forward: Forward) -> None:
        self.book.end_positions()
        forward(fields)

    def _on_portfolio(self, fields: list[str], forward: Forward) -> None:
        # Not forwarded either: we merge market data into our own rows by (account, conId).
        try:
            key, quantity, mark = self._decoded.portfolio(fields)
        except RowError as exc:
            # Quantities come from position rows; a bad portfolio row only costs market data.
            account = fields[19] if len(fields) > 19 else ""
            logger.warning("ignored a portfolio row of %s: %s", mask_account(account), exc)
            return
        if key[0] not in self.book.managed_set:
            logger.warning("ignored a portfolio row of unmanaged %s", mask_account(key[0]))
            return
        self.book.put_mark(key, quantity == 0, mark)
        if key[0] not in self.book.accounts_pending:
            # Quantity changes also arrive as position (61) pushes; this one is market data.
            self._emit(BrokerEventKind.MARKET, key)

    def _on_account_value(self, fields: list[str], forward: Forward) -> None:
        # Forwarded unchanged (ib_insync keeps its accountValues); the exchange rates and the
        # base currency are also read here, best-effort: a row we cannot read costs only them.
        try:
            row = account_value_fields(fields)
        except RowError as exc:
            logger.debug("ignored an account value: %s", exc)
        else:
            if row.account in self.book.managed_set:
                self.book.put_account_value(row.account, row.tag, row.value, row.currency)
        forward(fields)

    def _on_account_end(self, fields: list[str], forward: Forward) -> None:
        if len(fields) == 3:
            self.book.end_account(fields[2])
        forward(fields)

    def _on_execution(self, fields: list[str], forward: Forward) -> None:
        exec_id = fields[14] if len(fields) > 14 else ""
        if exec_id and len(fields) > 15:
            self._read_time(exec_id, fields[15])
        key = row_key(fields[16], fields[3]) if len(fields) > 16 else None
        try:
            live = int(fields[1]) not in self.book.executions_pending
        except (IndexError, ValueError):
            live = True
        try:
            forward(fields)
        except Exception as exc:  # ib_insync could not decode it: the fill is lost to it
            self.book.skip_execution(exec_id, key, f"unreadable execution row ({exc})")
        else:
            if exec_id:
                self.book.exec_skipped.pop(exec_id, None)
                if key is not None:
                    self.book.exec_keys[exec_id] = key
        if live:
            self._emit(BrokerEventKind.EXECUTION, key)

    def _read_time(self, exec_id: str, text: str) -> None:
        """Read one execution's time; say once per connection that zone-less times were read
        in tws_timezone, and each time a local time was ambiguous (DST fall-back)."""
        try:
            read = execution_time(text, self.tws_timezone)
        except RowError as exc:
            self.exec_times[exec_id] = exc
            return
        self.exec_times[exec_id] = read
        if not read.zoned and not self._zone_assumed:
            self._zone_assumed = True
            logger.warning(
                "execution times without a zone read as %s (the tws_timezone setting: the TWS "
                "login's time zone); TWS sent %r",
                read.zone,
                text,
            )
        if read.ambiguous:
            logger.warning(
                "execution %s at %r: that local time occurs twice in %s (clocks went back); "
                "read as the earlier, %s UTC",
                exec_id,
                text,
                read.zone,
                read.at.strftime("%H:%M:%S"),
            )

    def _on_execution_end(self, fields: list[str], forward: Forward) -> None:
        self._executions_unended = False  # TWS answers executions again
        if len(fields) == 3:
            with contextlib.suppress(ValueError):
                self.book.end_executions(int(fields[2]))
        forward(fields)

    def _on_commission(self, fields: list[str], forward: Forward) -> None:
        try:
            exec_id, commission = commission_fields(fields)
        except RowError as exc:
            logger.warning("ignored a commission report: %s", exc)
            return
        self.commissions[exec_id] = commission
        try:
            forward(fields)
        except Exception:  # ib_insync's copy is not used; ours is already stored
            logger.debug("ib_insync could not decode commission report %s", exec_id)
        if not self.book.executions_pending:
            self._emit(BrokerEventKind.EXECUTION, self.book.exec_keys.get(exec_id))

    # ------------------------------------------------------------------ snapshots
    def live_positions(self, keys: Iterable[PositionKey] | None = None) -> list[BrokerPosition]:
        """What this connection holds now for its accounts (no request; may lag a snapshot)."""
        wanted = set(self.book.managed) if not self.account else {self.account}
        if keys is None:
            rows = [row for key, row in self.book.rows.items() if key[0] in wanted]
        else:
            rows = [r for key in keys if key[0] in wanted and (r := self.book.rows.get(key))]
        return list(self.price_units.rows(rows))  # the ledger's price units (contract_details)

    def covered_accounts(self) -> tuple[str, ...]:
        """Every managed account, or only the configured one (which must be managed)."""
        managed = self.book.managed
        if self.account:
            if self.account not in managed:
                listed = ", ".join(mask_account(a) for a in managed) or "none"
                raise IncompleteSnapshotError(
                    f"account {mask_account(self.account)} is not managed by this TWS login "
                    f"(it manages {listed}); check the ib_account setting (--account)"
                )
            return (self.account,)
        if not managed:
            raise IncompleteSnapshotError("TWS reported no managed accounts")
        return managed

    async def snapshot(
        self, scope: frozenset[PositionKey] | None, *, refresh: bool = False
    ) -> BrokerSnapshot:
        """A complete snapshot over this connection, or IncompleteSnapshotError.

        Reuses what the live subscriptions already delivered in this generation (positions
        after their positionEnd; the subscribed account's market data after its download end).
        With `refresh`, what an earlier snapshot already used is requested again; an answer no
        snapshot used yet (the connect's own request, moments ago) is as fresh as a new one.
        Executions are always requested again.
        """
        if not self.ready or self.closed:
            raise BrokerUnavailableError("not connected to TWS")
        if self.ib_lost:
            raise BrokerUnavailableError(self._lost_text())
        accounts = self.covered_accounts()
        watch = _Watch(self.book.generation, self.timeout)
        self._watches.add(watch)
        try:
            if not self.book.positions_current() or (refresh and self.book.positions_served):
                await self._request_positions(watch, accounts)
            in_scope = {key[0] for key in scope} if scope is not None else None
            # Market data is best-effort (DESIGN rule 1): an account TWS does not serve (2101:
            # another API client holds the one account-updates subscription) or whose download
            # does not end keeps its last prices, and the snapshot says which accounts.
            stale: dict[str, str] = {}
            for account in accounts:
                if in_scope is not None and account not in in_scope:
                    continue
                current = self.book.account_current(account, live_only=scope is None)
                if not current or (refresh and account in self.book.accounts_served):
                    reason = await self._request_account(watch, account)
                    if reason is not None:
                        stale[account] = reason
            # Executions too: without their end the positions still sync, their changes as
            # estimates (ib_internals.connect_api names the TWS regression that withholds the end).
            # What did arrive is used: the rows of the unended answer and the executions pushed
            # live since the connect ("Executions that occur from trades filling after the
            # client has connected are collected and available": ib_async#54), each a fact.
            fills_unavailable: str | None = None
            within = min(self.timeout, EXECUTIONS_GRACE) if self._executions_unended else None
            try:
                ib_fills = await watch.wait(self.ib.reqExecutionsAsync, "executions", within)
            except IncompleteSnapshotError as exc:
                self.book.executions_pending.clear()
                if self._broken(watch):
                    raise  # a broken connection fails the snapshot, as before
                self._executions_unended = True
                ib_fills, fills_unavailable = list(self.ib.fills()), exc.reason
                logger.warning(
                    "fills incomplete: %s; positions sync with the %d executions seen",
                    exc.reason,
                    len(ib_fills),
                )
            self._check(watch)
            fills, fill_skips = self._fills(ib_fills, accounts)
            snapshot = self.book.assemble(accounts, scope, fills, fill_skips)
            snapshot = replace(
                snapshot,
                stale_prices=tuple(sorted(stale.items())),
                fills_unavailable=fills_unavailable,
            )
            snapshot = await self.price_units.settle(
                snapshot, self.ib.reqContractDetailsAsync, self.timeout
            )
            self._check(watch)  # the connection held while contract details were asked too
            self.book.served(accounts if in_scope is None else in_scope)
            return snapshot
        finally:
            self._watches.discard(watch)

    async def _request_positions(self, watch: _Watch, accounts: tuple[str, ...]) -> None:
        """Positions of every covered account, ended; IncompleteSnapshotError otherwise.

        reqPositions, or one reqPositionsMulti per account where reqPositions is not served:
        a login with more than 50 accounts, or one whose reqPositions TWS refused.
        """
        managed = len(self.book.managed)
        if use_positions_multi(managed, self._positions_refused):
            await self._request_positions_multi(watch, accounts)
            return

        def request() -> Awaitable[Any]:
            return self._positions_refusals.race(self.ib.reqPositionsAsync())

        try:
            await watch.wait(request, "positions")
        except IncompleteSnapshotError as exc:
            self.book.abandon_positions()
            if self._positions_refused is None or self._broken(watch):
                raise
            logger.warning("%s; asking reqPositionsMulti per account instead", exc.reason)
            await self._request_positions_multi(watch, accounts)
            return
        if not self.book.positions_current():
            raise IncompleteSnapshotError(
                "positionEnd arrived for a request older than the current connection state"
            )

    async def _request_positions_multi(self, watch: _Watch, accounts: tuple[str, ...]) -> None:
        for req_id in self._multi.drop_all():
            with contextlib.suppress(ConnectionError):
                self.ib.client.cancelPositionsMulti(req_id)  # type: ignore[no-untyped-call]
        # One positions answer made of one request per account: the book treats them as one
        # reqPositions (begun now, ended when the last account's positionMultiEnd came).
        self.book.begin_positions()
        client = self.ib.client
        for account in accounts:
            req_id, ended = self._multi.start(account, client.getReqId())

            async def send(
                req_id: int = req_id, account: str = account, ended: asyncio.Future[None] = ended
            ) -> None:
                client.reqPositionsMulti(req_id, account, "")  # type: ignore[no-untyped-call]
                await asyncio.shield(ended)

            what = f"positions of {mask_account(account)} (reqPositionsMulti)"
            try:
                await watch.wait(send, what)
            except IncompleteSnapshotError:
                self.book.abandon_positions()
                raise
        self.book.end_positions()
        if not self.book.positions_current():
            raise IncompleteSnapshotError(
                "positionMultiEnd arrived for a request older than the current connection state"
            )

    async def _request_account(self, watch: _Watch, account: str) -> str | None:
        """Subscribe to `account`'s updates and wait for its download end; None when it came,
        else why not (the connection breaking raises IncompleteSnapshotError)."""
        what = f"account data of {mask_account(account)}"

        def request() -> Awaitable[Any]:
            return self._account_refusals.race(self.ib.reqAccountUpdatesAsync(account))

        try:
            await watch.wait(request, what)
        except IncompleteSnapshotError as exc:
            self.book.abandon_account(account)
            if self._broken(watch):
                raise
            logger.warning("prices of %s stale: %s", mask_account(account), exc.reason)
            return exc.reason
        if not self.book.account_current(account, live_only=False):
            return f"the {what} did not end"
        return None

    def _broken(self, watch: _Watch) -> bool:
        """The snapshot cannot be complete any more (what _check raises for)."""
        return (
            watch.broken.done()
            or self.closed
            or not self.ib.isConnected()
            or self.ib_lost
            or self.book.generation != watch.generation
        )

    def _check(self, watch: _Watch) -> None:
        """The socket stayed up and IB stayed connected throughout (DESIGN rule 1)."""
        if watch.broken.done():
            raise IncompleteSnapshotError(f"{watch.broken.result()} during the snapshot")
        if self.closed or not self.ib.isConnected():
            raise IncompleteSnapshotError("the connection to TWS dropped during the snapshot")
        if self.ib_lost or self.book.generation != watch.generation:
            raise IncompleteSnapshotError("TWS's connection to IB changed during the snapshot")

    def _fills(
        self, ib_fills: list[Any], accounts: tuple[str, ...]
    ) -> tuple[list[Fill], list[SkippedRow]]:
        fills: dict[str, Fill] = {}
        skipped: list[SkippedRow] = []
        managed = set(self.book.managed)
        wanted = set(accounts)
        for ib_fill in ib_fills:
            exec_id = str(ib_fill.execution.execId)
            account = str(ib_fill.execution.acctNumber)
            key = row_key(account, str(ib_fill.contract.conId))
            try:
                time = self.exec_times.get(exec_id)
                if isinstance(time, RowError):
                    raise RowError(str(time))
                fill = fill_from_ib(ib_fill, self.commissions.get(exec_id), time)
            except RowError as exc:
                skipped.append(SkippedRow(key, f"execution {exec_id}: {exc}"))
                logger.warning(
                    "skipped execution %s of %s: %s", exec_id, mask_account(account), exc
                )
                continue
            if fill.account not in managed:
                reason = f"account {mask_account(fill.account)} is not managed by this login"
                skipped.append(SkippedRow(fill.key, f"execution {exec_id}: {reason}"))
                logger.warning("skipped execution %s: %s", exec_id, reason)
                continue
            if fill.account in wanted:
                fills[exec_id] = fill  # the last report of an execId wins
        return list(fills.values()), skipped


class DecodedRows:
    """Position and portfolio rows decoded once per connection while their text stays the same.

    A full resync receives every row again, almost all of them unchanged; decoding is a pure
    function of the row's text, so an identical text gets the identical (immutable) result back
    instead of a new one, and LiveBook's merge of rows with market data is skipped too. One
    entry per (account, conId): the last text seen and what it decoded to, by account and then
    by conId text (20,000 entries then share a few dozen interned account codes instead of
    holding an (account, conId) pair and an account string each).
    """

    def __init__(self) -> None:
        self._positions: dict[str, dict[str, tuple[str, BrokerPosition]]] = {}
        self._portfolio: dict[str, dict[str, tuple[str, tuple[PositionKey, Decimal, Mark]]]] = {}

    def position(self, fields: list[str]) -> BrokerPosition:
        """`position_fields(fields)`; raises RowError alike (errors are not remembered)."""
        if len(fields) != POSITION_FIELDS:
            return position_fields(fields)
        text = "\0".join(fields)
        by_con_id = self._positions.get(fields[2])
        known = by_con_id.get(fields[3]) if by_con_id is not None else None
        if known is not None and known[0] == text:
            return known[1]
        row = position_fields(fields)
        if by_con_id is None:
            by_con_id = self._positions.setdefault(row.account, {})  # interned by the decoding
        by_con_id[fields[3]] = (text, row)
        return row

    def portfolio(self, fields: list[str]) -> tuple[PositionKey, Decimal, Mark]:
        """`portfolio_fields(fields)`; raises RowError alike (errors are not remembered)."""
        if len(fields) != PORTFOLIO_FIELDS:
            return portfolio_fields(fields)
        text = "\0".join(fields)
        by_con_id = self._portfolio.get(fields[19])
        known = by_con_id.get(fields[2]) if by_con_id is not None else None
        if known is not None and known[0] == text:
            return known[1]
        decoded = portfolio_fields(fields)
        if by_con_id is None:
            by_con_id = self._portfolio.setdefault(decoded[0][0], {})
        by_con_id[fields[2]] = (text, decoded)
        return decoded
