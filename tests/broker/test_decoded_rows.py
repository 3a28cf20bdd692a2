"""Unchanged rows of a full resync are not decoded again, and nothing else is remembered."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.broker.convert import Mark, RowError, portfolio_fields, position_fields
from app.broker.live import LiveBook
from app.broker.session import DecodedRows

ACCT = "DU1234567"


def position(con_id: int = 265598, quantity: str = "100", avg_cost: str = "190.5") -> list[str]:
    return ["61", "3", ACCT, str(con_id), "AAPL", "STK", "", "0.0", "", "", "NASDAQ", "USD",
            "AAPL", "NMS", quantity, avg_cost]  # fmt: skip


def portfolio(con_id: int = 265598, price: str = "191.0", quantity: str = "100") -> list[str]:
    return ["7", "8", str(con_id), "AAPL", "STK", "", "0.0", "", "", "NASDAQ", "USD", "AAPL",
            "NMS", quantity, price, "19100.0", "190.5", "50.0", "0.0", ACCT]  # fmt: skip


def test_same_text_same_object_changed_text_decoded_again() -> None:
    rows = DecodedRows()
    first = rows.position(position())
    assert first == position_fields(position())
    assert rows.position(position()) is first
    moved = rows.position(position(quantity="101"))
    assert moved is not first and moved.quantity == Decimal(101)
    assert rows.position(position()) == first  # back again: decoded, equal
    other = rows.position(position(con_id=272093))
    assert other.contract.con_id == 272093 and rows.position(position()) is not other


def test_portfolio_rows_alike() -> None:
    rows = DecodedRows()
    first = rows.portfolio(portfolio())
    assert first == portfolio_fields(portfolio())
    assert rows.portfolio(portfolio()) is first
    assert rows.portfolio(portfolio(price="192.0"))[2].market_price == Decimal(192)


def test_errors_are_raised_every_time() -> None:
    rows = DecodedRows()
    for _ in range(2):
        with pytest.raises(RowError):
            rows.position(position(quantity=""))
        with pytest.raises(RowError):
            rows.position(["61", "3", ACCT])
        with pytest.raises(RowError):
            rows.portfolio(portfolio(con_id=0))


def test_book_reuses_merged_rows_only_for_the_same_inputs() -> None:
    book = LiveBook()
    book.set_managed([ACCT])
    rows = DecodedRows()
    key, _, mark = rows.portfolio(portfolio())
    book.put_mark(key, False, mark)
    book.put_position(rows.position(position()))
    merged = book.rows[key]
    assert merged.market_price == Decimal(191)
    book.begin_positions()  # a full resync: the same texts again
    book.put_position(rows.position(position()))
    book.begin_account(ACCT)
    _, quantity, again = rows.portfolio(portfolio())
    assert again is mark
    book.put_mark(key, quantity == 0, again)
    assert book.rows[key] is merged
    book.put_mark(key, False, Mark(Decimal(200), None, None))  # the price moved
    assert book.rows[key].market_price == Decimal(200) and book.rows[key].quantity == 100
    book.put_position(rows.position(position(quantity="150")))  # and the quantity
    assert (book.rows[key].quantity, book.rows[key].market_price) == (150, Decimal(200))


def test_after_a_price_move_the_next_resync_builds_nothing_new() -> None:
    book = LiveBook()
    book.set_managed([ACCT])
    rows = DecodedRows()
    key, _, mark = rows.portfolio(portfolio())
    book.put_mark(key, False, mark)
    book.put_position(rows.position(position()))
    book.begin_account(ACCT)
    _, _, moved = rows.portfolio(portfolio(price="195.0"))  # prices moved
    book.put_mark(key, False, moved)
    merged = book.rows[key]
    assert merged.market_price == Decimal(195) and merged.quantity == 100
    book.begin_positions()  # the next resync: nothing changed since
    book.put_position(rows.position(position()))
    assert book.rows[key] is merged
    book.begin_account(ACCT)
    _, _, again = rows.portfolio(portfolio(price="195.0"))
    book.put_mark(key, False, again)
    assert book.rows[key] is merged


def test_rows_share_their_repeated_strings_and_quantities() -> None:
    """Rows of one account share its code, their contract's repeated strings and a short
    quantity text's Decimal, however many rows TWS sends (each field it splits is a new string).

    Guards the connected window's memory: 20,000 decoded rows held ~10 strings and a quantity of
    their own each."""
    rows = DecodedRows()
    # Fresh strings per row, as ib_insync's split of each message gives them.
    a = rows.position(["".join(f) for f in position(con_id=1)])
    b = rows.position(["".join(f) for f in position(con_id=2)])
    assert a.account is b.account and a.contract.currency is b.contract.currency
    assert a.contract.sec_type is b.contract.sec_type
    assert a.contract.exchange is b.contract.exchange
    assert a.contract.symbol is b.contract.symbol and a.quantity is b.quantity
    key, quantity, _ = rows.portfolio(["".join(f) for f in portfolio(con_id=1)])
    assert key[0] is a.account and quantity is a.quantity
    long = rows.position(position(con_id=3, quantity="1234567.5"))
    assert long.quantity == Decimal("1234567.5") and long.quantity is not a.quantity
    assert rows.position(position(con_id=4, quantity="1234567.5")).quantity is not long.quantity
