"""OptionEAE, CorporateActions and Transfers from a statement: an expiry and a forward split
replace what the syncs had to derive; what cannot be stated as fills (a transfer, a reverse
split) is listed as not applied and changes nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.db.migrate import open_database
from app.domain.values import EventKind, PnlBasis, PositionStatus
from app.flex.parse import parse_statement
from tests.db.test_repository import commit
from tests.domain.ledger_fixture import AAPL, SPY_C, D, fill, pos, snapshot
from tests.flex.builder import StatementXml, contract_attrs, document, write
from tests.flex.test_import import DAY, events_of, flex_import, ledger_dump

EASTERN = ZoneInfo("America/New_York")


def test_an_expiry_closes_the_option_at_zero_exactly(ledger_url, tmp_path, capsys):
    """The ledger saw the call held, then gone after expiry; the statement dates the opening
    and books the expiry IB recorded (the premium realized exactly)."""
    with open_database(ledger_url) as db:
        commit(db, snapshot(pos(SPY_C, "3", "5.21"), minutes=5))
        commit(db, snapshot(minutes=27 * DAY))  # 21 Dec: absent, past the 18 Dec expiry
    buy = fill(SPY_C, "BOT", "3", "5.2", commission="3", minutes=-DAY, exec_id="0004.a.01.01")
    statement = StatementXml("DU111").trade(buy)
    statement.row(
        "OptionEAE", "OptionEAE", **contract_attrs(SPY_C), transactionType="Expiration",
        date="20261218", quantity="-3", tradePrice="0", tradeID="777001", realizedPnl="-1563",
    )  # fmt: skip
    out = flex_import(ledger_url, write(tmp_path / "eae.xml", statement), capsys=capsys)
    assert "2 new" in out
    lives, _, fills = ledger_dump(ledger_url)
    (life,) = [x for x in lives if x.contract.con_id == SPY_C.con_id]
    assert life.status is PositionStatus.CLOSED and life.opened_at == buy.time
    assert life.closed_at == datetime(2026, 12, 19, 4, 59, 59, tzinfo=UTC)  # 23:59:59 ET
    assert life.realized_pnl == D("-1563") and life.pnl_basis is PnlBasis.EXACT  # IB's figure
    assert fills[-1].exec_id == "flex-trade:777001" and fills[-1].price == 0
    events = events_of(ledger_url, life.id)
    assert events[-1].kind is EventKind.CLOSED and events[-1].price == 0


def test_an_expiry_in_both_trades_and_option_eae_is_booked_once():
    """IB lists an expiry twice — a BookTrade in Trades and a row of OptionEAE, same tradeID."""
    statement = StatementXml("DU111").trade(
        fill(SPY_C, "SLD", "3", "0", commission="0", minutes=60),
        ibExecID="", tradeID="777001", transactionType="BookTrade", notes="Ep",
    )  # fmt: skip
    statement.row(
        "OptionEAE", "OptionEAE", **contract_attrs(SPY_C), transactionType="Expiration",
        date="20261218", quantity="-3", tradePrice="0", tradeID="777001",
    )  # fmt: skip
    parsed = parse_statement(document(statement).encode(), "s.xml", EASTERN)
    assert [f.exec_id for f in parsed.fills] == ["flex-trade:777001"]


def test_a_forward_split_keeps_the_cost_basis(ledger_url, tmp_path, capsys):
    with open_database(ledger_url) as db:
        commit(db, snapshot(pos(AAPL, "100", "150"), minutes=5))
        commit(db, snapshot(pos(AAPL, "400", "37.5"), minutes=2 * DAY))
    buy = fill(AAPL, "BOT", "100", "150", commission="0", minutes=-DAY, exec_id="0005.a.01.01")
    statement = StatementXml("DU111").trade(buy)
    statement.row(
        "CorporateActions", "CorporateAction", **contract_attrs(AAPL), type="FS",
        actionID="139000", dateTime="20261125;202500", quantity="300", amount="0",
        description="AAPL(US0378331005) SPLIT 4 FOR 1",
    )  # fmt: skip
    flex_import(ledger_url, write(tmp_path / "split.xml", statement), capsys=capsys)
    lives, _, _ = ledger_dump(ledger_url)
    (life,) = [x for x in lives if x.contract.con_id == AAPL.con_id]
    assert (life.quantity, life.average_price, life.realized_pnl) == (D(400), D("37.5"), 0)
    assert life.opened_at == buy.time and life.pnl_basis is None  # nothing realized
    kinds = [(e.kind, e.quantity_after, e.price) for e in events_of(ledger_url, life.id)]
    assert kinds == [(EventKind.OPENED, D(100), D(150)), (EventKind.INCREASED, D(400), D(0))]


def test_transfers_and_reverse_splits_are_listed_not_applied(ledger_url, tmp_path, capsys):
    with open_database(ledger_url) as db:
        commit(db, snapshot(pos(AAPL, "100", "150"), minutes=5))
    before = ledger_dump(ledger_url)
    statement = StatementXml("DU111").row(
        "Transfers", "Transfer", **contract_attrs(AAPL), type="ACATS", direction="OUT",
        quantity="-100", transferPrice="0", date="20261126",
    )  # fmt: skip
    statement.row(
        "CorporateActions", "CorporateAction", **contract_attrs(AAPL), type="RS",
        actionID="139001", dateTime="20261126;202500", quantity="-90",
        description="AAPL SPLIT 1 FOR 10",
    )  # fmt: skip
    path = write(tmp_path / "t.xml", statement)
    out = flex_import(ledger_url, path, capsys=capsys)
    assert f"Not applied   {path}: line 8: transfer OUT of -100 AAPL (ACATS): not applied" in out
    assert (
        f"{path}: line 11: corporate action RS 139001 (AAPL SPLIT 1 FOR 10): rows net to conId "
        f"{AAPL.con_id}: -90, not one conId removed and one added: not applied"
    ) in out
    assert ledger_dump(ledger_url) == before


def test_rs_and_ic_row_pairs_become_stated_conversions():
    """Rows of one action netted per conId: one removed and one added is a conversion (either
    type); one conId only, or three, is listed as not applied."""
    old, new, third = (replace(AAPL, con_id=n) for n in (597279242, 665145378, 665145399))
    statement = StatementXml("DU111")
    for con, quantity, action, kind in (
        (new, "333.3333", "1", "RS"), (old, "-1000", "1", "RS"),
        (new, "50", "2", "IC"), (old, "-50", "2", "IC"),
        (new, "10", "3", "RS"), (old, "-30", "3", "RS"), (third, "5", "3", "RS"),
    ):  # fmt: skip
        statement.row(
            "CorporateActions", "CorporateAction", **contract_attrs(con), type=kind,
            actionID=action, dateTime="20261125;202500", quantity=quantity,
            description=f"action {action}",
        )  # fmt: skip
    parsed = parse_statement(document(statement).encode(), "s.xml", EASTERN)
    stated = {(c.action, c.kind, c.removed, c.added) for c in parsed.conversions}
    assert stated == {
        ("1", "RS", (old.con_id, D(-1000)), (new.con_id, D("333.3333"))),
        ("2", "IC", (old.con_id, D(-50)), (new.con_id, D(50))),
    }
    assert {c.at for c in parsed.conversions} == {datetime(2026, 11, 26, 1, 25, tzinfo=UTC)}
    (note,) = parsed.not_applied
    assert note.startswith("s.xml: line 12: corporate action RS 3 (action 3): rows net to")
    assert parsed.fills == () and parsed.accounts == frozenset({"DU111"})


def test_a_forward_split_to_a_new_conid_is_a_stated_conversion():
    """ML's "SPLIT 4 FOR 1" (ib-edavki issue 71): type FI, +12 on the new conId 562418770 and
    the old conId 29612156 (ML.OLD) removed — a conversion, not shares added at 0 on the new
    conId. The same two-conId shape typed FS (IB pairs FS rows too: ib-edavki issue 181) is
    one as well; guards against its new row being booked as a buy at 0 that opens the new
    conId anew beside the conversion, and its old row listed as a split netting -3."""
    old = replace(AAPL, con_id=29612156, symbol="ML", currency="EUR", local_symbol="ML.OLD")
    new = replace(AAPL, con_id=562418770, symbol="ML", currency="EUR", local_symbol="ML")
    statement = StatementXml("DU111")
    for con, quantity, action, kind in (
        (new, "12", "108230866", "FI"), (old, "-3", "108230866", "FI"),
        (new, "8", "108230867", "FS"), (old, "-2", "108230867", "FS"),
    ):  # fmt: skip
        statement.row(
            "CorporateActions", "CorporateAction", **contract_attrs(con), type=kind,
            actionID=action, dateTime="20220615;202500", quantity=quantity, amount="0",
            description="ML(FR0000121261) SPLIT 4 FOR 1 (ML, MICHELIN (CGDE), FR001400AJ45)",
        )  # fmt: skip
    parsed = parse_statement(document(statement).encode(), "s.xml", EASTERN)
    stated = {(c.action, c.kind, c.removed, c.added) for c in parsed.conversions}
    assert stated == {
        ("108230866", "FI", (old.con_id, D(-3)), (new.con_id, D(12))),
        ("108230867", "FS", (old.con_id, D(-2)), (new.con_id, D(8))),
    }
    assert parsed.fills == () and parsed.not_applied == ()


def test_a_fraction_sold_for_cash_is_a_fill_named_by_its_transaction_id():
    """IB's FracShare trade has neither ibExecID nor tradeID (PRSO's row, ib-edavki issue 181:
    transactionType="FracShare" exchange="--" quantity="-0.75" tradePrice="9.6"
    ibCommission="0" transactionID="646863322"). Guards against the row being refused ("has
    neither ibExecID nor tradeID") and the whole statement with it."""
    prso = replace(AAPL, con_id=675381376, symbol="PRSO", local_symbol="PRSO")
    sale = fill(prso, "SLD", "0.75", "9.6", commission="0", minutes=60)
    statement = StatementXml("DU111").trade(
        sale, ibExecID="", tradeID="", transactionID="646863322", ibOrderID="646863322",
        transactionType="FracShare", exchange="--", dateTime="20240102;202500",
    )  # fmt: skip
    parsed = parse_statement(document(statement).encode(), "s.xml", EASTERN)
    (booked,) = parsed.fills
    assert booked.exec_id == "flex-transaction:646863322"
    assert (booked.signed_shares, booked.price, booked.commission) == (D("-0.75"), D("9.6"), 0)
    assert booked.time == datetime(2024, 1, 3, 1, 25, tzinfo=UTC)
