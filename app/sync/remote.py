"""Asking the process that syncs a ledger to sync, or to write the user's Mark closed: a loopback
endpoint guarded by a token.

One process syncs a SQLite ledger (app.db.sync_lock); the others are viewers and never write it.
When the user asks a viewer for a sync (Sync now, a one-shot `position-sync sync`, the local API),
the viewer asks the syncer instead, which runs it as its own manual sync and answers with the
result. A Mark closed made in a viewer window is sent the same way: the syncer writes it through
its own write door, with the same version check (the lifecycle must still be what the user saw),
and answers closed, refused (with the reason) or failed.

The syncer listens on 127.0.0.1 on a port the OS picks, and writes the port and a random token
into its 0600 lock file: only processes that can read that file (the user's own) can ask. The
exchange is one JSON line each way; the answer comes when the run has finished (a run already in
flight is joined, PositionSyncService's single flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.domain.manual import (
    LifecycleChangedError,
    LifecycleVersion,
    MarkClosedError,
    MarkClosedRequest,
)
from app.domain.plan import PnlMismatch
from app.domain.values import SyncStatus, SyncTrigger
from app.sync.results import SyncResult

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
LINE_LIMIT = 1 << 20  # bytes: a result line carries every P&L mismatch (and stale account)
READ_TIMEOUT_S = 5.0  # a client that connects and says nothing is dropped after this


class SyncerUnreachableError(Exception):
    """The syncing process did not take or answer the request (it may be exiting)."""


class SyncEndpoint:
    """The syncer's side: runs `sync()`, or `mark_closed(request)`, for every request that
    carries the token."""

    def __init__(
        self,
        sync: Callable[[], Awaitable[SyncResult]],
        mark_closed: Callable[[MarkClosedRequest], Awaitable[object]],
    ) -> None:
        self._sync = sync
        self._mark_closed = mark_closed
        self.token = secrets.token_urlsafe(24)
        self.port: int | None = None
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        """Listen on 127.0.0.1 (a port the OS picks); the port."""
        self._server = await asyncio.start_server(self._serve, HOST, 0, limit=LINE_LIMIT)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop the requests in progress (their clients see no answer)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        clients = list(self._clients)
        for task in clients:
            task.cancel()
        if clients:
            await asyncio.gather(*clients, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            answer = await self._answer(reader)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            log.debug("a sync request was dropped", exc_info=True)
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
        try:
            request = json.loads(line)
            token = str(request["token"])
            what = request["request"]
        except (ValueError, KeyError, TypeError):
            return {"error": "not a sync request"}
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            log.warning("a sync request with a wrong token was refused")
            return {"error": "wrong token"}
        if what == "sync":
            log.info("syncing at another process's request")
            return {"result": result_json(await self._sync())}
        if what == "mark_closed":
            try:
                close = close_from_json(request["close"])
            except (ValueError, KeyError, TypeError, ArithmeticError):
                return {"error": "not a Mark closed request"}
            return await self._close(close)
        return {"error": f"unknown request {what!r}"}

    async def _close(self, close: MarkClosedRequest) -> dict[str, Any]:
        log.info("marking position %s closed at another process's request", close.seen.position_id)
        try:
            await self._mark_closed(close)
        except LifecycleChangedError as exc:
            return {"refused": "changed", "message": str(exc)}
        except MarkClosedError as exc:
            return {"refused": "invalid", "message": str(exc)}
        except Exception as exc:  # a database error: the viewer shows it; nothing was written
            log.exception("a Mark closed asked by another process failed")
            return {"refused": "failed", "message": str(exc)}
        return {"closed": close.seen.position_id}


async def request_sync(port: int, token: str, answer_within: float) -> SyncResult:
    """Ask the syncer on `port` for a sync and wait (up to `answer_within` s) for its result.

    Raises SyncerUnreachableError when it refuses the connection, answers nothing in time, or
    refuses the request.
    """
    answer = await _ask(port, token, {"request": "sync"}, answer_within)
    if "result" not in answer:
        raise SyncerUnreachableError(f"the syncing process refused: {answer.get('error')}")
    return result_from_json(answer["result"])


async def request_mark_closed(
    port: int, token: str, close: MarkClosedRequest, answer_within: float
) -> None:
    """Ask the syncer on `port` to write `close` (it checks the version as a local write does).

    Raises LifecycleChangedError or MarkClosedError as the write would have (nothing written),
    SyncerUnreachableError when the syncer cannot be reached, does not answer in time or does
    not take the request — then nothing may have been written either, but the caller cannot
    know: it reloads and lets the user look.
    """
    answer = await _ask(
        port, token, {"request": "mark_closed", "close": close_json(close)}, answer_within
    )
    if "closed" in answer:
        return
    refused, message = answer.get("refused"), str(answer.get("message", ""))
    if refused == "changed":
        raise LifecycleChangedError(message)
    if refused in ("invalid", "failed"):
        raise MarkClosedError(message)
    raise SyncerUnreachableError(f"the syncing process refused: {answer.get('error')}")


async def _ask(
    port: int, token: str, request: dict[str, Any], answer_within: float
) -> dict[str, Any]:
    """Send one request line to the syncer on `port`; its answer line, decoded."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, port, limit=LINE_LIMIT), READ_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        raise SyncerUnreachableError(f"no sync endpoint on {HOST}:{port} ({exc})") from exc
    try:
        writer.write(json.dumps({"token": token, **request}).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), answer_within)
    except (OSError, TimeoutError) as exc:
        raise SyncerUnreachableError(f"the syncing process did not answer ({exc!r})") from exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    if not line:
        raise SyncerUnreachableError("the syncing process closed the request without answering")
    try:
        answer = json.loads(line)
    except ValueError as exc:
        raise SyncerUnreachableError("the syncing process answered gibberish") from exc
    if not isinstance(answer, dict):
        raise SyncerUnreachableError("the syncing process answered gibberish")
    return answer


