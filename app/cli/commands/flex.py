"""`position-sync flex import FILE…` and `position-sync flex fetch`: IB Flex statements.

Every file is read and checked before the ledger is touched; the import is then one transaction
(app.db.statements): a bad file is exit code 2 with the file and row named, and the ledger as it
was. `fetch` downloads the statement from the Flex Web Service (app.flex.service) and imports it
the same way; a network failure is exit code 3, nothing changed. The token is never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from app.cli.context import CommandError, guarded, settings_from
from app.cli.exit_codes import ExitCode
from app.domain.decimals import decimal_text
from app.settings import Settings

if TYPE_CHECKING:  # the statements' modules load when a statement is imported (every command
    # builds the parser: the window's start too)
    from app.domain.statements import ImportSummary, Statement


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the `flex` subcommand and its `import` and `fetch` actions."""
    parser = sub.add_parser(
        "flex",
        help="merge IB Flex statements (Activity Flex Query XML) into the ledger's history",
        description="Merge IB's own record of your trades into the ledger: fills the live "
        "connection missed become exact, openings are dated by their real trades.",
    )
    actions = parser.add_subparsers(dest="flex_action", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import",
        help="import statement files",
        description="Import Activity Flex Query XML files (Trades at Execution level). "
        "Re-importing a statement changes nothing; overlapping statements merge.",
    )
    imp.add_argument("files", nargs="+", metavar="FILE", help="Flex statement XML file")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_common(imp)
    imp.set_defaults(handler=run_import)
    fetch = actions.add_parser(
        "fetch",
        help="download the statement from the Flex Web Service and import it",
        description="Download the Flex query flex_query_id with the token flex_token (both "
        "from Client Portal) from flex_url, then import it.",
    )
    fetch.add_argument(
        "--save", metavar="FILE", help="also keep the downloaded statement XML in FILE"
    )
    fetch.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_common(fetch)
    fetch.set_defaults(handler=run_fetch)


def run_import(args: argparse.Namespace) -> int:
    """Import the named files in one transaction."""

    def body() -> int:
        from app.domain.statements import StatementError, merge
        from app.flex.parse import read_statement

        settings = settings_from(args)
        zone = ZoneInfo(settings.flex_timezone)
        try:
            statement = merge(read_statement(Path(name), zone) for name in args.files)
        except StatementError as exc:
            raise CommandError(str(exc), ExitCode.USAGE) from exc
        return _import(settings, statement, args)

    return guarded(body)


def run_fetch(args: argparse.Namespace) -> int:
    """Fetch the statement from the Flex Web Service, then import it."""

    def body() -> int:
        from app.domain.statements import StatementError
        from app.flex.parse import parse_statement
        from app.flex.service import FlexRequest, FlexServiceError, fetch_statement

        settings = settings_from(args)
        request = FlexRequest(settings.flex_url, settings.flex_token, settings.flex_query_id)
        try:
            data = fetch_statement(request, progress=_progress)
        except FlexServiceError as exc:
            code = ExitCode.BROKER if exc.unreachable else ExitCode.USAGE
            raise CommandError(str(exc), code) from exc
        if args.save:
            try:
                Path(args.save).write_bytes(data)
            except OSError as exc:
                raise CommandError(
                    f"cannot keep the statement in {args.save}: {exc.strerror or exc}; "
                    "nothing was imported",
                    ExitCode.USAGE,
                ) from exc
        source = f"Flex Web Service (query {settings.flex_query_id})"
        try:
            statement = parse_statement(data, source, ZoneInfo(settings.flex_timezone))
        except StatementError as exc:
            raise CommandError(str(exc), ExitCode.USAGE) from exc
        return _import(settings, statement, args)

    return guarded(body)


def _progress(text: str) -> None:
    print(f"flex: {text}", file=sys.stderr)


def _import(settings: Settings, statement: Statement, args: argparse.Namespace) -> int:
    from app.db.migrate import open_database
    from app.db.sync_lock import writing_alone
    from app.db.writer import BlockingLedgerWriter
    from app.domain.plan import ReconcileOptions
    from app.domain.statements import summary_lines

    options = ReconcileOptions(
        mark_missing_as_closed=settings.mark_missing_as_closed,
        calculate_realized_pnl=settings.calculate_realized_pnl,
    )
    with (
        open_database(settings.database_url) as db,
        writing_alone(db.path, "position-sync flex import"),
    ):
        summary = BlockingLedgerWriter(db).import_statement(statement, options)
    if getattr(args, "json", False):
        print(json.dumps(summary_json(summary), indent=2))
    else:
        for line in summary_lines(summary):
            print(line)
    return int(ExitCode.OK)


def summary_json(summary: ImportSummary) -> dict[str, Any]:
    """The import summary as a JSON document (decimals as exact strings)."""
    return {
        "sources": list(summary.sources),
        "trades": summary.trades,
        "new": summary.new,
        "already_known": summary.known,
        "completed": summary.completed,
        "accounts_added": list(summary.accounts_added),
        "keys_rederived": len(summary.keys),
        "lifecycles_changed": summary.lifecycles_changed,
        "not_applied": list(summary.not_applied),
        "conversions_confirmed": summary.conversions_confirmed,
        "conversions_already_confirmed": summary.conversions_known,
        "realized_pnl_changes": [
            {
                "currency": p.currency,
                "before": decimal_text(p.before),
                "after": decimal_text(p.after),
                "change": decimal_text(p.delta),
                "estimated_before": decimal_text(p.estimated_before),
                "estimated_after": decimal_text(p.estimated_after),
            }
            for p in summary.pnl
        ],
    }
