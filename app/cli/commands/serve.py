"""`position-sync serve [--demo]`: the headless sync service plus the local API, until Ctrl-C.

The same service as `sync --watch` (app/cli/commands/sync.py runs both), with the API served on
its loop. `serve` is itself the request to serve the API: `api_enabled` (which the window reads)
need not be on. The token comes from the settings; without one, a new one is generated and saved
as `api_token` in the settings file, and the file is named (the token itself is never printed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.cli.commands.sync import run_headless, watch
from app.cli.context import CommandError, settings_from
from app.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from app.runtime import Runtime
    from app.settings import Settings


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the `serve` subcommand."""
    parser = sub.add_parser(
        "serve", help="keep syncing and serve the local API (POST /api/sync/positions, …)"
    )
    parser.add_argument("--demo", action="store_true", help="use the embedded demo gateway")
    parser.add_argument(
        "--api-host", metavar="H", help="address to listen on (default: api_host, 127.0.0.1)"
    )
    parser.add_argument(
        "--api-port", metavar="N", type=int, help="port to listen on (default: api_port, 8765)"
    )
    add_common(parser)
    parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM (exit 0); 2 when the API settings are refused."""
    return run_headless(args, _serve, _settings, command="position-sync serve")


def _settings(args: argparse.Namespace) -> Settings:
    """The settings with the --api-* flags on top, and a token (generated and saved if none)."""
    from app.api import ApiSettingsError, ensure_api_token
    from app.settings import Settings

    settings = settings_from(args)
    flags = {"api_host": args.api_host, "api_port": args.api_port}
    updates = {k: v for k, v in flags.items() if v is not None}
    try:
        if updates:
            settings = Settings.model_validate({**settings.model_dump(), **updates})
        settings, saved = ensure_api_token(settings)
    except (ValueError, ApiSettingsError) as exc:  # pydantic's ValidationError too
        raise CommandError(f"invalid setting: {exc}", ExitCode.USAGE) from exc
    if saved is not None:
        print(
            f"position-sync: generated an API token and saved it as api_token in {saved}",
            file=sys.stderr,
        )
    return settings


async def _serve(runtime: Runtime, loop: asyncio.AbstractEventLoop) -> int:
    from app.api import ApiServer, ApiSettingsError

    server = ApiServer(lambda: runtime, runtime.settings)
    try:
        await server.start()
    except ApiSettingsError as exc:
        raise CommandError(str(exc), ExitCode.USAGE) from exc
    try:
        print(
            f"position-sync: local API on {', '.join(server.urls)} "
            "(Authorization: Bearer <api_token>; GET /api/openapi.json describes it)",
            file=sys.stderr,
            flush=True,
        )
        return await watch(runtime, loop)
    finally:
        await server.stop()
