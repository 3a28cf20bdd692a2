"""A known ledger whose realized totals differ between average cost and FIFO lots, in two
currencies, with an estimated FIFO amount and one with no FIFO figure — written by real syncs
through LedgerStore (the store the app uses, which folds each key and derives its FIFO lots) on
a real, migrated database. The window, chart, API and status tests of the setting `cost_basis`
share it; the figures below are worked by hand.

All in account DU111, T0 = 24 Nov 2026 14:30 UTC:

- AAPL (USD), 24 Nov: buy 100 @ 10 and 100 @ 12 (1.00 each; IB's average 11.01), sell 150 @ 15
  (1.50). Average cost (15 − 11.01) × 150 − 1.50 = 597.00; FIFO 2,248.50 − 1,001 − 600.50 =
  647.00; both exact. Still open (50): a partial close.
- MSFT (USD), 24 Nov: buy 10 @ 100 (1.00; IB's average 100.10), sell 10 @ 120 (1.00): closed.
  Average cost (120 − 100.10) × 10 − 1 = 198.00, exact. Its event is then given no FIFO figure
  (as an event folded before FIFO was derived, revision 0010): under FIFO one unpriced amount.
- SAP (EUR): 10 held before the app's first sync (IB's average 100, no fills); 25 Nov buy 10 @
  110 (IB's average 105), sell 15 @ 120. Average cost (120 − 105) × 15 = 225.00, exact; FIFO
  releases the lot priced from IB's average (10 × 100, a guess) and 5 @ 110: 1,800 − 1,000 −
  550 = 250.00, estimated. Still open (5): a partial close.

So, per currency:
                 average cost            FIFO lots
  closed         USD 198                 USD 0, 1 unpriced
  partial        USD 597 · EUR 225       USD 647 · EUR 250 (all estimated)
  all            USD 795 · EUR 225       USD 647 + 1 unpriced · EUR 250 (estimated)
  per day        24 Nov USD 795          24 Nov USD 647 (1 unpriced)
                 25 Nov EUR 225          25 Nov EUR 250 (estimated)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from app.db.database import Database
from app.db.migrate import open_database
from app.db.store import LedgerStore
from app.domain.plan import ReconcileOptions
from app.domain.values import BrokerSnapshot, Contract, SyncTrigger
from tests.domain.ledger_fixture import AAPL, MSFT, D, fill, pos, snapshot

SAP = Contract(14204, "SAP", currency="EUR", exchange="IBIS", local_symbol="SAP")
DAY = 24 * 60  # minutes

AVERAGE_CLOSED = {"USD": (D(198), D(0), 0)}
AVERAGE_PARTIAL = {"EUR": (D(225), D(0), 0), "USD": (D(597), D(0), 0)}
FIFO_CLOSED = {"USD": (D(0), D(0), 1)}
FIFO_PARTIAL = {"EUR": (D(0), D(250), 0), "USD": (D(647), D(0), 0)}
"""(exact, estimated, unknown count) per currency."""


def _commit(db: Database, snap: BrokerSnapshot) -> None:
    """One sync through LedgerStore.commit_snapshot (from a thread without a running loop)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            LedgerStore(db).commit_snapshot(
                snap, ReconcileOptions(), SyncTrigger.MANUAL, snap.taken_at
            )
        )
    finally:
        loop.close()


def _no_fifo_for_msft(session: object) -> None:
    assert isinstance(session, sa.orm.Session)
    session.execute(
        sa.text(
            "UPDATE position_events SET realized_pnl_fifo = NULL, pnl_basis_fifo = NULL "
            "WHERE realized_pnl IS NOT NULL AND position_id IN (SELECT p.id FROM positions p "
            "JOIN accounts a ON a.id = p.account_id WHERE p.symbol = 'MSFT' AND a.code = 'DU111')"
        )
    )


def cost_basis_ledger(path: Path | str) -> None:
    """Write the ledger above into the SQLite file `path` (created and migrated)."""
    with open_database(path) as db:
        buys = (
            fill(AAPL, "BOT", "100", "10", commission="1", minutes=1),
            fill(AAPL, "BOT", "100", "12", commission="1", minutes=2),
            fill(MSFT, "BOT", "10", "100", commission="1", minutes=3),
        )
        _commit(
            db,
            snapshot(
                pos(AAPL, "200", "11.01"),
                pos(MSFT, "10", "100.1"),
                pos(SAP, "10", "100"),
                fills=buys,
                minutes=5,
            ),
        )
        sales = (
            fill(AAPL, "SLD", "150", "15", commission="1.50", minutes=6),
            fill(MSFT, "SLD", "10", "120", commission="1", minutes=8),
        )
        _commit(
            db,
            snapshot(pos(AAPL, "50", "11.01"), pos(SAP, "10", "100"), fills=sales, minutes=10),
        )
        sap_buy = fill(SAP, "BOT", "10", "110", minutes=DAY + 1)
        _commit(
            db,
            snapshot(
                pos(AAPL, "50", "11.01"), pos(SAP, "20", "105"), fills=(sap_buy,), minutes=DAY + 2
            ),
        )
        sap_sale = fill(SAP, "SLD", "15", "120", minutes=DAY + 6)
        _commit(
            db,
            snapshot(
                pos(AAPL, "50", "11.01"), pos(SAP, "5", "105"), fills=(sap_sale,), minutes=DAY + 7
            ),
        )
        db.run_sync(_no_fifo_for_msft)
