"""Issue 17 item 4: where a Flex statement gives IB's `fifoPnlRealized`, the ledger's FIFO
figure equals it to the cent, a difference is flagged (like the average-cost check), and IB's
figure replaces a FIFO guess. Through `flex import` on SQLite and PostgreSQL."""

from __future__ import annotations

from app.db import repository
from app.db.migrate import open_database
from app.domain.values import EventKind, PnlBasis
from tests.db.test_postgresql import commit
from tests.domain.ledger_fixture import AAPL, D, fill, pos, snapshot
from tests.flex.builder import StatementXml, write
from tests.flex.test_import import DAY, aapl_lifecycles, events_of, flex_import

BUY1 = fill(AAPL, "BOT", "100", "10", commission="1", minutes=1, exec_id="0003.a.01.01")
BUY2 = fill(AAPL, "BOT", "100", "12", commission="1", minutes=2, exec_id="0003.b.01.01")
SALE = fill(AAPL, "SLD", "150", "15", commission="1.5", minutes=3, exec_id="0003.c.01.01")


def _sale_event(url):
    (life,) = aapl_lifecycles(url)
    (event,) = [e for e in events_of(url, life.id) if e.kind is EventKind.REDUCED]
    return event


def test_fifo_equals_ibs_fifo_pnl_realized(ledger_url, tmp_path, capsys):
    """100 @ 10 and 100 @ 12 (1.00 each), 150 sold @ 15 (1.50): IB's FIFO figure 647.00
    (2248.50 − 1001 − 600.50) equals ours, exact; average cost 597.00 beside it."""
    statement = StatementXml("DU111").trade(BUY1, fifoPnlRealized="0")
    statement.trade(BUY2, fifoPnlRealized="0").trade(SALE, fifoPnlRealized="647")
    flex_import(ledger_url, write(tmp_path / "s.xml", statement), capsys=capsys)
    event = _sale_event(ledger_url)
    assert (event.realized_pnl_fifo, event.pnl_basis_fifo) == (D("647"), PnlBasis.EXACT)
    assert (event.realized_pnl, event.pnl_basis) == (D("597"), PnlBasis.EXACT)
    assert "fifoPnlRealized" not in event.note
    with open_database(ledger_url) as db:
        fills = db.run_sync(repository.all_fills)
    assert [f.fifo_realized_pnl for f in fills] == [D(0), D(0), D(647)]


def test_a_difference_from_ibs_fifo_figure_is_flagged(ledger_url, tmp_path, capsys):
    """IB says 650.00 for the same fills: ours (647) is kept, not called exact, and the event's
    note names both."""
    statement = StatementXml("DU111").trade(BUY1, fifoPnlRealized="0")
    statement.trade(BUY2, fifoPnlRealized="0").trade(SALE, fifoPnlRealized="650")
    flex_import(ledger_url, write(tmp_path / "s.xml", statement), capsys=capsys)
    event = _sale_event(ledger_url)
    assert (event.realized_pnl_fifo, event.pnl_basis_fifo) == (D("647"), PnlBasis.ESTIMATED)
    assert "FIFO realized 647 differs from IB's fifoPnlRealized 650" in event.note
    assert event.pnl_basis is PnlBasis.EXACT  # the average-cost figure is not touched


def test_ibs_fifo_figure_replaces_a_guess_from_a_residual_lot(ledger_url, tmp_path, capsys):
    """Held 100 before the app's first sync (one lot at IB's average 149.51: an estimate of
    which lots they were); a sale of 40 @ 160 missed while the app was closed. The statement
    gives only the sale, with IB's FIFO figure 418.60: that is the fact, exact."""
    with open_database(ledger_url) as db:
        commit(db, snapshot(pos(AAPL, "100", "149.51", market="150"), minutes=5))
        commit(db, snapshot(pos(AAPL, "60", "149.51", market="161"), minutes=DAY + 5))
    sale = fill(AAPL, "SLD", "40", "160", commission="1", minutes=180, exec_id="0004.b.01.01")
    path = write(tmp_path / "s.xml", StatementXml("DU111").trade(sale, fifoPnlRealized="418.6"))
    flex_import(ledger_url, path, capsys=capsys)
    event = _sale_event(ledger_url)
    assert (event.realized_pnl_fifo, event.pnl_basis_fifo) == (D("418.6"), PnlBasis.EXACT)


def test_without_ibs_figure_a_residual_lot_stays_an_estimate(ledger_url, tmp_path, capsys):
    """The same without `fifoPnlRealized`: (160 × 40 − 1) − 40 × 149.51 = 418.60, estimated
    (the lot is IB's average, not a known purchase)."""
    with open_database(ledger_url) as db:
        commit(db, snapshot(pos(AAPL, "100", "149.51", market="150"), minutes=5))
        commit(db, snapshot(pos(AAPL, "60", "149.51", market="161"), minutes=DAY + 5))
    sale = fill(AAPL, "SLD", "40", "160", commission="1", minutes=180, exec_id="0004.b.01.01")
    flex_import(ledger_url, write(tmp_path / "s.xml", StatementXml("DU111").trade(sale)),
                capsys=capsys)  # fmt: skip
    event = _sale_event(ledger_url)
    assert (event.realized_pnl_fifo, event.pnl_basis_fifo) == (D("418.6"), PnlBasis.ESTIMATED)


def test_ibs_figure_for_fills_the_ledger_already_booked_is_compared(ledger_url, tmp_path, capsys):
    """The app booked the three fills live (FIFO 647, exact); a statement then gives IB's
    figure 650 for the same executions. The average-cost events are derived again unchanged,
    but the FIFO figure is compared with IB's and flagged, as for a statement's new fills.

    Guards the re-fold keeping the stored FIFO figures of lifecycles it derives again unchanged:
    the statement completes the stored fills before the key is folded, so the stored figures
    rest on fills that are no longer the ledger's."""
    with open_database(ledger_url) as db:
        commit(db, snapshot(pos(AAPL, "50", "11.01"), fills=(BUY1, BUY2, SALE), minutes=5))
    booked = _sale_event(ledger_url)
    assert (booked.realized_pnl_fifo, booked.pnl_basis_fifo) == (D("647"), PnlBasis.EXACT)
    statement = StatementXml("DU111").trade(BUY1, fifoPnlRealized="0")
    statement.trade(BUY2, fifoPnlRealized="0").trade(SALE, fifoPnlRealized="650")
    flex_import(ledger_url, write(tmp_path / "s.xml", statement), capsys=capsys)
    event = _sale_event(ledger_url)
    assert (event.realized_pnl_fifo, event.pnl_basis_fifo) == (D("647"), PnlBasis.ESTIMATED)
    assert "FIFO realized 647 differs from IB's fifoPnlRealized 650" in event.note
    assert (event.realized_pnl, event.pnl_basis) == (booked.realized_pnl, booked.pnl_basis)
