"""What a real TWS may not serve, and how the session tells: refused account updates (2101),
refused reqPositions (large advisor logins), a broken TWS <-> IB server link (2110).

Each is answered by an error message rather than by the request's own end marker, so a request
waiting for that end would only time out; a `Refusals` lets it fail at once instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from ib_insync import RequestError

ACCOUNT_REFUSED = 2101
"""reqAccountUpdates for an account other than the one another API client subscribed to:
"Unable to subscribe to account as the following clients are subscribed to a different account"
(warning 2101, reqId -1, and no accountDownloadEnd; erdewit/ib_insync/issues/197). TWS serves
reqAccountUpdates "with a single account at a time" (interactivebrokers.github.io/tws-api/
positions.html, "Requesting")."""

IB_SERVER_LINK_BROKEN = 2110
""""Connectivity between TWS and server is broken. It will be restored automatically." A warning
code (2100-2199, so ib_insync only logs it) that "will usually only occur during the IB nightly
server reset" and may come without 1100 (IB's message-codes list, as carried by client libraries
such as the ErrorMsg2110 entry of TWSMessageCode tables)."""

IB_SERVER_LINK_MESSAGE = (
    "TWS's connection to IB's servers is broken (error 2110); its data may be stale, so syncing "
    "is paused until it is restored."
)

SERVER_LINK_OK = frozenset({2104, 2106, 2158})
"""Data farms reporting OK (TWS sends 2104/2106/2158 when a farm connects again): besides IB's
restore codes 1101/1102, these end the pause a 2110 began. Which notice a real TWS sends after a
2110 is not documented; any of them ends it (and a reconnect always does)."""

MAX_POSITIONS_ACCOUNTS = 50
"""IB: "The reqPositions function is not available in Introducing Broker or Financial Advisor
master accounts that have very large numbers of subaccounts (> 50) ... Instead the function
reqPositionsMulti can be used to subscribe to updates from individual subaccounts"
(interactivebrokers.github.io/tws-api/positions.html)."""

_NOT_A_REFUSAL = frozenset({326, 1100, 1101, 1102, 1300, IB_SERVER_LINK_BROKEN})


def positions_refusal(code: int, text: str) -> str | None:
    """Why TWS refused our reqPositions, if this error (reqId -1, while the request is in
    flight) is that refusal; None for notices and connectivity codes.

    reqPositions carries no request id, so TWS's refusal comes with reqId -1. IB documents that
    the request is not available for such logins but not the code it answers with; any error
    (not a 2100-2199 warning) at that moment is taken as the refusal.
    """
    if code in _NOT_A_REFUSAL or 2100 <= code < 2200:
        return None
    return f"TWS refused reqPositions (error {code}: {text})"


def use_positions_multi(managed_accounts: int, refused: str | None) -> bool:
    """Whether positions come from reqPositionsMulti per account (see MAX_POSITIONS_ACCOUNTS)."""
    return refused is not None or managed_accounts > MAX_POSITIONS_ACCOUNTS


class Refusals:
    """Fails the waits in flight when TWS answers their kind of request with an error."""

    def __init__(self) -> None:
        self._waiting: set[asyncio.Future[None]] = set()

    def refuse(self, code: int, text: str) -> None:
        """TWS refused: every wait in flight raises RequestError(code)."""
        for future in list(self._waiting):
            if not future.done():
                future.set_exception(RequestError(-1, code, text))
        self._waiting.clear()

    async def race(self, answer: Awaitable[Any]) -> Any:
        """`answer`'s result, or RequestError if TWS refuses first."""
        refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.add(refused)
        answering = asyncio.ensure_future(answer)
        try:
            await asyncio.wait((answering, refused), return_when=asyncio.FIRST_COMPLETED)
            if answering.done():
                return answering.result()
            return refused.result()  # raises the refusal
        finally:
            self._waiting.discard(refused)
            if not answering.done():
                answering.cancel()  # ib_insync skips cancelled futures when the answer comes
            if not refused.done():
                refused.cancel()


class PositionsMulti:
    """The reqPositionsMulti subscriptions of one connection: reqId -> (account, its end)."""

    def __init__(self) -> None:
        self._requests: dict[int, tuple[str, asyncio.Future[None]]] = {}

    def start(self, account: str, req_id: int) -> tuple[int, asyncio.Future[None]]:
        """A new request for `account`; its future resolves at positionMultiEnd."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._requests[req_id] = (account, future)
        return req_id, future

    def knows(self, req_id: int) -> bool:
        return req_id in self._requests

    def end(self, req_id: int) -> None:
        """positionMultiEnd for `req_id`."""
        request = self._requests.get(req_id)
        if request is not None and not request[1].done():
            request[1].set_result(None)

    def drop_all(self) -> list[int]:
        """Forget every request (to be cancelled at TWS); returns their ids."""
        ids = list(self._requests)
        for _, future in self._requests.values():
            if not future.done():
                future.cancel()
        self._requests.clear()
        return ids


def multi_as_position(fields: list[str]) -> list[str]:
    """A positionMulti row (71) in the layout of a position row (61, version 3).

    `71|1|reqId|account|conId|symbol|secType|expiry|strike|right|multiplier|exchange|currency|
    localSymbol|tradingClass|position|avgCost|modelCode` (ib_insync decoder.positionMulti).
    """
    if len(fields) != 18:
        return ["61", "3", *fields[3:]]  # wrong length: position_fields says so
    return ["61", "3", *fields[3:17]]
