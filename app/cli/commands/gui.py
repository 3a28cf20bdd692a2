"""`position-sync [gui] [--demo]`: the window."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from app.cli.collector import collector_paused
from app.cli.context import demo_database, guarded, settings_from


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the `gui` subcommand (also what the bare command runs)."""
    parser = sub.add_parser("gui", help="the window (the default)")
    # SUPPRESS: `position-sync --demo gui` keeps the top-level flag (a subcommand's own default
    # would overwrite it with False, and the demo would open the user's ledger and TWS instead).
    parser.add_argument(
        "--demo",
        action="store_true",
        default=argparse.SUPPRESS,
        help="use the embedded demo gateway",
    )
    parser.add_argument("--quit-after", type=float, metavar="S", help=argparse.SUPPRESS)
    add_common(parser)
    parser.set_defaults(handler=run_gui)


def import_window_modules() -> None:
    """Import the window's modules: those without Qt first, then Qt and the window's own.

    Order matters (issue 19, cold start): once PySide6 is imported, its import hook reads the
    whole source of every module imported after it (to look for `from __feature__ import`,
    PySide's opt-in snake_case API — shibokensupport.feature._mod_uses_pyside, PYSIDE-2029),
    ~0.15 ms a module. SQLAlchemy, pydantic and the ledger's modules (app.runtime: ~340 of
    them, none of them Qt) imported before PySide6 are not read: ~60 ms less before the first
    paint. The app uses no `__feature__`, so nothing else changes.
    """
    import app.runtime  # before PySide6 (the docstring says why)
    import app.ui.app  # noqa: F401


def run_gui(args: argparse.Namespace) -> int:
    """Show the window until it is closed."""

    def body() -> int:
        with collector_paused():  # the window's modules: see app.cli.collector
            import_window_modules()
            from app.ui.app import run_window

        settings = settings_from(args)
        return run_window(
            settings,
            demo=bool(getattr(args, "demo", False)),
            database_url=demo_database(args),
            quit_after=getattr(args, "quit_after", None),
        )

    return guarded(body)
