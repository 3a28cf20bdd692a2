"""IB's exchange rates in the ledger: the latest `ExchangeRate` per (account, currency).

Written in a sync's own transaction (app.db.store, only when the run is OK) and read for
`status`. A rate is kept with the time the broker reported it, so every base-currency figure can
say how old its rates are. Older rates are replaced, never kept beside: the table answers "what
did IB last say", not a history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.db.tables import AccountRow, ExchangeRateRow
from app.domain.values import ExchangeRate

A = cast(Table, AccountRow.__table__)
XR = cast(Table, ExchangeRateRow.__table__)


def store_rates(session: Session, rates: Iterable[ExchangeRate]) -> int:
    """Keep the newest of `rates` per (account, currency); set each account's base currency.

    Accounts the ledger does not know yet are skipped (a snapshot's rates come with its
    positions, whose accounts the same transaction has already written). A stored rate newer
    than the one given stays. Returns how many rows were inserted or updated.
    """
    newest: dict[tuple[str, str], ExchangeRate] = {}
    for rate in rates:
        key = (rate.account, rate.currency)
        known = newest.get(key)
        if known is None or rate.at >= known.at:
            newest[key] = rate
    if not newest:
        return 0
    codes = sorted({account for account, _ in newest})
    accounts: dict[str, tuple[int, str | None]] = {
        code: (account_id, base)
        for code, account_id, base in session.execute(
            select(A.c.code, A.c.id, A.c.base_currency).where(A.c.code.in_(codes))
        )
    }
    stored: dict[tuple[int, str], tuple[int, datetime]] = {
        (account_id, currency): (row_id, at)
        for row_id, account_id, currency, at in session.execute(
            select(XR.c.id, XR.c.account_id, XR.c.currency, XR.c.reported_at).where(
                XR.c.account_id.in_([account_id for account_id, _ in accounts.values()])
            )
        )
    }
    # Collected, then written as one executemany each: TWS re-sends every rate of every account
    # (50 accounts: ~150 rates), so most syncs move every row's reported_at; a statement built
    # per row cost ~40 ms of every 20,000-position sync.
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    bases: dict[int, str] = {}
    for (account, currency), rate in sorted(newest.items()):
        if account not in accounts:
            continue
        account_id = accounts[account][0]
        bases[account_id] = rate.base_currency
        values = {"base_currency": rate.base_currency, "rate": rate.rate, "reported_at": rate.at}
        held = stored.get((account_id, currency))
        if held is None:
            inserts.append({"account_id": account_id, "currency": currency, **values})
        elif held[1] <= rate.at:
            updates.append({"row_id": held[0], **values})
    if inserts:
        session.execute(insert(XR), inserts)
    if updates:
        session.execute(_UPDATE_RATE, updates)
    stored_bases = dict(accounts.values())
    moved = [
        {"row_id": account_id, "base": base}
        for account_id, base in sorted(bases.items())
        if stored_bases[account_id] != base
    ]
    if moved:
        session.execute(_UPDATE_BASE, moved)
    return len(inserts) + len(updates)


_UPDATE_RATE = update(XR).where(XR.c.id == bindparam("row_id", type_=XR.c.id.type))
"""An executemany target: `row_id` picks the rate; base_currency, rate and reported_at are set."""

_UPDATE_BASE = (
    update(A)
    .where(A.c.id == bindparam("row_id", type_=A.c.id.type))
    .values(base_currency=bindparam("base", type_=A.c.base_currency.type))
)
"""An executemany target: account `row_id`'s base currency becomes `base`."""


def latest_rates(session: Session) -> list[ExchangeRate]:
    """Every stored rate, by account code and currency."""
    query = (
        select(A.c.code, XR.c.currency, XR.c.base_currency, XR.c.rate, XR.c.reported_at)
        .join(A, A.c.id == XR.c.account_id)
        .order_by(A.c.code, XR.c.currency)
    )
    return [
        ExchangeRate(code, currency, base, rate, at)
        for code, currency, base, rate, at in session.execute(query)
    ]