def close_json(close: MarkClosedRequest) -> dict[str, Any]:
    """A Mark closed as a viewer sends it (decimals as exact text, the time with its zone)."""
    seen = close.seen
    return {
        "position_id": seen.position_id,
        "account": seen.account,
        "symbol": seen.symbol,
        "quantity": str(seen.quantity),
        "realized_pnl": str(seen.realized_pnl),
        "last_event_id": seen.last_event_id,
        "exit_price": str(close.exit_price),
        "at": close.at.isoformat(),
        "note": close.note,
    }


def close_from_json(raw: dict[str, Any]) -> MarkClosedRequest:
    """The MarkClosedRequest `close_json` sent. Raises ValueError (or KeyError, TypeError,
    decimal.InvalidOperation) for anything else."""
    last = raw["last_event_id"]
    at = datetime.fromisoformat(raw["at"])
    if at.tzinfo is None:
        raise ValueError("a close time without its zone")
    seen = LifecycleVersion(
        position_id=int(raw["position_id"]),
        account=str(raw["account"]),
        symbol=str(raw["symbol"]),
        quantity=Decimal(raw["quantity"]),
        realized_pnl=Decimal(raw["realized_pnl"]),
        last_event_id=None if last is None else int(last),
    )
    return MarkClosedRequest(seen, Decimal(raw["exit_price"]), at, str(raw["note"]))


def result_json(result: SyncResult) -> dict[str, Any]:
    """A SyncResult as the endpoint sends it (what a viewer shows and the API answers)."""
    return {
        "trigger": result.trigger.value,
        "status": result.status.value,
        "started_at": result.started_at.isoformat(),
        "finished_at": result.finished_at.isoformat(),
        "run_id": result.run_id,
        "positions_seen": result.positions_seen,
        "opened": result.opened,
        "updated": result.updated,
        "closed": result.closed,
        "missing": result.missing,
        "skipped_rows": result.skipped_rows,
        "error": result.error,
        "pnl_mismatches": [
            [m.account, m.con_id, m.symbol, str(m.ours), str(m.broker), list(m.exec_ids)]
            for m in result.pnl_mismatches
        ],
        "selective": result.selective,
        "ledger_error": result.ledger_error,
        "superseded": result.superseded,
        "market_moved": result.market_moved,
        "held_fills": list(result.held_fills),
        "stale_prices": [list(pair) for pair in result.stale_prices],
        "fills_unavailable": result.fills_unavailable,
    }


def result_from_json(raw: dict[str, Any]) -> SyncResult:
    """The SyncResult `result_json` sent (changed_keys is not sent: a viewer reloads all)."""
    return SyncResult(
        trigger=SyncTrigger(raw["trigger"]),
        status=SyncStatus(raw["status"]),
        started_at=datetime.fromisoformat(raw["started_at"]),
        finished_at=datetime.fromisoformat(raw["finished_at"]),
        run_id=raw["run_id"],
        positions_seen=int(raw["positions_seen"]),
        opened=int(raw["opened"]),
        updated=int(raw["updated"]),
        closed=int(raw["closed"]),
        missing=int(raw["missing"]),
        skipped_rows=int(raw["skipped_rows"]),
        error=raw["error"],
        pnl_mismatches=tuple(
            PnlMismatch(a, int(c), s, Decimal(o), Decimal(b), tuple(e))
            for a, c, s, o, b, e in raw["pnl_mismatches"]
        ),
        selective=bool(raw["selective"]),
        ledger_error=bool(raw["ledger_error"]),
        superseded=bool(raw["superseded"]),
        market_moved=bool(raw["market_moved"]),
        held_fills=tuple(raw["held_fills"]),
        stale_prices=tuple((a, why) for a, why in raw["stale_prices"]),
        fills_unavailable=raw["fills_unavailable"],
    )
