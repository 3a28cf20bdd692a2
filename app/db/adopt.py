"""Seed ledgers: OPEN rows from the seed's schema (no conId) adopted by a complete snapshot.

The seed keyed positions by symbol, so its rows reach head with `con_id` NULL (revision 0004)
and, when their account had only an id, in an account coded `legacy-<id>` (revision 0003).
Reconcile keys by (account, conId) and never sees such a row: it would stay OPEN beside the
lifecycle the first sync opens for the same position. Adopting fills in the conId and the
contract's columns from the one broker position it can only be, inside the sync's transaction
and before the cached state is read, so reconcile then sees the row as that key's OPEN lifecycle
(its quantity, average and realized P&L kept) and opens no second one.

When a row is adopted — never a guess between two candidates:
- Only a complete snapshot of whole accounts (no `scope`: a selective sync does not list every
  position, so it cannot tell that a symbol is unique).
- The row's account is matched by code. A `legacy-<id>` placeholder names no IB account; its
  rows are adopted into the snapshot's account only when the snapshot covers exactly one
  account, the ledger knows no other real account, and that legacy account is the only one with
  unadopted OPEN rows. Otherwise they stay as they are (the user can still Mark closed them).
  With `ib_account` limiting a sync to one of several managed accounts the snapshot cannot say
  that other accounts exist; once any of them has been synced the ledger knows it, and legacy
  rows then stay unmatched.
- The snapshot reports exactly one position of that account with that symbol, and it is held
  (a quantity 0 row of a position closed today counts as a second candidate, but is never
  adopted: which lifecycle it closed is not known); no other unadopted row competes for it; and
  the ledger holds no lifecycle of that conId in that account, OPEN or CLOSED (the app already
  tracked the contract: the seed row predates that and is not its history).
Ambiguous rows (a stock and its option share the symbol; two seed rows of one symbol) stay
unmatched and are logged once per process.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select, text, update
from sqlalchemy.orm import Session

from app.db.repository import writes
from app.db.tables import AccountRow, PositionRow
from app.domain.values import BrokerPosition, BrokerSnapshot

log = logging.getLogger(__name__)

P = cast(Table, PositionRow.__table__)
A = cast(Table, AccountRow.__table__)

LEGACY_PREFIX = "legacy-"
"""Revision 0003's placeholder code for a seed account (IB account codes have no hyphen)."""

_SEED_ROWS = text(
    "SELECT p.id, p.account_id, a.code, p.symbol FROM accounts AS a CROSS JOIN positions AS p"
    " WHERE p.account_id = a.id AND p.con_id IS NULL AND p.status = 'OPEN'"
)
"""Every unadopted OPEN seed row. SQLite keeps a CROSS JOIN's order: per account (a few), one
probe of the one-OPEN-row index at con_id NULL; without statistics its planner would otherwise
walk every OPEN row through the status index (~6 ms at 20,000 rows, at every sync)."""

_reported: set[tuple[int, str]] = set()
"""(row id, reason) already logged: an unadoptable row is named once, not at every sync."""


@dataclass(frozen=True, slots=True)
class _SeedRow:
    id: int
    account_id: int
    code: str
    symbol: str


def adopt_seed_rows(session: Session, snapshot: BrokerSnapshot) -> int:
    """Adopt what can be adopted (see the module docstring); returns how many rows were.

    One query, through the (account_id, con_id) index, when nothing is left to adopt.
    """
    if not snapshot.complete or snapshot.scope is not None:
        return 0
    rows = [_SeedRow(*row) for row in session.execute(_SEED_ROWS)]
    if not rows:
        return 0
    target = _targets(session, snapshot, rows)
    reported: dict[tuple[str, str], list[BrokerPosition]] = defaultdict(list)
    for position in snapshot.positions:
        reported[(position.account, _symbol(position.contract.symbol))].append(position)
    competing: dict[tuple[str, str], list[_SeedRow]] = defaultdict(list)
    for row in rows:
        if row.id in target:
            competing[(target[row.id], _symbol(row.symbol))].append(row)

    adopted = 0
    for (account, symbol), seed_rows in sorted(competing.items()):
        candidates = reported.get((account, symbol), [])
        if not candidates:
            continue  # not held at the broker now: nothing to adopt it by
        if len(candidates) > 1 or len(seed_rows) > 1:
            for row in seed_rows:
                _report_once(
                    row,
                    "ambiguous",
                    "seed position %s (%s, account %s) stays unmatched: the broker reports %d "
                    "positions and the ledger %d seed rows of that symbol",
                    row.id,
                    row.symbol,
                    _mask(account),
                    len(candidates),
                    len(seed_rows),
                )
            continue
        row, position = seed_rows[0], candidates[0]
        if position.quantity == 0:
            _report_once(
                row,
                "zero",
                "seed position %s (%s, account %s) stays unmatched: the broker reports that "
                "symbol closed today (quantity 0)",
                row.id,
                row.symbol,
                _mask(account),
            )
            continue
        if _adopt(session, row, account, position):
            adopted += 1
    return adopted


