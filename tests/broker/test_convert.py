"""IB rows → domain values: exact decimals, unset values, bad rows (no network)."""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest

from app.broker.convert import (
    RowError,
    commission_fields,
    double,
    double_text,
    multiplier_text,
    portfolio_fields,
    position_fields,
    quantity_text,
)

UNSET = "1.7976931348623157E308"


def position(qty: str = "100", avg: str = "150.25", **kw: str) -> list[str]:
    f = {
        "account": "DU1234567",
        "con_id": "265598",
        "symbol": "AAPL",
        "sec_type": "STK",
        "expiry": "",
        "strike": "0.0",
        "right": "",
        "multiplier": "",
        "exchange": "NASDAQ",
        "currency": "USD",
    } | kw
    return [
        "61", "3", f["account"], f["con_id"], f["symbol"], f["sec_type"], f["expiry"],
        f["strike"], f["right"], f["multiplier"], f["exchange"], f["currency"], f["symbol"],
        "NMS", qty, avg,
    ]  # fmt: skip


def test_doubles_become_the_decimal_ib_meant() -> None:
    assert double(0.1) == Decimal("0.1")
    assert str(double(190.5)) == "190.5"
    assert str(double(80.0)) == "80"
    assert str(double(-0.0)) == "0"
    assert double(sys.float_info.max) is None
    assert double(float("nan")) is None
    assert double(float("inf")) is None
    assert double_text(UNSET) is None
    assert double_text("") is None
    assert double_text("Infinity") is None
    assert double_text("garbage") is None


def _through_a_double(text: str) -> Decimal | None:
    """What double_text gave before its shortcut for plain texts: always via float and repr."""
    try:
        return double(float(text))
    except ValueError:
        return None


def test_a_plain_double_text_reads_as_its_trip_through_a_double_would() -> None:
    """double_text's shortcut (a plain text of at most 15 digits read as is) gives the same
    digits and exponent as reading it through a float: texts TWS sends, edge forms, and
    random prices at every scale and rounding."""
    import random

    texts = [
        "0", "-0", "0.0", "-0.0", "80", "80.0", "80.50", "1.", "-.5", ".5", "007", "0.1",
        "0.00001234", "1234567890123450", "999999999999999", "9999999999999999",
        "123456789012345.6", "1e5", "1E-7", "+5", "-", ".", "١٢", "178.24", "-178.24", UNSET,
        "Infinity", "-Infinity", "NaN",
    ]  # fmt: skip
    rng = random.Random(16)
    for _ in range(20_000):
        x = rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-12, 9)
        texts += [repr(x), f"{x:.{rng.randint(0, 8)}f}", str(round(x, rng.randint(0, 6)))]
        texts.append(str(rng.randint(-(10**15), 10**15) / 10 ** rng.randint(0, 15)))
    for text in texts:
        ours, theirs = double_text(text), _through_a_double(text)
        if theirs is None:
            assert ours is None, text
        else:
            assert ours is not None and ours.as_tuple() == theirs.as_tuple(), text


def test_quantities_are_exact_and_unset_is_refused() -> None:
    assert quantity_text("0.3") == Decimal("0.3")
    assert quantity_text("0.0001") == Decimal("0.0001")
    assert quantity_text("12345678901234567") == Decimal("12345678901234567")
    assert quantity_text("-60") == Decimal(-60)
    for bad in ("", "2147483647", "9223372036854775807", UNSET, "NaN", "Infinity", "x"):
        with pytest.raises(RowError):
            quantity_text(bad)


def test_multiplier_empty_is_one() -> None:
    assert multiplier_text("") == 1
    assert multiplier_text("100") == 100
    assert multiplier_text("0.1") == Decimal("0.1")
    with pytest.raises(RowError):
        multiplier_text("0")


def test_position_row_stock_option_future() -> None:
    stock = position_fields(position())
    assert stock.key == ("DU1234567", 265598)
    assert stock.quantity == 100 and stock.average_cost == Decimal("150.25")
    assert stock.contract.multiplier == 1 and stock.contract.strike is None

    option = position_fields(
        position("5", "350.65", sec_type="OPT", strike="200.0", right="C", multiplier="100")
    )
    assert option.contract.strike == Decimal(200) and option.contract.right == "C"
    assert option.average_price == Decimal("3.5065")

    future = position_fields(
        position("2", "250012.5", sec_type="FUT", multiplier="50", exchange="", expiry="20271217")
    )
    assert future.contract.multiplier == 50 and future.contract.strike is None
    assert future.average_price == Decimal("5000.25")


def test_bad_position_rows_are_row_errors() -> None:
    """Regression: ib_insync reads an empty quantity as 0.0, which would close the position."""
    with pytest.raises(RowError, match="quantity unset"):
        position_fields(position(qty=""))
    with pytest.raises(RowError, match="no conId"):
        position_fields(position(con_id="0"))
    with pytest.raises(RowError, match="average cost"):
        position_fields(position(avg=UNSET))
    with pytest.raises(RowError, match="fields"):
        position_fields(["61", "3", "DU1234567", "1"])
    closed = position_fields(position(qty="0", avg=UNSET))
    assert closed.quantity == 0 and closed.average_cost == 0


