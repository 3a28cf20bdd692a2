"""Opening the API connection without ib_insync's start-up requests.

ib_insync's `IB.connectAsync` does more than connect: it requests positions, account updates
(`reqAccountUpdates` for a single or named account, `reqAccountUpdatesMulti` for up to 50
accounts) and then *awaits the executions answer* with `asyncio.wait_for(reqExecutionsAsync(),
timeout)`, disconnecting when it times out (ib_insync 0.9.86, ib.py `connectAsync`). TWS 10.30
and later sometimes never send execDetailsEnd, so that connect fails every time and the app never
syncs: reported as "Executions request timed out" (github.com/ib-api-reloaded/ib_async/issues/54,
TWS 10.30.1i), "ib.connect Timeout Error on apiStart" (ib-api-reloaded/ib_async/issues/82: the
timeout is raised at ib.py:1782, the executions wait) and erdewit/ib_insync/issues/638 (the
maintainer: "a regression in TWS"). Its account-updates request also takes TWS's one
account-updates subscription away from another API client (erdewit/ib_insync/issues/197: warning
2101 for the other client).

The adapter asks for all of that itself, per snapshot and each answer bounded on its own, so the
connection needs only the socket and the API handshake (managedAccounts and nextValidId).
"""

from __future__ import annotations

from ib_insync import IB


async def connect_api(ib: IB, host: str, port: int, client_id: int, limit: float) -> None:
    """Connect `ib` and wait for the API handshake only; raises what the handshake raised
    (ConnectionRefusedError/OSError, TimeoutError, ConnectionError), disconnected. `limit`
    bounds the socket connect and the handshake each (ib_insync), in seconds."""
    ib.wrapper.clientId = client_id
    try:
        await ib.client.connectAsync(host, port, client_id, limit or None)  # type: ignore[no-untyped-call]
        if not ib.client.isReady():
            raise ConnectionError("Socket connection broken while connecting")
    except BaseException:
        ib.disconnect()  # type: ignore[no-untyped-call]
        raise
    ib.connectedEvent.emit()