def _targets(session: Session, snapshot: BrokerSnapshot, rows: list[_SeedRow]) -> dict[int, str]:
    """The IB account each row may be adopted into, by row id (rows absent: not now)."""
    target = {row.id: row.code for row in rows if row.code in snapshot.accounts}
    legacy = [row for row in rows if row.code.startswith(LEGACY_PREFIX)]
    if not legacy:
        return target
    legacy_accounts = {row.code for row in legacy}
    if len(snapshot.accounts) != 1 or len(legacy_accounts) != 1:
        for row in legacy:
            _report_once(
                row,
                "legacy",
                "seed position %s (%s) of placeholder account %s stays unmatched: the sync "
                "covers %d accounts and %d placeholder accounts hold seed rows, so which IB "
                "account it belongs to is not known",
                row.id,
                row.symbol,
                row.code,
                len(snapshot.accounts),
                len(legacy_accounts),
            )
        return target
    (account,) = snapshot.accounts
    others = session.execute(
        select(func.count())
        .select_from(A)
        .where(A.c.code != account, A.c.code.not_like(f"{LEGACY_PREFIX}%"))
    ).scalar_one()
    if others:
        for row in legacy:
            _report_once(
                row,
                "legacy",
                "seed position %s (%s) of placeholder account %s stays unmatched: the ledger "
                "knows %d other IB accounts it may belong to",
                row.id,
                row.symbol,
                row.code,
                others,
            )
        return target
    target.update((row.id, account) for row in legacy)
    return target


def _adopt(session: Session, row: _SeedRow, account: str, position: BrokerPosition) -> bool:
    """Fill in the row's contract (and real account); False when the key is already tracked."""
    account_id = writes.account_ids(session, [account], create=True)[account]
    c = position.contract
    held = session.execute(
        select(P.c.id).where(P.c.account_id == account_id, P.c.con_id == c.con_id).limit(1)
    ).first()
    if held is not None:
        _report_once(
            row,
            "held",
            "seed position %s (%s, account %s) stays unmatched: position %s already tracks "
            "conId %s",
            row.id,
            row.symbol,
            _mask(account),
            held[0],
            c.con_id,
        )
        return False
    values: dict[str, Any] = {
        "account_id": account_id,
        "con_id": c.con_id,
        "sec_type": c.sec_type,
        "currency": c.currency,
        "exchange": c.exchange,
        "local_symbol": c.local_symbol,
        "multiplier": c.multiplier,
        "expiry": c.expiry,
        "strike": c.strike,
        "right": c.right,
    }
    # `con_id IS NULL` again: a second syncer (PostgreSQL) that adopted it first wins.
    done = session.execute(
        update(P).where(P.c.id == row.id, P.c.con_id.is_(None)).values(values)
    ).rowcount  # type: ignore[attr-defined]
    if done:
        log.warning(
            "adopted seed position %s (%s%s) as conId %s %s %s of account %s",
            row.id,
            row.symbol,
            f", from {row.code}" if row.code != account else "",
            c.con_id,
            c.sec_type,
            c.currency,
            _mask(account),
        )
    return bool(done)


def _symbol(symbol: str) -> str:
    return symbol.strip().upper()


def _mask(account: str) -> str:
    """An IB account code for logs: its last three characters only (house rule 6)."""
    if account.startswith(LEGACY_PREFIX):
        return account  # a placeholder, not an account number
    return "…" + account[-3:] if account else "<none>"


def _report_once(row: _SeedRow, reason: str, message: str, *args: object) -> None:
    if (row.id, reason) in _reported:
        return
    _reported.add((row.id, reason))
    log.warning(message, *args)
