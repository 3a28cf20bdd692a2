"""`position-sync positions [--json] [--all] [--lots]`: the cached positions (or their open FIFO
tax lots), no broker needed."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.cli.context import guarded, settings_from
from app.cli.exit_codes import ExitCode
from app.cli.render import dec, lifecycle_json, lot_json, table


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the `positions` subcommand."""
    parser = sub.add_parser("positions", help="cached positions (open, or all with --all)")
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    parser.add_argument("--all", action="store_true", help="include closed lifecycles")
    parser.add_argument(
        "--lots",
        action="store_true",
        help="list the open positions' FIFO tax lots (acquired, quantity, cost basis incl. "
        "commission, holding period) instead",
    )
    add_common(parser)
    parser.set_defaults(handler=run_positions)


def run_positions(args: argparse.Namespace) -> int:
    """Print the cached positions."""

    def body() -> int:
        from app.db.migrate import open_database
        from app.db.reader import BlockingLedgerReader

        settings = settings_from(args)
        if args.lots:
            return _print_lots(args, settings.database_url)
        with open_database(settings.database_url) as db:
            rows = BlockingLedgerReader(db).positions(include_closed=bool(args.all))
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


def _print_lots(args: argparse.Namespace, database_url: str) -> int:
    """The open lots, as a table or a JSON array (closed lifecycles hold none, so --all adds
    nothing here)."""
    from app.db.migrate import open_database
    from app.db.reader import BlockingLedgerReader

    now = datetime.now(UTC).replace(microsecond=0)
    with open_database(database_url) as db:
        lots = BlockingLedgerReader(db).open_lots(getattr(args, "account", None))
    records = [lot_json(item, now) for item in lots]
    if args.json:
        print(json.dumps(records, indent=2))
        return int(ExitCode.OK)
    if not records:
        print("No open positions in the cache.")
        return int(ExitCode.OK)
    headers = ["Account", "Symbol", "Acquired", "Quantity", "Cost basis", "Per unit", "Ccy",
               "Held (days)", "Term", "Basis"]  # fmt: skip
    body_rows = [
        [
            str(r["account"]),
            str(r["local_symbol"] or r["symbol"]),
            str(r["acquired_at"])[:10],
            str(r["quantity"]),
            _money(r["cost_basis"]),
            _money(r["unit_cost"], 4),
            str(r["currency"]),
            str(r["holding_days"]),
            str(r["term"]),
            str(r["basis"]),
        ]
        for r in records
    ]
    print(table(headers, body_rows, numeric={3, 4, 5, 7}))
    estimated = sum(1 for r in records if r["basis"] != "exact")
    if estimated:
        print(
            f"{estimated} lot(s) estimated: opened without a fill the app saw, priced from IB's "
            "average cost (which prices and dates made them up is not known)"
        )
    return int(ExitCode.OK)


def _money(text: object, places: int = 2) -> str:
    return "unknown" if text is None else f"{Decimal(str(text)):.{places}f}"
