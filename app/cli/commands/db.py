"""`position-sync db upgrade|current|backup`: database maintenance from the shell."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from app.cli.exit_codes import ExitCode


def register(subparsers: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `db` and its three actions to the top-level subparsers."""
    parser = subparsers.add_parser(
        "db",
        help="database maintenance: upgrade, current, backup",
        description="Inspect, back up or upgrade the ledger database.",
    )
    add_common(parser)
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    for name, handler, text in (
        ("upgrade", run_upgrade, "create or migrate the database to this version (backs up first)"),
        ("current", run_current, "print the database's revision and whether it is up to date"),
        ("backup", run_backup, "copy the SQLite database beside itself (*.bak-<rev>-<time>)"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        add_common(action)
        action.set_defaults(handler=handler)


def _database_url(args: argparse.Namespace) -> str:
    url = getattr(args, "db", None)
    if url:
        return str(url)
    from app.settings import load_settings

    return load_settings().database_url


def _fail(exc: Exception) -> int:
    print(f"position-sync: {exc}", file=sys.stderr)
    return int(ExitCode.DATABASE)


def run_upgrade(args: argparse.Namespace) -> int:
    """Create or migrate the database; exit 4 if it is refused or the migration fails."""
    from app.db.errors import DatabaseError
    from app.db.migrate import upgrade

    try:
        result = upgrade(_database_url(args))
    except DatabaseError as exc:
        return _fail(exc)
    if result.created:
        print(f"created {result.location} at revision {result.after} (head)")
    elif result.changed:
        print(f"upgraded {result.location} from {result.before or 'nothing'} to {result.after}")
        if result.backup is not None:
            print(f"backup: {result.backup}")
    else:
        print(f"{result.location} is already at revision {result.after} (head)")
    return int(ExitCode.OK)


def run_current(args: argparse.Namespace) -> int:
    """Print the revision and its state; reading never changes or creates the database."""
    from app.db.engine import describe, to_url
    from app.db.errors import DatabaseError
    from app.db.migrate import current, head_revision, known_revisions

    try:
        url = to_url(_database_url(args))
        revision = current(url)
    except DatabaseError as exc:
        return _fail(exc)
    head = head_revision()
    if revision is None:
        print(f"none (no ledger yet at {describe(url)}; it is created on first use)")
    elif revision == head:
        print(f"{revision} (head)")
    elif revision in known_revisions():
        print(f"{revision} (out of date: head is {head}; run `position-sync db upgrade`)")
    else:
        print(f"{revision} (newer than this version, which knows up to {head})")
    return int(ExitCode.OK)


def run_backup(args: argparse.Namespace) -> int:
    """Back up the SQLite database and print the backup's path."""
    from app.db.errors import DatabaseError
    from app.db.migrate import backup

    try:
        path = backup(_database_url(args))
    except DatabaseError as exc:
        return _fail(exc)
    print(path)
    return int(ExitCode.OK)
