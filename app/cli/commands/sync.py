"""`position-sync sync [--demo] [--watch]`: a headless sync (or keep syncing) with exit codes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from typing import Any

from app.cli.context import CommandError, guarded, settings_from
from app.cli.exit_codes import ExitCode


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the `sync` subcommand."""
    parser = sub.add_parser("sync", help="sync the ledger from TWS once (or keep syncing)")
    parser.add_argument("--demo", action="store_true", help="use the embedded demo gateway")
    parser.add_argument("--watch", action="store_true", help="keep syncing until interrupted")
    add_common(parser)
    parser.set_defaults(handler=run_sync)


def run_sync(args: argparse.Namespace) -> int:
    """One sync (exit 0 / 3 / 4), or `--watch` until SIGINT/SIGTERM."""

    def body() -> int:
        from app.runtime import Runtime

        settings = settings_from(args)
        runtime = Runtime.open(settings, demo=bool(args.demo))
        loop = asyncio.new_event_loop()
        # ib_insync finds its loop through the policy (STYLE.md traps): set it, never asyncio.run.
        asyncio.set_event_loop(loop)
        try:
            main = _watch(runtime, loop) if args.watch else _once(runtime)
            return loop.run_until_complete(main)
        finally:
            loop.run_until_complete(runtime.service.stop())
            _cancel_leftovers(loop)
            loop.close()
            asyncio.set_event_loop(None)
            runtime.close()

    return guarded(body)


async def _once(runtime: Any) -> int:
    from app.domain.values import SyncTrigger

    status = await runtime.first_connection()
    result = await runtime.service.sync_positions(SyncTrigger.MANUAL)
    if result.ok:
        print(result.summary())
        return int(ExitCode.OK)
    if result.ledger_error:
        raise CommandError(result.summary(), ExitCode.DATABASE)
    if result.error:
        raise CommandError(result.summary(), ExitCode.BROKER)
    raise CommandError(f"sync {result.status.value}: {status.message}", ExitCode.BROKER)


async def _watch(runtime: Any, loop: asyncio.AbstractEventLoop) -> int:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    runtime.service.on_result(lambda result: print(result.summary(), flush=True))
    runtime.broker.on_status(
        lambda status: print(f"broker {status.state.value}: {status.message}", file=sys.stderr)
    )
    await runtime.service.start()
    await stop.wait()
    return int(ExitCode.OK)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
