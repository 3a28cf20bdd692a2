"""`position-sync status [--json]`: last sync, counts, stats and discrepancies, from the cache."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from app.cli.context import guarded, settings_from
from app.cli.exit_codes import ExitCode
from app.cli.render import age, dec, iso, status_json
from app.domain.account_values import Figure, account_figures
from app.domain.records import LedgerStatus
from app.domain.values import CostBasis


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the `status` subcommand."""
    parser = sub.add_parser("status", help="last sync, counts and warnings (no broker needed)")
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    add_common(parser)
    parser.set_defaults(handler=run_status)


def run_status(args: argparse.Namespace) -> int:
    """Print the ledger's status."""

    def body() -> int:
        from app.db.migrate import open_database
        from app.db.reader import BlockingLedgerReader

        settings = settings_from(args)
        with open_database(settings.database_url) as db:
            # The revision stamped in the ledger, read in the same snapshot as the rest.
            status = BlockingLedgerReader(db).status(settings.cost_basis)
        now = datetime.now(UTC)
        if getattr(args, "json", False):
            print(json.dumps(status_json(status, now), indent=2))
            return int(ExitCode.OK)
        doc = status_json(status, now)
        print(f"Database      {status.database} (revision {status.revision})")
        print(f"Positions     {status.open_positions} open, {status.closed_positions} closed")
        for line in realized_lines(status):
            print(line)
        if status.last_success and status.last_success.finished_at:
            seconds = doc["last_synced_age_seconds"]
            print(f"Last synced   {iso(status.last_success.finished_at)} ({age(seconds)} ago)")
        else:
            print("Last synced   never")
        if status.last_run and status.last_run.status.value != "ok":
            print(f"Last run      {status.last_run.status.value}: {status.last_run.error or ''}")
        rate = status.stats.success_rate
        if rate is not None:
            print(f"Success rate  {rate:.0%} of the last {status.stats.runs} runs")
        for line in account_value_lines(status, now):
            print(line)
        for line in gap_lines(status, doc):
            print(line)
        for p in status.missing_at_broker:
            print(
                f"WARNING       {p.account} {p.contract.local_symbol or p.contract.symbol} "
                f"{dec(p.quantity)}: not reported by the broker since {iso(p.missing_since)}"
            )
        return int(ExitCode.OK)

    return guarded(body)


def gap_lines(status: LedgerStatus, doc: dict[str, Any]) -> list[str]:
    """What the last committed sync lacked: stale prices per account, unavailable fills."""
    lines: list[str] = []
    for stale, entry in zip(status.stale_prices, doc["stale_prices"], strict=True):
        since = (
            f"as of {iso(stale.as_of)} ({age(entry['prices_age_seconds'])} ago)"
            if stale.as_of
            else "never refreshed in the runs kept"
        )
        lines.append(f"PRICES STALE  {stale.account}: {since}; {stale.reason}")
    if doc["fills_unavailable"]:
        lines.append(
            f"FILLS         unavailable in the last sync ({doc['fills_unavailable']}); changes "
            "they would explain are estimates until they arrive"
        )
    return lines


def realized_lines(status: LedgerStatus) -> list[str]:
    """Realized P&L, one line per currency with its exact and estimated parts apart; then the
    base-currency figure where IB's rates cover every currency (labelled with them)."""
    label = "Realized P&L  "
    fifo = status.cost_basis is CostBasis.FIFO
    pad = " " * len(label)
    by = status.realized_by_currency
    if not by:
        return [f"{label}none yet"]
    lines: list[str] = []
    for i, (currency, t) in enumerate(by.items()):
        text = f"{currency or '(no currency)'} {dec(t.total)} (exact {dec(t.exact)}, "
        text += f"estimated {dec(t.estimated)})"
        if fifo:
            text += " FIFO lots"
        if t.unknown_count:
            text += f"; {t.unknown_count} unpriced, not included"
        lines.append((label if i == 0 else pad) + text)
    conversion = status.realized_in_base
    base = conversion.total
    if base is not None and (len(by) > 1 or base.rates):
        used = ", ".join(f"{r.currency} {dec(r.rate)}" for r in base.rates)
        lines.append(
            f"{pad}= {base.base_currency} {dec(base.total)} (estimated {dec(base.estimated)}) "
            f"at IB's rates {used} of {iso(base.rates_at)}"
        )
    elif len(by) > 1:
        lines.append(f"{pad}no base-currency total: {conversion.reason}")
    return lines


def account_value_lines(status: LedgerStatus, now: datetime) -> list[str]:
    """IB's NetLiq and cash per account: its totals in its base currency, then its ledger per
    currency, each figure with the time IB reported it (a value IB stopped sending keeps its
    last report, so its age tells)."""
    label = "NetLiq, cash  "
    pad = " " * len(label)

    def figure(name: str, f: Figure | None) -> str:
        if f is None:
            return f"{name} unknown"
        return f"{name} {dec(f.amount)} ({iso(f.at)}, {age((now - f.at).total_seconds())} ago)"

    lines: list[str] = []
    accounts = sorted({v.account for v in status.account_values})
    for code in accounts:
        figures = account_figures(status.account_values, status.base_currencies, [code])
        parts = [
            f"{c.currency} {figure('NetLiq', c.net_liquidation)}, {figure('cash', c.cash)}"
            for c in figures.in_base
        ]
        head = f"{code} total " + "; ".join(parts) if parts else f"{code} no total from IB"
        lines.append((label if not lines else pad) + head)
        for c in figures.by_currency:
            lines.append(
                f"{pad}{code} {c.currency}: "
                f"{figure('NetLiq', c.net_liquidation)}, {figure('cash', c.cash)}"
            )
    if not lines:
        lines.append(f"{label}none from IB yet (stored by the first complete sync)")
    return lines