def test_portfolio_row_unset_prices_are_none() -> None:
    fields = [
        "7", "8", "265598", "AAPL", "STK", "", "0.0", "", "", "NASDAQ", "USD", "AAPL", "NMS",
        "100", "NaN", UNSET, "150.25", "Infinity", "0.0", "DU1234567",
    ]  # fmt: skip
    key, qty, mark = portfolio_fields(fields)
    assert key == ("DU1234567", 265598) and qty == 100
    assert mark.market_price is None and mark.market_value is None
    assert mark.unrealized_pnl is None


def test_commission_realized_pnl_unset_is_none_and_zero_stays_zero() -> None:
    """Regression: ib_insync reports an unset realizedPNL as 0.0 (looks like break-even)."""
    exec_id, opening = commission_fields(["59", "1", "e.1", "1.25", "USD", UNSET, UNSET, ""])
    assert exec_id == "e.1"
    assert opening.commission == Decimal("1.25") and opening.realized_pnl is None
    _, flat = commission_fields(["59", "1", "e.2", "1.0", "USD", "0.0", UNSET, ""])
    assert flat.realized_pnl == 0
    _, closing = commission_fields(["59", "1", "e.3", "1.0", "USD", "89.0", UNSET, ""])
    assert closing.realized_pnl == Decimal(89)


def test_exchange_rates_from_account_values() -> None:
    """ExchangeRate values become rates into the base currency, exact as sent; the `BASE` row,
    unparseable, unset and non-positive values are dropped, and without a known base currency
    nothing is reported. Guards: a base-currency figure made from a guessed base or a bad rate."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from app.broker.convert import account_value_fields, exchange_rates

    at = datetime(2026, 11, 24, 15, tzinfo=UTC)
    row = account_value_fields(["6", "2", "ExchangeRate", "1.0856", "EUR", "DU1"])
    assert (row.account, row.tag, row.value, row.currency) == (
        "DU1",
        "ExchangeRate",
        "1.0856",
        "EUR",
    )
    values = {
        "EUR": ("1.0856", at),
        "BASE": ("1.00", at),
        "JPY": ("0.0066", at),
        "GBP": ("", at),
        "CHF": ("-1", at),
        "SEK": ("1.7976931348623157E308", at),
    }
    rates = exchange_rates("DU1", "USD", values)
    assert [(r.currency, r.rate, r.base_currency, r.at) for r in rates] == [
        ("EUR", Decimal("1.0856"), "USD", at),
        ("JPY", Decimal("0.0066"), "USD", at),
    ]
    assert str(rates[0].rate) == "1.0856"
    assert exchange_rates("DU1", None, values) == []
    with pytest.raises(RowError):
        account_value_fields(["6", "2", "ExchangeRate", "1.0856"])


@pytest.mark.parametrize("price", ["0.0", "-1.0", "-37.63"])
def test_portfolio_row_without_market_data_has_no_price(price: str) -> None:
    """Issue 16 item 6: TWS prices a row 0 or -1 without market data and derives its value and
    unrealized P&L from that (here the whole cost as a loss): all three are no data."""
    fields = [
        "7", "8", "265598", "AAPL", "STK", "", "0.0", "", "", "NASDAQ", "USD", "AAPL", "NMS",
        "100", price, str(float(price) * 100), "150.25", "-15025.0", "0.0", "DU1234567",
    ]  # fmt: skip
    _, qty, mark = portfolio_fields(fields)
    assert qty == 100
    assert (mark.market_price, mark.market_value, mark.unrealized_pnl) == (None, None, None)


def test_portfolio_row_priced_keeps_its_figures() -> None:
    fields = [
        "7", "8", "265598", "AAPL", "STK", "", "0.0", "", "", "NASDAQ", "USD", "AAPL", "NMS",
        "100", "0.01", "1.0", "150.25", "-15024.0", "0.0", "DU1234567",
    ]  # fmt: skip
    _, _, mark = portfolio_fields(fields)
    assert mark.market_price == Decimal("0.01") and mark.market_value == Decimal(1)
    assert mark.unrealized_pnl == Decimal(-15024)


def test_kept_account_values_are_netliq_and_cash_exact_or_nothing() -> None:
    """Guards: an unset (Double.MAX) or NaN NetLiq stored and later shown as a number or a zero
    (it must leave the last value standing), a value rewritten from its text, and a `$LEDGER-`
    prefixed row (TWS's per-currency prefix) taken for the account total."""
    from app.broker.convert import kept_account_value

    assert kept_account_value("NetLiquidation", " 125000.10 ") == ("NetLiquidation", "125000.10")
    assert kept_account_value("CashBalance", "-310.5") == ("CashBalance", "-310.5")
    assert kept_account_value("$LEDGER-CashBalance", "7") == ("CashBalance", "7")
    assert kept_account_value("$LEDGER-NetLiquidation", "7") is None  # a ledger row, no total
    assert kept_account_value("NetLiquidation", "1.7976931348623157E308") is None
    assert kept_account_value("NetLiquidation", "NaN") is None
    assert kept_account_value("NetLiquidation", "") is None
    assert kept_account_value("BuyingPower", "1000") is None  # not kept
