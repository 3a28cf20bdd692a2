"""IB's NetLiq and cash account values in the ledger: the latest per (account, tag, currency).

The same pattern as app.db.rates: written in a sync's own transaction (app.db.store, only when
the run is OK), read for the summary strip and `status`. Each value keeps the text IB sent and
the time it was reported; a newer report replaces it, an older one never does, and a value IB
leaves out of an answer simply stays (with its age) — the table answers "what did IB last say".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.db.tables import AccountRow, AccountValueRow
from app.domain.account_values import KEPT_TAGS
from app.domain.values import AccountValue

A = cast(Table, AccountRow.__table__)
AV = cast(Table, AccountValueRow.__table__)


def store_account_values(session: Session, values: Iterable[AccountValue]) -> int:
    """Keep the newest of `values` per (account, tag, currency); returns rows inserted or changed.

    Accounts the ledger does not know are skipped (the snapshot's positions wrote its accounts
    earlier in the same transaction); tags the ledger does not keep are ignored. A stored value
    newer than the one given stays; the same report again writes nothing.
    """
    newest: dict[tuple[str, str, str], AccountValue] = {}
    for value in values:
        if value.tag not in KEPT_TAGS:
            continue
        key = (value.account, value.tag, value.currency)
        known = newest.get(key)
        if known is None or value.at >= known.at:
            newest[key] = value
    if not newest:
        return 0
    codes = sorted({account for account, _, _ in newest})
    ids: dict[str, int] = dict(
        session.execute(select(A.c.code, A.c.id).where(A.c.code.in_(codes))).all()
    )
    stored: dict[tuple[int, str, str], tuple[int, str, datetime]] = {
        (account_id, tag, currency): (row_id, text, at)
        for row_id, account_id, tag, currency, text, at in session.execute(
            select(
                AV.c.id, AV.c.account_id, AV.c.tag, AV.c.currency, AV.c.value, AV.c.reported_at
            ).where(AV.c.account_id.in_(list(ids.values())))
        )
    }
    # Collected, then written as two executemany statements: TWS re-sends every value of every
    # account (50 accounts: ~400 rows), so most syncs move each row's reported_at; one
    # statement per row cost ~40 ms of a nothing-changed 20,000-position sync.
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    for (account, tag, currency), value in sorted(newest.items()):
        account_id = ids.get(account)
        if account_id is None:
            continue
        held = stored.get((account_id, tag, currency))
        if held is None:
            inserts.append(
                {
                    "account_id": account_id,
                    "tag": tag,
                    "currency": currency,
                    "value": value.value,
                    "reported_at": value.at,
                }
            )
        elif held[2] < value.at or (held[2] == value.at and held[1] != value.value):
            updates.append({"row_id": held[0], "value": value.value, "reported_at": value.at})
    if inserts:
        session.execute(insert(AV), inserts)
    if updates:
        session.execute(_UPDATE_BY_ID, updates)
    return len(inserts) + len(updates)


_UPDATE_BY_ID = update(AV).where(AV.c.id == bindparam("row_id", type_=AV.c.id.type))
"""An executemany target: `row_id` picks the row; value and reported_at are set."""


def latest_account_values(session: Session) -> list[AccountValue]:
    """Every stored value, by account code, tag and currency."""
    query = (
        select(A.c.code, AV.c.tag, AV.c.currency, AV.c.value, AV.c.reported_at)
        .join(A, A.c.id == AV.c.account_id)
        .order_by(A.c.code, AV.c.tag, AV.c.currency)
    )
    return [
        AccountValue(code, tag, currency, text, at)
        for code, tag, currency, text, at in session.execute(query)
    ]


def base_currencies(session: Session) -> dict[str, str | None]:
    """Each known account's base currency (from IB's rates; None while unknown)."""
    return {code: base for code, base in session.execute(select(A.c.code, A.c.base_currency))}
