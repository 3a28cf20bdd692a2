"""A re-fold keeps the stored FIFO figures of the lifecycles it derives again unchanged
(app.domain.lots.with_fifo with `stored`), and the result is always what deriving every
lifecycle's lots from scratch gives: a changed fill, a changed event or figures stored before
FIFO had a basis are derived again."""

from __future__ import annotations

from dataclasses import replace

from app.domain.fold import Folded, KeyHistory, fold
from app.domain.history import StoredHistory
from app.domain.lots import with_fifo
from app.domain.values import Fill, PnlBasis
from tests.domain.ledger_fixture import AAPL, D, fill


def _history() -> tuple[Fill, ...]:
    """Three lifecycles: 100 @ 10 + 100 @ 12, sold 150 @ 15 and 50 @ 16 (closed); 30 @ 20 +
    10 @ 21, sold 40 @ 22 (closed); 10 @ 30 (open)."""
    return (
        fill(AAPL, "BOT", "100", "10", commission="1", minutes=1),
        fill(AAPL, "BOT", "100", "12", commission="1", minutes=2),
        fill(AAPL, "SLD", "150", "15", commission="1.50", minutes=3),
        fill(AAPL, "SLD", "50", "16", commission="1", minutes=4),
        fill(AAPL, "BOT", "30", "20", commission="1", minutes=10),
        fill(AAPL, "BOT", "10", "21", commission="1", minutes=11),
        fill(AAPL, "SLD", "40", "22", commission="1", minutes=12),
        fill(AAPL, "BOT", "10", "30", commission="1", minutes=20),
    )


def _full(fills: tuple[Fill, ...]) -> tuple[Folded, KeyHistory]:
    history = KeyHistory("DU111", AAPL, fills)
    return with_fifo(fold(history), history), history


def _stored(folded: Folded, fills: tuple[Fill, ...]) -> StoredHistory:
    """What the ledger holds after writing `folded` (ids 1, 2, …)."""
    lives = tuple(
        replace(life.lifecycle, id=i) for i, life in enumerate(folded.lifecycles, start=1)
    )
    events = {i: list(life.events) for i, life in enumerate(folded.lifecycles, start=1)}
    return StoredHistory(lives, fills, (), events)


def _refold(fills: tuple[Fill, ...], stored: StoredHistory) -> Folded:
    history = KeyHistory("DU111", AAPL, fills)
    return with_fifo(fold(history), history, stored)


def test_unchanged_history_keeps_every_stored_figure() -> None:
    fills = _history()
    full, _ = _full(fills)
    assert len(full.lifecycles) == 3
    assert _refold(fills, _stored(full, fills)) == full


def test_a_late_commission_re_derives_its_lifecycle_and_keeps_the_others() -> None:
    """The 30 @ 20 arrived without its commission report; the report (1.00) changes the second
    lifecycle's FIFO figure (its lot costs 601, not 600) — equal to a from-scratch fold."""
    fills = _history()
    late = (*fills[:4], replace(fills[4], commission=None), *fills[5:])
    before, _ = _full(late)
    after = _refold(fills, _stored(before, late))
    full, _ = _full(fills)
    assert after == full
    assert after.lifecycles[1] != before.lifecycles[1]
    assert after.lifecycles[1].events[-1].pnl_basis_fifo is PnlBasis.EXACT


def test_ibs_fifo_figure_from_a_statement_re_derives_though_the_events_are_the_same() -> None:
    """A statement gives IB's fifoPnlRealized for the 40 @ 22 (55, where ours is 67): the fold's
    events do not change (average cost does not read it) but the FIFO figure does (ours, every
    input known, is kept but flagged and no longer exact): a fill that is not the one stored is
    never taken as unchanged."""
    fills = _history()
    stored = _stored(_full(fills)[0], fills)
    given = (*fills[:6], replace(fills[6], fifo_realized_pnl=D("55")), fills[7])
    history = KeyHistory("DU111", AAPL, given)
    assert fold(history) == fold(KeyHistory("DU111", AAPL, fills))  # the same events
    after = with_fifo(fold(history), history, stored)
    assert after == _full(given)[0]
    closed = after.lifecycles[1].events[-1]
    assert closed.realized_pnl_fifo == D("67")
    assert closed.pnl_basis_fifo is PnlBasis.ESTIMATED
    assert "fifoPnlRealized 55" in closed.note
    assert stored.events[2][-1].pnl_basis_fifo is PnlBasis.EXACT


def test_figures_stored_before_fifo_had_a_basis_are_derived_again() -> None:
    """Revision 0010 left realizing events without a FIFO basis; a re-fold fills them in (as a
    fold of the whole key always did), not keeps the NULLs."""
    fills = _history()
    full, _ = _full(fills)
    stored = _stored(full, fills)
    legacy = {
        i: [replace(e, realized_pnl_fifo=None, pnl_basis_fifo=None) for e in events]
        for i, events in stored.events.items()
    }
    assert _refold(fills, replace(stored, events=legacy)) == full


def test_figures_stored_before_fifo_with_realized_pnl_switched_off_are_derived_again() -> None:
    """The same with `calculate_realized_pnl` off: a fold's closing events realize 0 with no
    basis, and their FIFO amount is that 0; revision 0010's NULLs are replaced by it."""
    fills = _history()
    history = KeyHistory("DU111", AAPL, fills)
    full = with_fifo(fold(history, calculate_realized_pnl=False), history)
    closing = full.lifecycles[0].events[-1]
    assert (closing.realized_pnl, closing.pnl_basis, closing.realized_pnl_fifo) == (0, None, 0)
    stored = _stored(full, fills)
    legacy = {
        i: [replace(e, realized_pnl_fifo=None, pnl_basis_fifo=None) for e in events]
        for i, events in stored.events.items()
    }
    again = with_fifo(
        fold(history, calculate_realized_pnl=False), history, replace(stored, events=legacy)
    )
    assert again == full


def test_a_stored_figure_that_is_not_kept_is_replaced() -> None:
    """Stored events that differ from the fold's (here a realized figure) are no evidence of
    their FIFO figures: derived again."""
    fills = _history()
    full, _ = _full(fills)
    stored = _stored(full, fills)
    first = list(stored.events[1])
    first[-1] = replace(first[-1], realized_pnl=D("1"), realized_pnl_fifo=D("2"))
    assert _refold(fills, replace(stored, events={**stored.events, 1: first})) == full
