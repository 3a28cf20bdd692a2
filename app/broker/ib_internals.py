"""Every use of ib_insync's internals (anything outside its documented API), fenced in one module.

Verified against ib_insync `VERIFIED_VERSION`. tests/broker/test_ib_internals_contract.py fails on
any other installed version and, independently of the version, when one of the internals below
no longer has the shape relied on here. The rest of app.broker uses only the documented API:
IB's `…Async` requests, its events, `TimezoneTWS` and `RaiseRequestErrors` (IB's documented
parameters), Client's documented methods (`getAccounts`, `getReqId`, `reqPositionsMulti`, …) and
its `apiError` event, `RequestError`, and the data objects.

What is used, and why:

1. **Connecting without ib_insync's start-up requests** (`connect_api`). `IB.connectAsync` does
   more than connect: it requests positions, account updates (`reqAccountUpdates` for a single or
   named account, `reqAccountUpdatesMulti` for up to 50 accounts) and then *awaits the executions
   answer* with `asyncio.wait_for(reqExecutionsAsync(), timeout)`, disconnecting when it times
   out (ib_insync 0.9.86, ib.py `connectAsync`). TWS 10.30 and later sometimes never send
   execDetailsEnd, so that connect fails every time and the app never syncs: reported as
   "Executions request timed out" (github.com/ib-api-reloaded/ib_async/issues/54, TWS 10.30.1i),
   "ib.connect Timeout Error on apiStart" (ib-api-reloaded/ib_async/issues/82: the timeout is
   raised at ib.py:1782, the executions wait) and erdewit/ib_insync/issues/638 (the maintainer:
   "a regression in TWS"). Its account-updates request also takes TWS's one account-updates
   subscription away from another API client (erdewit/ib_insync/issues/197: warning 2101 for the
   other client). The adapter asks for all of that itself, per snapshot and each answer bounded
   on its own, so the connection needs only the socket and the API handshake (managedAccounts and
   nextValidId). `connect_api` therefore does the first and last steps of `IB.connectAsync`
   itself: it sets `ib.wrapper.clientId` (the Wrapper keys orders by it), awaits
   `ib.client.connectAsync(host, port, clientId, timeout)`, checks `client.isReady()` and emits
   `ib.connectedEvent`, disconnecting on any failure as `IB.connectAsync` does.
2. **`IB.reqAutoOpenOrders` overridden** (`ReadOnlyIB`): `IB.connectAsync` sends
   reqAutoOpenOrders(autoBind=True) when the client id is 0, handing orders entered in TWS to this
   client so it may modify them. Fills do not need it (executions of client id 0 include manual
   ones anyway); the override keeps it from being sent should anything call it.
3. **`IB._onError` disconnected from `ib.errorEvent`** (`drop_account_summary_resubscribe`):
   ib_insync answers error 1102 with an unreferenced `reqAccountSummaryAsync()` task (never
   awaited, no timeout); we need no account summary, and no stray task may outlive a stop.
4. **`ib.client.decoder.handlers`** (`hook_decoder`): the Decoder's dict of message id → handler
   of that message's fields (a `list[str]`, the message id first), looked up per message by
   `Decoder.interpret`. app.broker.session reads the rows of the ids in `DECODER_HOOKS` from their
   text itself (ib_insync reads an empty quantity as 0 and drops garbled rows silently) and
   decides per message whether ib_insync's own handler runs too.
5. **`Client.MinClientVersion` / `MaxClientVersion`** (157..176): the server version TWS answers
   with is at most 176, so the row layouts app.broker.convert reads are those of version 176.
6. **`ib.client.conn`**, ib_insync's `Connection` (an `asyncio.Protocol`):
   - its `disconnected` event (`on_socket_closed`): emitted from `connection_lost`, i.e. once the
     socket is really closed (IB's `disconnectedEvent` comes earlier, at the API's end);
   - its `transport` (`socket_open`): None while no socket is open;
   - its `connection_made` (`read_in_small_chunks`): Connection does not define it (asyncio's
     no-op runs), so an instance attribute can set the transport's `max_size` — asyncio's
     selector transports read that many bytes per callback (256 KiB by default; see READ_CHUNK).
7. **`Client.sendMsg` and `Connection.sendMsg` shadowed per instance** (`intercept_sends`): every
   framed request goes through `Client.sendMsg(msg)` (fields joined by NUL, message id first;
   `sendMsg(None)` from its throttle timer flushes the queue) and every byte through
   `Connection.sendMsg(data)`; ib_insync calls both through `self.`, so instance attributes
   replace them (app.broker.guard checks each message there).
8. **Logger names and texts** (`IB_LOGGER_NAMES`, `CONNECT_FAILURE_LOG_PREFIXES`): the loggers
   ib_insync writes account codes and raw fields to, and the lines Client.connectAsync logs at
   ERROR for a refused or abandoned connect (app.broker.logs masks and demotes them).
9. **A cancelled request's future is skipped when its answer comes** (a behaviour, no call):
   `Wrapper._endReq` sets a result only `if not future.done()`, so app.broker.session and
   app.broker.gaps may cancel an `…Async` request they stopped waiting for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from ib_insync import IB, Client

logger = logging.getLogger(__name__)

VERIFIED_VERSION = "0.9.86"
"""The ib_insync release every internal listed above was read in and tested against."""

DECODER_HOOKS: Mapping[int, str] = {
    6: "updateAccountValue",
    7: "updatePortfolio",
    11: "execDetails",
    15: "managedAccounts",
    54: "accountDownloadEnd",
    55: "execDetailsEnd",
    59: "commissionReport",
    61: "position",
    62: "positionEnd",
    71: "positionMulti",
    72: "positionMultiEnd",
}
"""The message ids `hook_decoder` may hook → the ib_insync handler each replaces (the Wrapper
method it calls, or the Decoder's own method of that name)."""

CLIENT_VERSIONS = (157, 176)
"""(Client.MinClientVersion, Client.MaxClientVersion): the API versions ib_insync offers TWS."""

IB_LOGGER_NAMES = ("ib_insync.wrapper", "ib_insync.client", "ib_insync.ib", "ib_insync.Decoder")
"""The loggers of IB, Client, Wrapper and Decoder (they log account codes and raw fields)."""

CONNECT_FAILURE_LOG_PREFIXES = (
    "API connection failed: ConnectionRefusedError",
    "API connection failed: CancelledError",
    "Make sure API port on TWS/IBG is open",
)
"""What `Client.connectAsync` logs at ERROR (on `ib_insync.client`) when a connect is refused or
cancelled; the first two are `f"API connection failed: {exc!r}"`."""

READ_CHUNK = 32 * 1024
"""Bytes read from the socket per callback (asyncio's default: 256 KiB).

ib_insync decodes a whole chunk in one callback and slices its buffer once per message, which is
quadratic in the chunk: one 256 KiB chunk of a 20,000-position answer held the event loop (the
window's) for 25-60 ms. 32 KiB chunks take a few milliseconds each, and less CPU in total."""

Forward = Callable[[list[str]], None]
"""ib_insync's own handler of a message's fields."""
Hook = Callable[[list[str], Forward], None]
"""Our handler of a message's fields; it calls `forward(fields)` when ib_insync should see them."""


class ReadOnlyIB(IB):
    """ib_insync's IB that never binds TWS's manual orders to itself (internal 2 above).

    app.broker.guard would refuse reqAutoOpenOrders with autoBind as an order-changing message;
    this keeps it from being attempted at all.
    """

    def reqAutoOpenOrders(self, autoBind: bool = True) -> None:
        logger.debug("reqAutoOpenOrders(%s) not sent: the adapter is read-only", autoBind)


async def connect_api(ib: IB, host: str, port: int, client_id: int, limit: float) -> None:
    """Connect `ib` and wait for the API handshake only (internal 1 above); raises what the
    handshake raised (ConnectionRefusedError/OSError, TimeoutError, ConnectionError),
    disconnected. `limit` bounds the socket connect and the handshake each, in seconds."""
    ib.wrapper.clientId = client_id
    try:
        await ib.client.connectAsync(host, port, client_id, limit or None)  # type: ignore[no-untyped-call]
        if not ib.client.isReady():
            raise ConnectionError("Socket connection broken while connecting")
    except BaseException:
        ib.disconnect()  # type: ignore[no-untyped-call]
        raise
    ib.connectedEvent.emit()


def drop_account_summary_resubscribe(ib: IB) -> None:
    """No `reqAccountSummaryAsync` task of ib_insync's own after error 1102 (internal 3)."""
    ib.errorEvent -= ib._onError


def hook_decoder(ib: IB, hooks: Mapping[int, Hook]) -> None:
    """Route each message id's fields to its hook, with ib_insync's handler as its `forward`
    (internal 4). Only ids of DECODER_HOOKS (the ones the contract test checks) may be hooked."""
    unknown = sorted(set(hooks) - DECODER_HOOKS.keys())
    if unknown:
        raise ValueError(f"message ids {unknown} are not in DECODER_HOOKS")
    handlers: dict[int, Forward] = ib.client.decoder.handlers
    for msg_id, hook in hooks.items():
        handlers[msg_id] = _hooked(hook, handlers[msg_id])


def on_socket_closed(ib: IB, callback: Callable[[str], None]) -> None:
    """Call `callback(error_text)` once the socket is really closed (internal 6)."""
    ib.client.conn.disconnected += callback


def socket_open(ib: IB) -> bool:
    """Whether ib's socket is open (it may still be, after the API connection ended)."""
    return ib.client.conn.transport is not None


def read_in_small_chunks(ib: IB) -> None:
    """Sockets ib opens from now on read READ_CHUNK bytes per callback (internal 6)."""
    ib.client.conn.connection_made = _smaller_reads  # type: ignore[method-assign]


def intercept_sends(
    client: Client,
    on_message: Callable[[list[str]], None],
    on_bytes: Callable[[bytes], None],
) -> None:
    """Call `on_message(fields)` before each framed request `client` queues and `on_bytes(data)`
    before any bytes reach its socket; either may raise to stop the send (internal 7). Must be
    called before connecting."""
    # Annotated `msg: str` in ib_insync, though its throttle timer calls sendMsg(None).
    send_msg: Callable[[str | None], None] = client.sendMsg  # type: ignore[assignment]
    conn = client.conn
    conn_send: Callable[[bytes], None] = conn.sendMsg

    def checked_send_msg(msg: str | None) -> None:
        # The throttle timer's sendMsg(None) only flushes what was checked when queued.
        if msg:
            on_message(msg.split("\0"))
        send_msg(msg)

    def checked_conn_send(data: bytes) -> None:
        on_bytes(data)
        conn_send(data)

    # Instance attributes shadow the class's methods; ib_insync calls them through `self.`.
    setattr(client, "sendMsg", checked_send_msg)  # noqa: B010
    setattr(conn, "sendMsg", checked_conn_send)  # noqa: B010


def _smaller_reads(transport: asyncio.BaseTransport) -> None:
    """The connection's socket reads READ_CHUNK bytes at a time (selector transports)."""
    if hasattr(transport, "max_size"):
        transport.max_size = READ_CHUNK


def _hooked(hook: Hook, original: Forward) -> Forward:
    """A decoder handler that runs `hook(fields, original)`; the hook decides on forwarding."""

    def handler(fields: list[str]) -> None:
        try:
            hook(fields, original)
        except Exception:
            # ib_insync's decoder would log the raw fields (account numbers and all).
            logger.exception("error handling message %s", fields[0] if fields else "?")

    return handler
