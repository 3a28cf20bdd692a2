"""`position-sync export --format csv|json [--out FILE] [--all|--events|--fills|--lots]`.

The ledger for spreadsheets and scripts, from the cache alone (no broker needed). The document
shapes are in the README ("Export"); the rows come from the ledger reader (app.db.reader), shared
with the window.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.cli.context import CommandError, guarded, settings_from
from app.cli.exit_codes import ExitCode
from app.domain.export import ExportFormat, ExportKind


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the `export` subcommand."""
    parser = sub.add_parser(
        "export",
        help="write the ledger as CSV or JSON (open positions, all, events or fills)",
        description="Write the cached ledger as CSV (a header row) or JSON (a document with "
        "the column order and one object per row). Decimals are exact text, times ISO 8601 "
        "UTC. --account A keeps one account's rows.",
    )
    parser.add_argument(
        "--format",
        choices=[f.value for f in ExportFormat],
        help="csv or json (default: from the --out file's extension)",
    )
    parser.add_argument(
        "--out", metavar="FILE", help="write to FILE (atomically) instead of standard output"
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--all", action="store_true", help="every lifecycle, open and closed")
    what.add_argument(
        "--events", action="store_true", help="every lifecycle's events (with its contract)"
    )
    what.add_argument("--fills", action="store_true", help="every stored fill (execution)")
    what.add_argument(
        "--lots", action="store_true", help="the open FIFO tax lots of every open position"
    )
    add_common(parser)
    parser.set_defaults(handler=run_export)


_NOUNS = {
    ExportKind.POSITIONS: "open positions",
    ExportKind.ALL: "lifecycles",
    ExportKind.EVENTS: "events",
    ExportKind.FILLS: "fills",
    ExportKind.LOTS: "open lots",
}


def export_kind(args: argparse.Namespace) -> ExportKind:
    """Which export the flags ask for (open positions by default)."""
    if args.events:
        return ExportKind.EVENTS
    if args.fills:
        return ExportKind.FILLS
    if getattr(args, "lots", False):
        return ExportKind.LOTS
    return ExportKind.ALL if args.all else ExportKind.POSITIONS


def export_format(args: argparse.Namespace) -> ExportFormat:
    """--format, or the --out file's extension."""
    if args.format:
        return ExportFormat(args.format)
    suffix = Path(args.out).suffix.lower().lstrip(".") if args.out else ""
    if suffix in {f.value for f in ExportFormat}:
        return ExportFormat(suffix)
    raise CommandError("say --format csv or --format json", ExitCode.USAGE)


def run_export(args: argparse.Namespace) -> int:
    """Write the export; a file that cannot be written is exit code 4, nothing left behind."""

    def body() -> int:
        from app.db.export import ExportError, check_destination, save_export
        from app.db.migrate import open_database
        from app.db.reader import BlockingLedgerReader
        from app.domain.export import render

        fmt = export_format(args)
        kind = export_kind(args)
        out = Path(args.out) if args.out else None
        settings = settings_from(args)
        try:
            if out is not None:
                check_destination(out)  # before the database is opened (or created)
            now = datetime.now(UTC).replace(microsecond=0)
            with open_database(settings.database_url) as db:
                reader = BlockingLedgerReader(db)
                table = reader.export_rows(kind, getattr(args, "account", None), now)
            text = render(table, fmt, now)
            if out is None:
                sys.stdout.write(text)
                return int(ExitCode.OK)
            save_export(out, text)
        except ExportError as exc:
            raise CommandError(str(exc), ExitCode.DATABASE) from exc
        print(f"exported {len(table.rows)} {_NOUNS[kind]} to {out}")
        return int(ExitCode.OK)

    return guarded(body)
