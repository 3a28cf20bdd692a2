"""LiveBook rules on their own: currency of data per generation, zeros, marks, skips."""

from __future__ import annotations

from decimal import Decimal

from app.broker.convert import Mark
from app.broker.live import LiveBook
from app.domain.values import BrokerPosition, Contract

ACCT = "DU1234567"


def row(con_id: int, qty: str) -> BrokerPosition:
    return BrokerPosition(ACCT, Contract(con_id, f"S{con_id}"), Decimal(qty), Decimal(10))


def test_positions_are_current_only_for_this_generation() -> None:
    book = LiveBook()
    book.set_managed([ACCT])
    assert not book.positions_current()
    book.begin_positions()
    book.end_positions()
    assert book.positions_current()
    book.invalidate()  # 1100, or a restore
    assert not book.positions_current()
    book.begin_positions()
    book.invalidate()  # IB lost while the answer was on its way
    book.end_positions()
    assert not book.positions_current()


def test_fresh_positions_drop_stale_rows_but_keep_explicit_zeros() -> None:
    book = LiveBook()
    book.set_managed([ACCT])
    book.put_position(row(1, "5"))
    book.put_position(row(2, "0"))  # closed earlier on this connection
    book.skip((ACCT, 3), "quantity unset")
    book.begin_positions()
    assert set(book.rows) == {(ACCT, 2)} and book.skipped == {}


def test_marks_merge_into_rows_and_scope_limits() -> None:
    book = LiveBook()
    book.set_managed([ACCT])
    book.put_mark((ACCT, 1), False, Mark(Decimal("10.5"), Decimal(105), Decimal(5)))
    book.put_position(row(1, "10"))
    book.put_position(row(2, "3"))
    book.put_mark((ACCT, 2), False, Mark(None, None, None))
    book.skip((ACCT, 4), "quantity unset")
    snap = book.assemble((ACCT,), frozenset({(ACCT, 1), (ACCT, 4)}), [], [])
    assert [p.market_price for p in snap.positions] == [Decimal("10.5")]
    assert [s.key for s in snap.skipped] == [(ACCT, 4)]
    full = book.assemble((ACCT,), None, [], [])
    assert {p.key: p.market_price for p in full.positions} == {
        (ACCT, 1): Decimal("10.5"),
        (ACCT, 2): None,
    }


def test_account_limit_and_unmanaged_rows() -> None:
    book = LiveBook()
    book.set_managed([ACCT, "DU7654321"])
    book.put_position(row(1, "1"))
    book.put_position(BrokerPosition("DU7654321", Contract(9, "X"), Decimal(1), Decimal(1)))
    book.skip(("DU0000009", 5), "account …009 is not managed by this login")
    snap = book.assemble((ACCT,), None, [], [])
    assert [p.key for p in snap.positions] == [(ACCT, 1)]
    assert [s.key for s in snap.skipped] == [("DU0000009", 5)]  # reported, blocks nothing of ours
