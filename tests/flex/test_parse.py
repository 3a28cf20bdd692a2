"""The Activity Flex Query parser: IB's layout read exactly, and every bad input refused with the
file and row named (DESIGN: bad input gets a clear message and loses nothing)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from app.domain.statements import StatementError
from app.domain.values import Side
from app.flex.parse import parse_statement
from tests.domain.ledger_fixture import AAPL, ES, SPY_C, fill
from tests.flex.builder import StatementXml, document

EASTERN = ZoneInfo("America/New_York")


def parse(text: str, source: str = "stmt.xml"):
    return parse_statement(text.encode(), source, EASTERN)


def test_a_trade_row_becomes_the_fill_the_api_would_have_given():
    sale = fill(AAPL, "SLD", "40", "160.07", commission="1.0035", exec_id="0000e0d5.6551d6b5.01.01")
    statement = parse(document(StatementXml("U1234567").trade(sale).lot(sale)))
    (got,) = statement.fills
    assert got.exec_id == "0000e0d5.6551d6b5.01.01"
    assert got.account == "U1234567"
    assert (got.side, got.shares, got.price) == (Side.SOLD, Decimal("40"), Decimal("160.07"))
    assert got.commission == Decimal("1.0035")  # ibCommission -1.0035: a cost, kept positive
    assert got.time == sale.time  # 09:31 Eastern read back as 14:31 UTC
    assert got.seen_at is None and got.realized_pnl is None
    assert got.contract.con_id == AAPL.con_id and got.contract.exchange == "NASDAQ"
    assert statement.accounts == frozenset({"U1234567"})
    assert statement.base_currencies == {"U1234567": "USD"}


def test_derivatives_keep_their_local_symbol_multiplier_and_expiry():
    rows = (
        StatementXml("U1").trade(fill(SPY_C, "BOT", "3", "5.2")).trade(fill(ES, "SLD", "2", "4500"))
    )
    statement = parse(document(rows))
    option = statement.contracts[SPY_C.con_id]
    assert (option.symbol, option.local_symbol) == ("SPY", SPY_C.local_symbol)
    assert (option.multiplier, option.expiry, option.strike, option.right) == (
        Decimal(100),
        "20261218",
        Decimal(600),
        "C",
    )
    future = statement.contracts[ES.con_id]
    assert (future.symbol, future.local_symbol, future.multiplier) == ("ES", "ESZ6", Decimal(50))


def test_times_are_read_in_the_statement_zone_or_the_zone_they_name():
    base = StatementXml("U1").trade(fill(AAPL, "BOT", "1", "1"), dateTime="20260710;093000")
    (summer,) = parse(document(base)).fills
    assert summer.time == datetime(2026, 7, 10, 13, 30, tzinfo=UTC)  # EDT: UTC-4
    named = StatementXml("U1").trade(fill(AAPL, "BOT", "1", "1"), dateTime="20261201;093000 EST")
    assert parse(document(named)).fills[0].time == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    dashed = StatementXml("U1").trade(fill(AAPL, "BOT", "1", "1"), dateTime="2026-12-01;09:30:00")
    assert parse(document(dashed)).fills[0].time == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)


def test_exchange_rates_to_base_are_kept_with_the_trade_time():
    eur = AAPL.__class__(14094, "SAP", currency="EUR", exchange="IBIS", local_symbol="SAP")
    rows = StatementXml("U1").trade(fill(eur, "BOT", "10", "120"), fxRateToBase="1.0856")
    (rate,) = parse(document(rows)).rates
    assert (rate.currency, rate.base_currency, rate.rate) == ("EUR", "USD", Decimal("1.0856"))


def bad(text: str) -> str:
    with pytest.raises(StatementError) as caught:
        parse(text, "bad.xml")
    message = str(caught.value)
    assert message.startswith("bad.xml: ")
    return message


def test_a_truncated_file_is_refused():
    text = document(StatementXml("U1").trade(fill(AAPL, "BOT", "1", "1")))
    assert "truncated" in bad(text[: len(text) // 2])


def test_malformed_xml_is_refused():
    assert "not well-formed" in bad(
        "<FlexQueryResponse><FlexStatements></Flex></FlexQueryResponse>"
    )


def test_entities_are_refused_never_expanded():
    """Guards the billion-laughs / external-entity attacks: a DTD is refused before any entity
    could be expanded."""
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
        "<FlexQueryResponse>&lol2;</FlexQueryResponse>"
    )
    assert "DOCTYPE" in bad(laughs)
    external = (
        '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        "<FlexQueryResponse>&x;</FlexQueryResponse>"
    )
    assert "refused" in bad(external)


def test_a_statement_of_another_kind_is_refused():
    text = document(StatementXml("U1").trade(fill(AAPL, "BOT", "1", "1")), kind="TCF")
    assert "type 'TCF'" in bad(text)
    assert "not a Flex statement" in bad("<html><body>login</body></html>")


def test_a_flex_error_document_is_refused_with_its_code():
    text = (
        '<FlexStatementResponse timestamp="01 December, 2026 08:30 AM EST">'
        "<Status>Fail</Status><ErrorCode>1012</ErrorCode>"
        "<ErrorMessage>Token has expired.</ErrorMessage></FlexStatementResponse>"
    )
    message = bad(text)
    assert "error 1012" in message and "Token has expired." in message


def test_a_statement_without_trades_or_at_order_level_is_refused():
    assert "no Trades section" in bad(document(StatementXml("U1", trades_section=False)))
    order = StatementXml("U1").trade(fill(AAPL, "BOT", "1", "1"), levelOfDetail="ORDER")
    assert "ORDER level" in bad(document(order))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"tradePrice": ""}, "has no tradePrice"),
        ({"tradePrice": "abc"}, "tradePrice 'abc' is not a number"),
        ({"quantity": "0"}, "quantity is 0"),
        ({"dateTime": ""}, "has no dateTime"),
        ({"dateTime": "yesterday"}, "is not yyyyMMdd;HHmmss"),
        ({"dateTime": "20260308;023000"}, "does not exist in America/New_York"),
        ({"conid": "x1"}, "is not an IB contract id"),
        ({"accountId": ""}, "has no accountId"),
        ({"ibExecID": "", "tradeID": ""}, "neither ibExecID nor tradeID"),
    ],
)
def test_a_row_missing_what_the_fold_needs_is_refused_naming_the_row(override, expected):
    good = fill(AAPL, "BOT", "1", "1", exec_id="0000e0d5.aaaa.01.01")
    rows = StatementXml("U1").trade(good).trade(fill(AAPL, "BOT", "2", "2"), **override)
    message = bad(document(rows))
    assert "line 7: Trade " in message  # the second Trade row, by line (and id when it has one)
    assert expected in message
