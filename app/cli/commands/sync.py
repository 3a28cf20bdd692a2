"""`position-sync sync [--demo] [--watch]`: a headless sync (or keep syncing) with exit codes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from app.cli.context import CommandError, demo_database, guarded, settings_from
from app.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from app.runtime import Runtime
    from app.settings import Settings


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the `sync` subcommand."""
    parser = sub.add_parser("sync", help="sync the ledger from TWS once (or keep syncing)")
    parser.add_argument("--demo", action="store_true", help="use the embedded demo gateway")
    parser.add_argument("--watch", action="store_true", help="keep syncing until interrupted")
    add_common(parser)
    parser.set_defaults(handler=run_sync)


def run_sync(args: argparse.Namespace) -> int:
    """One sync (exit 0 / 3 / 4), or `--watch` until SIGINT/SIGTERM."""
    return run_headless(
        args,
        lambda runtime, loop: watch(runtime, loop) if args.watch else _once(runtime),
        command="position-sync sync --watch" if args.watch else "position-sync sync",
    )


def run_headless(
    args: argparse.Namespace,
    main: Callable[[Runtime, asyncio.AbstractEventLoop], Coroutine[Any, Any, int]],
    settings: Callable[[argparse.Namespace], Settings] = settings_from,
    command: str = "position-sync",
) -> int:
    """Open the runtime on `settings(args)` (`--demo`: on the demo gateway), run
    `main(runtime, loop)` on a fresh loop, then stop syncing and release everything; `main`'s
    result is the exit code. `command` names this process to other processes on the ledger."""

    def body() -> int:
        from app.runtime import Runtime

        runtime = Runtime.open(
            settings(args),
            demo=bool(args.demo),
            database_url=demo_database(args),
            command=command,
        )
        loop = asyncio.new_event_loop()
        # ib_insync finds its loop through the policy (STYLE.md traps): set it, never asyncio.run.
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(main(runtime, loop))
        finally:
            loop.run_until_complete(runtime.stop())
            _cancel_leftovers(loop)
            loop.close()
            asyncio.set_event_loop(None)
            runtime.close()

    return guarded(body)


async def _once(runtime: Runtime) -> int:
    if runtime.viewer:
        return await _ask_syncer(runtime)
    # Holding the ledger's sync lock: a viewer asking meanwhile joins this run.
    await runtime.ownership.serve(runtime.service, runtime.writer)
    status = await runtime.first_connection()
    result = await runtime.sync_now()
    if result.ok:
        print(result.summary())
        return int(ExitCode.OK)
    if result.ledger_error:
        raise CommandError(result.summary(), ExitCode.DATABASE)
    if result.error:
        raise CommandError(result.summary(), ExitCode.BROKER)
    raise CommandError(f"sync {result.status.value}: {status.message}", ExitCode.BROKER)


async def _ask_syncer(runtime: Runtime) -> int:
    """Another process syncs this ledger: ask it to sync, and report its run."""
    from app.sync.remote import SyncerUnreachableError

    who = runtime.ownership.syncing_process()
    print(
        f"position-sync: {who} syncs {runtime.db.location}; asking it to sync",
        file=sys.stderr,
        flush=True,
    )
    try:
        result = await runtime.sync_now()
    except SyncerUnreachableError as exc:
        raise CommandError(
            f"{who} syncs {runtime.db.location} but did not take the sync request: {exc}",
            ExitCode.UNEXPECTED,
        ) from exc
    if result.ok:
        print(f"{result.summary()} (run by {who})")
        return int(ExitCode.OK)
    code = ExitCode.DATABASE if result.ledger_error else ExitCode.BROKER
    raise CommandError(f"{result.summary()} (run by {who})", code)


async def watch(runtime: Runtime, loop: asyncio.AbstractEventLoop) -> int:
    """Keep syncing (printing each result) until SIGINT or SIGTERM; as a viewer, say which
    process syncs, and take over (saying so) when it exits."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    runtime.service.on_result(lambda result: print(result.summary(), flush=True))
    runtime.broker.on_status(
        lambda status: print(f"broker {status.state.value}: {status.message}", file=sys.stderr)
    )
    location = runtime.db.location
    if runtime.viewer:
        print(
            f"viewer: {runtime.ownership.syncing_process()} syncs {location}; this process "
            "only reads it, and takes over syncing when that one exits",
            flush=True,
        )
    runtime.ownership.on_took_over(
        lambda previous: print(
            f"took over: now syncing {location} "
            f"({previous.describe() if previous else 'the syncing process'} exited)",
            flush=True,
        )
    )
    await runtime.start()
    await stop.wait()
    return int(ExitCode.OK)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
