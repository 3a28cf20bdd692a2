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

from sqlalchemy import Table, insert, select, update
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
    ids: dict[str, int] = dict(
        session.execute(select(A.c.code, A.c.id).where(A.c.code.in_(codes))).all()
    )
    stored: dict[tuple[int, str], tuple[int, datetime]] = {
        (account_id, currency): (row_id, at)
        for row_id, account_id, currency, at in session.execute(
            select(XR.c.id, XR.c.account_id, XR.c.currency, XR.c.reported_at).where(
                XR.c.account_id.in_(list(ids.values()))
            )
        )
    }
    written = 0
    bases: dict[int, str] = {}
    for (account, currency), rate in sorted(newest.items()):
        account_id = ids.get(account)
        if account_id is None:
            continue
        bases[account_id] = rate.base_currency
        values = {
            "base_currency": rate.base_currency,
            "rate": rate.rate,
            "reported_at": rate.at,
        }
        held = stored.get((account_id, currency))
        if held is None:
            session.execute(insert(XR).values(account_id=account_id, currency=currency, **values))
        elif held[1] <= rate.at:
            session.execute(update(XR).where(XR.c.id == held[0]).values(**values))
        else:
            continue
        written += 1
    for account_id, base in bases.items():
        session.execute(
            update(A)
            .where(A.c.id == account_id, A.c.base_currency.is_distinct_from(base))
            .values(base_currency=base)
        )
    return written


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
