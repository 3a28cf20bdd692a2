"""ApiServer: the local API's aiohttp application, served on the running asyncio loop.

Routes (every one needs `Authorization: Bearer <api_token>`; app/api/openapi.py describes them):
  POST /api/sync/positions   sync now (MANUAL trigger, single flight) → the run's result
  GET  /api/sync/status      the `status --json` document
  GET  /api/positions        cached positions, open (or every lifecycle with ?all=true)
  GET  /api/openapi.json     the OpenAPI description
Errors are JSON `{"error": ..., "status": ...}`: 401 without the token, 404, 405 (with Allow),
400 for a bad query or an unparsable request, 503 when the ledger cannot be read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from app.api.documents import sync_result_json
from app.api.openapi import openapi_document
from app.api.security import ApiSettingsError, bind_addresses, check_token, token_matches
from app.db.errors import DatabaseError
from app.domain.documents import lifecycle_json, status_json
from app.domain.values import SyncStatus, SyncTrigger
from app.runtime import Runtime
from app.settings import Settings
from app.sync.remote import SyncerUnreachableError
from app.sync.results import SyncResult

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
"""No endpoint reads a body; anything bigger than this is refused with 413 if one is read."""
MAX_LINE = 4096
"""Longest request line or header line (aiohttp answers 400 past it)."""
MAX_HEADERS = 64
KEEPALIVE_SECONDS = 15.0
"""An idle keep-alive connection is closed after this long."""
SHUTDOWN_SECONDS = 2.0
"""On stop, requests in flight get this long to finish (a sync itself is not torn)."""

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_RUNTIME: web.AppKey[Callable[[], Runtime]] = web.AppKey("runtime", Callable[[], Runtime])  # type: ignore[arg-type]
_TOKEN: web.AppKey[str] = web.AppKey("token", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal as a JSON error document; a database failure as 503, a bug as 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {
            k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")
        }
        return _error(exc.status, exc.reason, headers)
    except DatabaseError as exc:
        log.warning(
            "API %s %s: the ledger could not be read: %s", request.method, request.path, exc
        )
        return _error(503, f"the ledger could not be read: {exc}")
    except Exception:
        log.exception("API %s %s failed", request.method, request.path)
        return _error(500, "internal error (logged)")


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 unless the request carries the bearer token (before routing errors: a caller without
    the token learns nothing about which paths exist)."""
    if not token_matches(request.headers.get("Authorization"), request.app[_TOKEN]):
        return _error(
            401,
            "missing or wrong bearer token (Authorization: Bearer <api_token>)",
            {"WWW-Authenticate": 'Bearer realm="position-sync"'},
        )
    return await handler(request)


async def _sync_positions(request: web.Request) -> web.Response:
    runtime = request.app[_RUNTIME]()
    try:
        # A viewer (another process syncs this SQLite ledger) asks that process (app.ownership).
        result = await runtime.sync_now()
    except SyncerUnreachableError as exc:
        now = datetime.now(UTC)
        who = runtime.ownership.syncing_process()
        reason = f"{who} syncs this ledger and did not answer: {exc}"
        result = SyncResult(SyncTrigger.MANUAL, SyncStatus.SKIPPED, now, now, error=reason)
    return web.json_response(sync_result_json(result))


async def _status(request: web.Request) -> web.Response:
    runtime = request.app[_RUNTIME]()
    # The setting in force at this request: the window applies a new one without a restart.
    status = await runtime.reader.status(runtime.settings.cost_basis)
    return web.json_response(status_json(status, datetime.now(UTC)))


async def _positions(request: web.Request) -> web.Response:
    flag = request.query.get("all", "false").strip().lower()
    if flag not in _TRUE | _FALSE:
        return _error(400, "all must be true or false")
    rows = await request.app[_RUNTIME]().reader.positions(include_closed=flag in _TRUE)
    return web.json_response([lifecycle_json(p) for p in rows])


async def _openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def build_app(runtime: Callable[[], Runtime], token: str) -> web.Application:
    """The aiohttp application; `runtime()` names the runtime in force at each request (the
    window replaces its runtime when the database or connection settings change)."""
    app = web.Application(middlewares=[_errors, _auth], client_max_size=MAX_BODY)
    app[_RUNTIME] = runtime
    app[_TOKEN] = token
    app.router.add_post("/api/sync/positions", _sync_positions)
    app.router.add_get("/api/sync/status", _status, allow_head=False)
    app.router.add_get("/api/positions", _positions, allow_head=False)
    app.router.add_get("/api/openapi.json", _openapi, allow_head=False)
    return app


class ApiServer:
    """Serves the API on the running loop: `await start()` … `await stop()`."""

    def __init__(self, runtime: Callable[[], Runtime], settings: Settings) -> None:
        self._runtime = runtime
        self._settings = settings
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Check the settings, bind, listen. Raises ApiSettingsError (nothing left running)."""
        settings = self._settings
        check_token(settings.api_token)
        addresses = await bind_addresses(
            settings.api_host, settings.api_port, allow_remote=settings.api_allow_remote
        )
        if settings.api_port == 0:
            addresses = addresses[:1]  # one free port: the other addresses would get others
        runner = web.AppRunner(
            build_app(self._runtime, settings.api_token),
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_SECONDS,
            access_log=logging.getLogger("app.api.access"),
            access_log_format='%a "%r" %s %b %Tf',  # no headers: the token stays out of logs
            keepalive_timeout=KEEPALIVE_SECONDS,
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
            max_headers=MAX_HEADERS,
        )
        await runner.setup()
        try:
            for address in addresses:
                site = web.TCPSite(runner, address, settings.api_port, backlog=64)
                await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ApiSettingsError(
                f"the API cannot listen on {settings.api_host}:{settings.api_port}: "
                f"{exc.strerror or exc} (change api_port?)"
            ) from exc
        self._runner = runner
        log.info("local API listening on %s", ", ".join(self.urls))

    async def stop(self) -> None:
        """Stop listening; requests in flight get SHUTDOWN_SECONDS (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(address, port) of every listening socket (empty when stopped)."""
        if self._runner is None:
            return []
        return [(str(a[0]), int(a[1])) for a in self._runner.addresses]

    @property
    def port(self) -> int:
        """The port listened on (the chosen one when api_port is 0)."""
        return self.addresses[0][1]

    @property
    def urls(self) -> list[str]:
        """Base URLs, e.g. http://127.0.0.1:8765."""
        return [f"http://[{a}]:{p}" if ":" in a else f"http://{a}:{p}" for a, p in self.addresses]
