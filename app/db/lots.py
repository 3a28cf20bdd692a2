"""Open FIFO lots read from the ledger: each OPEN lifecycle's stored events and fills, through
app.domain.lots (derived on read from the stored facts, so they always match the key's fold)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.repository import queries
from app.domain.lots import OpenLot, open_lots_of


def open_lots(session: Session, account: str | None = None) -> list[OpenLot]:
    """Every open lot of the OPEN lifecycles (one IB account's only, with `account`), in the
    order `positions` lists the lifecycles and each lifecycle's lots oldest first."""
    lives = [p for p in queries.positions(session) if account is None or p.account == account]
    histories = queries.load_histories(session, sorted({p.key for p in lives}))
    out: list[OpenLot] = []
    for life in lives:
        history = histories.get(life.key)
        events = history.events.get(life.id or 0, ()) if history is not None else ()
        fills = {f.exec_id: f for f in history.fills} if history is not None else {}
        out.extend(open_lots_of(life, events, fills))
    return out
