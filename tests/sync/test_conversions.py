"""Issue 16 item 5: a new-conId reverse split through the real ib_insync client into a real ledger.

The simulator plays TWS over loopback with the `new-conid-reverse-split` scenario's state (AMTD's
1-for-3 of November 2023: github.com/ib-edavki/ib-edavki/issues/106); the sync service books
into a real ledger migrated to head (SQLite, and PostgreSQL where available). Figures by hand:
1,000 @ 2.00 → 333 @ 6.00 (the third share paid in cash); a later sale of 333 @ 7.00 with a
1.00 commission realizes (7 − 6) × 333 − 1 = 332 against the carried basis.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from app.cli.main import main
from app.db import repository
from app.domain.values import CloseReason, EventKind, PnlBasis, PositionStatus
from app.sim import contracts as c
from app.sim.model import Contract
from app.sim.scenarios import CONVERSION_ACCOUNT, build_conversion, convert_amtd
from tests.flex.builder import StatementXml, flex_time, write
from tests.sync.conftest import Stack, events, lifecycles, sync
from tests.sync.test_trading_day import connected

D = Decimal
ACCOUNT = CONVERSION_ACCOUNT
OLD = (ACCOUNT, c.AMTD_OLD.con_id)
NEW = (ACCOUNT, c.AMTD.con_id)


def latest_run(stack: Stack) -> Any:
    return stack.db.run_sync(repository.sync_runs, 1)[0]


def test_new_conid_reverse_split_is_one_conversion_carrying_the_basis(make, run):
    """The scenario: the old conId vanishes, the new one appears with 333 @ 6.00, no fills.
    Guards against the old booking: the old key MISSING (or closed at market with a fake P&L)
    and a new opening that lost the cost basis and the holding period."""
    stack = make(build_conversion())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        (held,) = lifecycles(stack, OLD)
        convert_amtd(stack.sim)
        await sync(stack)

        (old,) = lifecycles(stack, OLD)
        assert old.status is PositionStatus.CLOSED
        assert old.close_reason is CloseReason.CONVERTED
        assert old.realized_pnl == 0 and old.missing_since is None
        (closing,) = [e for e in events(stack, old) if e.kind is EventKind.CONVERTED]
        assert closing.realized_pnl == 0 and closing.pnl_basis is PnlBasis.ESTIMATED
        (new,) = lifecycles(stack, NEW)
        assert new.status is PositionStatus.OPEN
        assert (new.quantity, new.average_price) == (333, 6)
        assert new.opened_at == held.opened_at  # the holding period goes on
        (opening,) = events(stack, new)
        assert opening.kind is EventKind.CONVERTED and opening.realized_pnl is None
        assert "1 for 3" in opening.note and "paid in cash" in opening.note
        run_row = latest_run(stack)
        assert (run_row.opened, run_row.closed, run_row.missing) == (0, 0, 0)

        await sync(stack)  # idempotent: nothing new
        assert len(events(stack, lifecycles(stack, NEW)[0])) == 1

        stack.sim.fill(ACCOUNT, c.AMTD, -333, "7", commission=D("1"))
        await sync(stack)
        (sold,) = lifecycles(stack, NEW)
        assert sold.status is PositionStatus.CLOSED and sold.close_reason is CloseReason.BROKER
        assert sold.realized_pnl == D(332)  # (7 − 6) × 333 − 1: the carried basis
        assert sold.pnl_basis is PnlBasis.ESTIMATED  # until a statement confirms the conversion

    run(scenario(), timeout=30)


def test_two_new_conids_of_the_symbol_are_not_converted(make, run):
    """Ambiguous: two candidates appear. The old key stays MISSING and both open as they are:
    never a guess booked as a fact."""
    other = Contract(665145399, "AMTD", "STK", "USD", "NYSE", "NYSE", "AMTD", "AMTD")
    stack = make(build_conversion())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        convert_amtd(stack.sim)
        stack.sim.set_position(ACCOUNT, other, D(333), D(6), D("6.3"))
        await sync(stack)

        (old,) = lifecycles(stack, OLD)
        assert old.status is PositionStatus.OPEN and old.missing_since is not None
        (new,) = lifecycles(stack, NEW)
        assert [e.kind for e in events(stack, new)] == [EventKind.OPENED]
        run_row = latest_run(stack)
        assert (run_row.opened, run_row.missing) == (2, 1)

    run(scenario(), timeout=30)


def test_numbers_off_the_ratio_are_not_converted(make, run):
    """The new conId holds 300 (not 1,000 ÷ 3): the old key MISSING, the new one opened."""
    stack = make(build_conversion())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        stack.sim.remove_position(ACCOUNT, c.AMTD_OLD.con_id)
        stack.sim.set_position(ACCOUNT, c.AMTD, D(300), D(6), D("6.3"))
        await sync(stack)

        (old,) = lifecycles(stack, OLD)
        assert old.is_open and old.missing_since is not None
        assert old.realized_pnl == 0
        (new,) = lifecycles(stack, NEW)
        assert [e.kind for e in events(stack, new)] == [EventKind.OPENED]

    run(scenario(), timeout=30)


# A statement's corporate action confirms the conversion (app.flex.actions, app.db.statements):
# IB's two RS rows of AMTD's action as quoted in github.com/ib-edavki/ib-edavki/issues/106 —
# the new conId with +333.3333 (symbol AMTD), the old one renamed AMTD.OLD with -1000.
DESCRIPTION = "AMTD(US00180G2057) SPLIT 1 FOR 3 (AMTD, AMTD IDEA GROUP, US00180G3048)"


def amtd_row(con_id: int, symbol: str, isin: str, quantity: str, **more: str) -> dict[str, str]:
    """One CorporateAction row's attributes, in the order and format of the issue's rows."""
    return {
        "acctAlias": "", "model": "", "currency": "USD", "fxRateToBase": "1",
        "assetCategory": "STK", "symbol": symbol,
        "description": DESCRIPTION.replace("(AMTD, ", f"({symbol}, ").replace(
            "US00180G3048)", f"{isin})"
        ),
        "conid": str(con_id), "securityID": isin, "securityIDType": "ISIN", "isin": isin,
        "listingExchange": "NYSE", "underlyingConid": "", "underlyingSymbol": "",
        "multiplier": "1", "strike": "", "expiry": "", "putCall": "",
        "principalAdjustFactor": "", "reportDate": "20261126", "dateTime": "20261125;202500",
        "actionDescription": DESCRIPTION, "amount": "0", "proceeds": "0", "value": "0",
        "quantity": quantity, "fifoPnlRealized": "0", "mtmPnl": "0", "code": "", "type": "RS",
        "actionID": "129946303", "levelOfDetail": "DETAIL",
        **more,
    }  # fmt: skip


def amtd_statement(path: Path, **old: str) -> Path:
    """The action's two rows (the old row's attributes overridable)."""
    statement = StatementXml(ACCOUNT)
    new_row = amtd_row(c.AMTD.con_id, "AMTD", "US00180G3048", "333.3333", transactionID="618176630")
    old_row = amtd_row(
        c.AMTD_OLD.con_id, "AMTD.OLD", "US00180G2057", "-1000", transactionID="618176631"
    )
    statement.row("CorporateActions", "CorporateAction", **new_row)
    statement.row("CorporateActions", "CorporateAction", **{**old_row, **old})
    return write(path, statement)


def flex(url: str, path: Path, capsys: Any) -> tuple[int, str, str]:
    code = main(["flex", "import", str(path), "--db", url])
    out = capsys.readouterr()
    return code, out.out, out.err


def ledger_state(stack: Stack) -> tuple[Any, ...]:
    """Lifecycles, events and every stored observation of both keys."""
    lives = [*lifecycles(stack, OLD), *lifecycles(stack, NEW)]
    histories = stack.db.run_sync(repository.load_histories, [OLD, NEW])
    return (
        lives,
        [events(stack, life) for life in lives],
        [h.observations for h in histories.values()],
    )


def test_a_statement_confirms_the_conversion_and_the_sale_becomes_exact(
    make, run, ledger_url, tmp_path, capsys
):
    """The derived conversion and the later sale's 332 go from estimated to exact; importing
    the statement again changes nothing."""
    stack = make(build_conversion())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        convert_amtd(stack.sim)
        await sync(stack)
        stack.sim.fill(ACCOUNT, c.AMTD, -333, "7", commission=D("1"))
        await sync(stack)

    run(scenario(), timeout=30)
    (sold,) = lifecycles(stack, NEW)
    assert sold.pnl_basis is PnlBasis.ESTIMATED

    path = amtd_statement(tmp_path / "amtd.xml")
    code, out, err = flex(ledger_url, path, capsys)
    assert code == 0, err
    assert "Conversions   1 confirmed by corporate actions, 0 already confirmed" in out
    assert "Not applied" not in out

    (old,) = lifecycles(stack, OLD)
    (closing,) = [e for e in events(stack, old) if e.kind is EventKind.CONVERTED]
    assert closing.realized_pnl == 0 and closing.pnl_basis is PnlBasis.EXACT
    assert "confirmed by a statement" in closing.note
    assert old.close_reason is CloseReason.CONVERTED and old.pnl_basis is PnlBasis.EXACT
    (sold,) = lifecycles(stack, NEW)
    assert sold.realized_pnl == D(332) and sold.pnl_basis is PnlBasis.EXACT
    opening = events(stack, sold)[0]
    assert opening.kind is EventKind.CONVERTED and "confirmed by a statement" in opening.note
    histories = stack.db.run_sync(repository.load_histories, [OLD, NEW])
    confirmed = {
        key: [(o.paired_con_id, o.quantity) for o in h.observations if o.kind == "confirmed"]
        for key, h in histories.items()
    }
    assert confirmed == {
        OLD: [(c.AMTD.con_id, D(-1000))],
        NEW: [(c.AMTD_OLD.con_id, D("333.3333"))],
    }

    before = ledger_state(stack)
    code, out, err = flex(ledger_url, path, capsys)
    assert code == 0, err
    assert "Conversions   0 confirmed by corporate actions, 1 already confirmed" in out
    assert "Ledger        unchanged" in out
    assert ledger_state(stack) == before


def test_a_stated_pair_the_syncs_did_not_pair_is_not_applied(
    make, run, ledger_url, tmp_path, capsys
):
    """The old conId vanished at one sync and the new one appeared at the next: the ledger
    derived no conversion, so the statement's RS pair is listed as not applied — no conversion
    is booked from it (a guess), and nothing is written."""
    stack = make(build_conversion())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        stack.sim.remove_position(ACCOUNT, c.AMTD_OLD.con_id)
        await sync(stack)
        stack.sim.set_position(ACCOUNT, c.AMTD, D(333), D(6), D("6.3"))
        await sync(stack)

    run(scenario(), timeout=30)
    (old,) = lifecycles(stack, OLD)
    assert old.is_open and old.missing_since is not None
    before = ledger_state(stack)

    path = amtd_statement(tmp_path / "amtd.xml")
    code, out, err = flex(ledger_url, path, capsys)
    assert code == 0, err
    assert (
        f"Not applied   {path}: line 8: corporate action RS 129946303 ({DESCRIPTION}): the "
        f"ledger derived no conversion between conId {c.AMTD_OLD.con_id} and conId "
        f"{c.AMTD.con_id}"
    ) in out
    assert "Conversions" not in out and "Ledger        unchanged" in out
    assert ledger_state(stack) == before


@pytest.mark.parametrize(
    ("old", "problem"),
    [({"conid": ""}, "has no conid"), ({"quantity": "-1,000x"}, "quantity '-1000x' is not a")],
)
def test_a_malformed_conversion_row_is_refused(
    make, run, ledger_url, tmp_path, capsys, old, problem
):
    """Exit code 2 naming the file, line and action; the derived conversion stays estimated."""
    stack = make(build_conversion())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        convert_amtd(stack.sim)
        await sync(stack)

    run(scenario(), timeout=30)
    before = ledger_state(stack)
    path = amtd_statement(tmp_path / "bad.xml", **old)
    code, _, err = flex(ledger_url, path, capsys)
    assert code == 2
    assert f"{path}: line 9: CorporateAction 129946303: {problem}" in err
    assert ledger_state(stack) == before


# The fraction a reverse split leaves, sold for cash by IB with a trade of its own: a Flex
# `Trade` row of transactionType "FracShare" (csingley/ibflex enums.TradeType) with no
# ibExecID and no tradeID, named by its transactionID — PRSO's row in
# github.com/ib-edavki/ib-edavki/issues/181: quantity="-0.75" tradePrice="9.6"
# ibCommission="0" exchange="--" on the new conId the day of the split; or, as issue 121
# reports, a sale of the fraction on the old conId before the split.
ORDERS = ("one statement", "trade first", "actions first")


def fraction_trade(contract: Contract, quantity: str, price: str, when: datetime) -> dict[str, str]:
    """A FracShare Trade row as IB writes it (the issue's attributes), for the simulator's
    contract, at `when`."""
    signed = D(quantity)
    return {
        "acctAlias": "", "model": "", "currency": "USD", "fxRateToBase": "1",
        "assetCategory": "STK", "subCategory": "COMMON", "symbol": contract.symbol,
        "description": "AMTD IDEA GROUP", "conid": str(contract.con_id),
        "listingExchange": "NYSE", "multiplier": "1", "strike": "", "tradeID": "",
        "expiry": "", "putCall": "", "reportDate": flex_time(when)[:8],
        "dateTime": flex_time(when), "tradeDate": flex_time(when)[:8],
        "transactionType": "FracShare", "exchange": "--", "quantity": quantity,
        "tradePrice": price, "tradeMoney": str(signed * D(price)),
        "proceeds": str(-signed * D(price)), "taxes": "0", "ibCommission": "0",
        "ibCommissionCurrency": "USD", "openCloseIndicator": "C", "notes": "",
        "buySell": "SELL" if signed < 0 else "BUY", "ibOrderID": "646863322",
        "transactionID": "646863322", "ibExecID": "", "levelOfDetail": "EXECUTION",
    }  # fmt: skip


def fraction_statements(
    tmp_path: Path, order: str, trade: dict[str, str], old: str, new: str
) -> list[Path]:
    """The FracShare trade and the action's RS rows (old conId `old`, new `new`) in one
    statement, or in two imported in the order named."""
    traded = StatementXml(ACCOUNT)
    traded.rows.append({"accountId": ACCOUNT, **trade})
    actions = StatementXml(ACCOUNT)  # an empty Trades section: a period without trades
    for con_id, symbol, isin, quantity, txn in (
        (c.AMTD.con_id, "AMTD", "US00180G3048", new, "618176630"),
        (c.AMTD_OLD.con_id, "AMTD.OLD", "US00180G2057", old, "618176631"),
    ):
        row = amtd_row(con_id, symbol, isin, quantity, transactionID=txn)
        actions.row("CorporateActions", "CorporateAction", **row)
        traded.row("CorporateActions", "CorporateAction", **row)
    if order == "one statement":
        return [write(tmp_path / "both.xml", traded)]
    traded.sections.clear()
    files = [write(tmp_path / "trade.xml", traded), write(tmp_path / "actions.xml", actions)]
    return files if order == "trade first" else files[::-1]


def import_all(url: str, paths: list[Path], capsys: Any) -> list[str]:
    outs = []
    for path in paths:
        code, out, err = flex(url, path, capsys)
        assert code == 0, err
        assert "Not applied" not in out, out
        outs.append(out)
    return outs


def unsynced(state: tuple[Any, ...]) -> tuple[Any, ...]:
    """A ledger state without "last synced" (the one thing a sync with nothing new moves)."""
    lives, *rest = state
    return ([replace(life, last_synced_at=None) for life in lives], *rest)


async def after_a_second() -> datetime:
    """A moment a Flex `dateTime` (whole seconds) puts strictly after the last sync."""
    await asyncio.sleep(1.05)
    moment = datetime.now(UTC).replace(microsecond=0)
    await asyncio.sleep(1.05)
    return moment


@pytest.mark.parametrize("order", ORDERS)
def test_the_fraction_sold_on_the_old_conid_keeps_the_conversion(
    make, run, ledger_url, tmp_path, capsys, order
):
    """IB sells 1 old share at 2.10 before the 1-for-3 (999 → 333 @ 6.00, nothing in cash);
    the syncs saw 1,000 vanish and 333 appear. The statement's FracShare trade books as a sale
    on the old key (0.10 realized, exact) and the conversion stands, exact once the RS rows
    (−999 / +333) are in; the ledger agrees with the broker and a re-import changes nothing.
    Guards against the sale dissolving the conversion (old key MISSING with 999, new key an
    unexplained opening)."""
    stack = make(build_conversion())
    moments: list[datetime] = []

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        moments.append(await after_a_second())
        # What the API shows is the same whichever conId IB sold the fraction on: the old
        # conId gone, 333 @ 6.00 on the new one.
        convert_amtd(stack.sim)
        await sync(stack)

    run(scenario(), timeout=30)
    (held,) = lifecycles(stack, OLD)
    assert held.close_reason is CloseReason.CONVERTED  # 1,000 → 333: the third "in cash"
    trade = fraction_trade(c.AMTD_OLD, "-1", "2.1", moments[0])
    paths = fraction_statements(tmp_path, order, trade, old="-999", new="333")
    import_all(ledger_url, paths, capsys)

    (old,) = lifecycles(stack, OLD)
    assert old.close_reason is CloseReason.CONVERTED and old.missing_since is None
    assert old.realized_pnl == D("0.1") and old.pnl_basis is PnlBasis.EXACT
    kinds = [(e.kind, e.quantity_after, e.exec_ids) for e in events(stack, old)]
    assert kinds[1:] == [
        (EventKind.REDUCED, D(999), ("flex-transaction:646863322",)),
        (EventKind.CONVERTED, D(0), ()),
    ]
    (new,) = lifecycles(stack, NEW)
    assert (new.quantity, new.average_price, new.opened_at) == (333, 6, held.opened_at)
    (opening,) = events(stack, new)
    assert opening.kind is EventKind.CONVERTED and "confirmed by a statement" in opening.note

    before = ledger_state(stack)
    for out in import_all(ledger_url, paths, capsys):
        assert "Ledger        unchanged" in out
    assert ledger_state(stack) == before

    async def again() -> None:
        await sync(stack)  # the broker's 333 @ 6.00: nothing to book

    run(again(), timeout=30)
    assert unsynced(ledger_state(stack)) == unsynced(before)


@pytest.mark.parametrize("order", ORDERS)
def test_the_fraction_sold_on_the_new_conid_keeps_the_conversion(
    make, run, ledger_url, tmp_path, capsys, order
):
    """1,000 @ 2.00 become 333.3333 on the new conId and IB sells the 0.3333 there at 6.30
    before the next sync, which sees 333 @ 6.00. The statement's FracShare trade books as a
    sale against the carried basis: (6.30 − 6.00) × 0.3333 = 0.09999, exact once the RS rows
    (−1,000 / +333.3333) are in. Guards against the sale dissolving the conversion (an
    unexplained opening of 333.3333 at IB's average, the basis and holding period lost)."""
    stack = make(build_conversion())
    moments: list[datetime] = []

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        convert_amtd(stack.sim)  # 333 on the new conId: the fraction already sold
        moments.append(await after_a_second())
        await sync(stack)

    run(scenario(), timeout=30)
    (held,) = lifecycles(stack, OLD)
    trade = fraction_trade(c.AMTD, "-0.3333", "6.3", moments[0])
    paths = fraction_statements(tmp_path, order, trade, old="-1000", new="333.3333")
    import_all(ledger_url, paths, capsys)

    (old,) = lifecycles(stack, OLD)
    assert old.close_reason is CloseReason.CONVERTED and old.pnl_basis is PnlBasis.EXACT
    (new,) = lifecycles(stack, NEW)
    assert (new.quantity, new.average_price, new.opened_at) == (333, 6, held.opened_at)
    assert new.realized_pnl == D("0.09999") and new.pnl_basis is PnlBasis.EXACT
    kinds = [(e.kind, e.occurred_at, e.quantity_after) for e in events(stack, new)]
    assert kinds == [
        (EventKind.CONVERTED, moments[0], D("333.3333")),
        (EventKind.REDUCED, moments[0], D(333)),
    ]

    before = ledger_state(stack)
    for out in import_all(ledger_url, paths, capsys):
        assert "Ledger        unchanged" in out
    assert ledger_state(stack) == before

    async def again() -> None:
        await sync(stack)

    run(again(), timeout=30)
    assert unsynced(ledger_state(stack)) == unsynced(before)


@pytest.mark.parametrize("kind", ["FI", "FS"])
def test_a_forward_split_to_a_new_conid_is_confirmed_by_its_statement(
    make, run, ledger_url, tmp_path, capsys, kind
):
    """A 4-for-1 under a new conId: the syncs pair 1,000 @ 2.00 vanishing with 4,000 @ 0.50
    appearing; the statement's two rows of the action — type FI as IB wrote ML's (ib-edavki
    issue 71), or FS on two conIds — confirm it like an RS pair. Guards against the FI pair
    listed as "not applied", and the FS pair booked as 4,000 bought at 0 on the new conId."""
    stack = make(build_conversion())

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        stack.sim.convert(ACCOUNT, c.AMTD_OLD.con_id, c.AMTD, Fraction(4))
        await sync(stack)

    run(scenario(), timeout=30)
    (old,) = lifecycles(stack, OLD)
    assert old.close_reason is CloseReason.CONVERTED and old.pnl_basis is PnlBasis.ESTIMATED
    (new,) = lifecycles(stack, NEW)
    assert (new.quantity, new.average_price) == (4000, D("0.5"))

    statement = StatementXml(ACCOUNT)
    for con_id, symbol, isin, quantity in (
        (c.AMTD.con_id, "AMTD", "US00180G3048", "4000"),
        (c.AMTD_OLD.con_id, "AMTD.OLD", "US00180G2057", "-1000"),
    ):
        row = amtd_row(con_id, symbol, isin, quantity, type=kind, transactionID=f"9{con_id}")
        row["description"] = row["actionDescription"] = "AMTD(US00180G2057) SPLIT 4 FOR 1"
        statement.row("CorporateActions", "CorporateAction", **row)
    path = write(tmp_path / "forward.xml", statement)
    code, out, err = flex(ledger_url, path, capsys)
    assert code == 0, err
    assert "Conversions   1 confirmed by corporate actions" in out
    assert "Not applied" not in out

    (old,) = lifecycles(stack, OLD)
    assert old.pnl_basis is PnlBasis.EXACT
    (new,) = lifecycles(stack, NEW)
    assert (new.quantity, new.average_price) == (4000, D("0.5"))
    (opening,) = events(stack, new)
    assert opening.kind is EventKind.CONVERTED and "confirmed by a statement" in opening.note
    before = ledger_state(stack)
    code, out, err = flex(ledger_url, path, capsys)
    assert code == 0 and "1 already confirmed" in out and "Ledger        unchanged" in out
    assert ledger_state(stack) == before


def test_a_short_position_is_converted_carrying_its_proceeds(
    make, run, ledger_url, tmp_path, capsys
):
    """AMTD held short: −1,000 @ 2.00 (IB's avgCost positive: the average proceeds) → 1 for 3
    → −333 @ 6.00 on the new conId. One conversion keeping the sign and the proceeds; covering
    333 at 5.00 with 1.00 commission realizes (6 − 5) × 333 − 1 = 332, exact once the
    statement's RS rows — signs flipped for a short: +1,000 on the old conId, −333.3333 on the
    new — confirm it."""
    state = build_conversion()
    state.set_position(ACCOUNT, c.AMTD_OLD, D(-1000), D("2.00"), D("2.10"))
    stack = make(state)

    async def scenario() -> None:
        await connected(stack)
        await sync(stack)
        (held,) = lifecycles(stack, OLD)
        assert held.quantity == -1000
        convert_amtd(stack.sim)
        await sync(stack)

        (old,) = lifecycles(stack, OLD)
        assert old.close_reason is CloseReason.CONVERTED and old.realized_pnl == 0
        (new,) = lifecycles(stack, NEW)
        assert (new.quantity, new.average_price, new.opened_at) == (-333, 6, held.opened_at)
        assert [e.kind for e in events(stack, new)] == [EventKind.CONVERTED]
        run_row = latest_run(stack)
        assert (run_row.opened, run_row.closed, run_row.missing) == (0, 0, 0)

        stack.sim.fill(ACCOUNT, c.AMTD, 333, "5", commission=D("1"))
        await sync(stack)

    run(scenario(), timeout=30)
    (covered,) = lifecycles(stack, NEW)
    assert covered.status is PositionStatus.CLOSED and covered.realized_pnl == D(332)
    assert covered.pnl_basis is PnlBasis.ESTIMATED

    statement = StatementXml(ACCOUNT)
    for con_id, symbol, isin, quantity in (
        (c.AMTD.con_id, "AMTD", "US00180G3048", "-333.3333"),
        (c.AMTD_OLD.con_id, "AMTD.OLD", "US00180G2057", "1000"),
    ):
        row = amtd_row(con_id, symbol, isin, quantity, transactionID=f"8{con_id}")
        statement.row("CorporateActions", "CorporateAction", **row)
    code, out, err = flex(ledger_url, write(tmp_path / "short.xml", statement), capsys)
    assert code == 0, err
    assert "Conversions   1 confirmed by corporate actions" in out and "Not applied" not in out
    (covered,) = lifecycles(stack, NEW)
    assert covered.realized_pnl == D(332) and covered.pnl_basis is PnlBasis.EXACT
    (old,) = lifecycles(stack, OLD)
    assert old.pnl_basis is PnlBasis.EXACT
