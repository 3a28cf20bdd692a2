"""`position-sync positions [--json] [--all]`: the cached positions, no broker needed."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from app.cli.context import guarded, settings_from
from app.cli.exit_codes import ExitCode
from app.cli.render import dec, lifecycle_json, table


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the `positions` subcommand."""
    parser = sub.add_parser("positions", help="cached positions (open, or all with --all)")
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    parser.add_argument("--all", action="store_true", help="include closed lifecycles")
    add_common(parser)
    parser.set_defaults(handler=run_positions)


def run_positions(args: argparse.Namespace) -> int:
    """Print the cached positions."""

    def body() -> int:
        from app.db import repository
        from app.db.migrate import open_database

        settings = settings_from(args)
        with open_database(settings.database_url) as db:
            rows = db.run_sync(repository.positions, include_closed=bool(args.all))
        if args.json:
            print(json.dumps([lifecycle_json(p) for p in rows], indent=2))
            return int(ExitCode.OK)
        if not rows:
            print("No cached positions." if args.all else "No open positions in the cache.")
            return int(ExitCode.OK)
        headers = ["Account", "Symbol", "Type", "Quantity", "Avg price", "Last", "Unrealized",
                   "Realized", "Status", "Warning"]  # fmt: skip
        body_rows = [
            [
                p.account,
                p.contract.local_symbol or p.contract.symbol,
                p.contract.sec_type,
                dec(p.quantity) or "",
                f"{p.average_price:.4f}",
                f"{p.current_price:.4f}" if p.current_price is not None else "",
                f"{p.unrealized_pnl:.2f}" if p.unrealized_pnl is not None else "",
                f"{p.realized_pnl:.2f}",
                p.status.value,
                "missing at broker" if p.missing_since else "",
            ]
            for p in rows
        ]
        print(table(headers, body_rows, numeric={3, 4, 5, 6, 7}))
        return int(ExitCode.OK)

    return guarded(body)
