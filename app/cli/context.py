"""What every command needs: settings with the flags on top, and the opened database."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeVar

from app.cli.exit_codes import ExitCode
from app.settings import Settings, load_settings

T = TypeVar("T")


class CommandError(Exception):
    """A failure to report on stderr with an exit code (the message is for people)."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def settings_from(args: argparse.Namespace) -> Settings:
    """Defaults → settings file → environment → these flags."""
    try:
        return load_settings(
            database_url=getattr(args, "db", None),
            ib_host=getattr(args, "host", None),
            ib_port=getattr(args, "port", None),
            ib_client_id=getattr(args, "client_id", None),
            ib_account=getattr(args, "account", None),
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise CommandError(f"invalid setting: {exc}", ExitCode.USAGE) from exc


def demo_database(args: argparse.Namespace) -> str | None:
    """The ledger `--demo` uses: its own (app.runtime.demo_database_url), unless `--db` names
    one; None without `--demo` (the user's ledger)."""
    if not getattr(args, "demo", False) or getattr(args, "db", None) is not None:
        return None
    from app.runtime import demo_database_url

    return demo_database_url()


def guarded(body: Callable[[], int]) -> int:
    """Run a command body; known failures become their message on stderr and exit code."""
    from app.db.errors import DatabaseError

    try:
        return body()
    except CommandError as exc:
        print(f"position-sync: {exc}", file=sys.stderr)
        return int(exc.code)
    except DatabaseError as exc:
        print(f"position-sync: database error: {exc}", file=sys.stderr)
        return int(ExitCode.DATABASE)
