"""Conversions (issue 16 item 5): a conId IB replaced, read as one event — or, when in doubt,
left as what it was (a MISSING old key and a new opening)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from app.domain.conversions import conversion_ratio
from app.domain.history import Observation, ObservationKind
from app.domain.plan import PlannedEvent, ReconcileOptions, SyncPlan
from app.domain.reconcile import refold
from app.domain.values import (
    CloseReason,
    Contract,
    EventKind,
    Fill,
    Lifecycle,
    PnlBasis,
    PositionStatus,
)
from tests.domain.ledger_fixture import AAPL, D, MemoryLedger, at, fill, pos, snapshot

OLD = Contract(597279242, "AMTD", exchange="NYSE", local_symbol="AMTD")
NEW = Contract(665145378, "AMTD", exchange="NYSE", local_symbol="AMTD")
OTHER_NEW = Contract(665145379, "AMTD", exchange="NYSE", local_symbol="AMTD")


def test_ratio_of_a_reverse_split_with_cash_in_lieu() -> None:
    """1,000 @ 2 → 1 for 3: 333 @ 6 (the third share paid in cash), or 333.3333 kept."""
    assert conversion_ratio(D(1000), D(2), D(333), D(6)) == Fraction(1, 3)
    assert conversion_ratio(D(1000), D(2), D("333.3333"), D(6)) == Fraction(1, 3)
    assert conversion_ratio(D(-1000), D(2), D(-333), D(6)) == Fraction(1, 3)  # a short


def test_ratio_of_an_identifier_change_is_one() -> None:
    """An ISIN / CUSIP change under a new conId: same quantity, same average."""
    assert conversion_ratio(D(50), D("12.5"), D(50), D("12.5")) == 1


def test_inconsistent_numbers_are_no_conversion() -> None:
    """A sale never moves IB's average; a quantity off the ratio; an implausible ratio."""
    assert conversion_ratio(D(1000), D(2), D(500), D(2)) is None  # half sold elsewhere
    assert conversion_ratio(D(1000), D(2), D(300), D(6)) is None  # not 1000 / 3
    assert conversion_ratio(D(1000), D(2), D(5), D(400)) is None  # 1 for 200: too far
    assert conversion_ratio(D(1000), D(2), D(-333), D(6)) is None  # the other side
    assert conversion_ratio(D(1000), D(2), D(333), D("6.5")) is None  # cost not carried


@given(
    quantity=st.integers(1, 100_000),
    cents=st.integers(1, 1_000_000),
    numerator=st.integers(1, 20),
    denominator=st.integers(1, 20),
    short=st.booleans(),
)
def test_any_plausible_ratio_is_recognised(
    quantity: int, cents: int, numerator: int, denominator: int, short: bool
) -> None:
    """quantity × r (a reverse split: its whole part), IB's average ÷ r: the rule finds r."""
    ratio = Fraction(numerator, denominator)
    old = D(-quantity if short else quantity)
    exact = Fraction(int(old)) * ratio
    new = D(int(exact))
    if new == 0 or (ratio >= 1 and exact.denominator != 1):
        return  # nothing left; or a forward split to a fraction (never read as cash in lieu)
    average = D(cents) / 100
    moved = average * denominator / numerator
    assert conversion_ratio(old, average, new, moved) == ratio


@given(
    quantity=st.integers(10, 100_000),
    cents=st.integers(100, 1_000_000),
    off=st.sampled_from(["0.98", "1.02", "0.9", "1.5"]),
)
def test_an_average_that_does_not_carry_the_cost_is_refused(
    quantity: int, cents: int, off: str
) -> None:
    """The quantity kept, the average moved by 2 % or more: not a conversion (a guess)."""
    average = D(cents) / 100
    assert conversion_ratio(D(quantity), average, D(quantity), average * D(off)) is None


def _held(ledger: MemoryLedger) -> None:
    """1,000 AMTD (old conId) bought at 2.00 by fills the ledger saw."""
    bought = fill(OLD, "BOT", "1000", "2", minutes=1)
    ledger.sync(snapshot(pos(OLD, "1000", "2", market="2.1"), fills=(bought,), minutes=2))


def test_vanished_and_appeared_become_one_conversion() -> None:
    ledger = MemoryLedger()
    _held(ledger)
    opened = ledger.only_open().opened_at
    plan = ledger.sync(snapshot(pos(NEW, "333", "6", market="6.3"), minutes=60))
    assert (plan.opened, plan.closed, plan.missing, plan.updated) == (0, 0, 0, 1)
    old = next(r for r in ledger.rows.values() if r.contract.con_id == OLD.con_id)
    assert old.status is PositionStatus.CLOSED and old.close_reason is CloseReason.CONVERTED
    assert old.realized_pnl == 0 and old.missing_since is None
    new = ledger.only_open()
    assert new.contract.con_id == NEW.con_id
    assert (new.quantity, new.average_price, new.opened_at) == (333, 6, opened)
    kinds = [(i, e.kind) for i, e in ledger.events]
    assert kinds[-2:] == [(old.id, EventKind.CONVERTED), (new.id, EventKind.CONVERTED)]
    closing = ledger.events[-2][1]
    assert closing.realized_pnl == 0 and closing.pnl_basis is PnlBasis.ESTIMATED
    # Idempotent: the same snapshot again writes nothing.
    again = ledger.sync(snapshot(pos(NEW, "333", "6", market="6.3"), minutes=61))
    assert not [e for c in again.changes for e in c.events]


def test_a_later_sale_realizes_against_the_carried_basis_estimated() -> None:
    ledger = MemoryLedger()
    _held(ledger)
    ledger.sync(snapshot(pos(NEW, "333", "6"), minutes=60))
    sold = fill(NEW, "SLD", "333", "7", minutes=70, commission="1")
    ledger.sync(snapshot(fills=(sold,), minutes=71))
    closed = next(r for r in ledger.rows.values() if r.contract.con_id == NEW.con_id)
    assert closed.status is PositionStatus.CLOSED and closed.close_reason is CloseReason.BROKER
    assert closed.realized_pnl == D(333) * (D(7) - D(6)) - 1
    assert closed.pnl_basis is PnlBasis.ESTIMATED  # the conversion is not confirmed yet


def test_a_statement_confirmation_makes_it_exact() -> None:
    """A CONFIRMED observation on both keys (a statement's RS rows) and a re-fold: exact."""
    ledger = MemoryLedger()
    _held(ledger)
    ledger.sync(snapshot(pos(NEW, "333", "6"), minutes=60))
    sold = fill(NEW, "SLD", "333", "7", minutes=70, commission="1")
    ledger.sync(snapshot(fills=(sold,), minutes=71))
    for mine, other in ((OLD, NEW), (NEW, OLD)):
        ledger.observations.append(
            Observation(
                "DU111", mine.con_id, ObservationKind.CONFIRMED, at(59), paired_con_id=other.con_id
            )
        )
    # Refolding the old key brings the new one along (its carried basis depends on it).
    changes, _ = refold(ledger.history([("DU111", OLD.con_id)]), None, ledger.history)
    by_con = {c.after.contract.con_id: c.after for c in changes}
    assert by_con[NEW.con_id].pnl_basis is PnlBasis.EXACT
    assert by_con[OLD.con_id].pnl_basis is PnlBasis.EXACT


def test_two_candidates_are_not_converted() -> None:
    """Two new conIds of the symbol appear: which one is the old holding is a guess."""
    ledger = MemoryLedger()
    _held(ledger)
    plan = ledger.sync(snapshot(pos(NEW, "333", "6"), pos(OTHER_NEW, "333", "6"), minutes=60))
    assert plan.missing == 1 and plan.opened == 2
    assert not any(e.kind is EventKind.CONVERTED for _, e in ledger.events)


def test_inconsistent_numbers_stay_missing_and_opened() -> None:
    ledger = MemoryLedger()
    _held(ledger)
    plan = ledger.sync(snapshot(pos(NEW, "500", "6"), minutes=60))
    assert plan.missing == 1 and plan.opened == 1
    old = next(r for r in ledger.rows.values() if r.contract.con_id == OLD.con_id)
    assert old.is_open and old.missing_since is not None


def test_another_symbol_is_not_converted() -> None:
    ledger = MemoryLedger()
    _held(ledger)
    other = replace(NEW, symbol="AMTD2", local_symbol="AMTD2")
    plan = ledger.sync(snapshot(pos(other, "333", "6"), minutes=60))
    assert plan.missing == 1 and plan.opened == 1


def test_a_fill_on_either_key_is_no_conversion() -> None:
    """A fill in the snapshot explains (part of) the change: never read as a conversion."""
    ledger = MemoryLedger()
    _held(ledger)
    bought = fill(NEW, "BOT", "333", "6", minutes=59)
    plan = ledger.sync(snapshot(pos(NEW, "333", "6"), fills=(bought,), minutes=60))
    assert not any(e.kind is EventKind.CONVERTED for c in plan.changes for e in c.events)


def test_mark_missing_as_closed_does_not_close_a_conversion_at_market() -> None:
    ledger = MemoryLedger()
    _held(ledger)
    options = ReconcileOptions(mark_missing_as_closed=True)
    ledger.sync(snapshot(pos(NEW, "333", "6"), pos(AAPL, "1", "100"), minutes=60), options)
    old = next(r for r in ledger.rows.values() if r.contract.con_id == OLD.con_id)
    assert old.close_reason is CloseReason.CONVERTED and old.realized_pnl == 0


# ------------------------------------------------------- the fraction a reverse split leaves
# IB pays a reverse split's fractional share in cash with a trade of its own: a Flex `Trade`
# row of transactionType "FracShare" (csingley/ibflex enums.TradeType FRACSHARE), either on the
# old conId before the action (github.com/ib-edavki/ib-edavki/issues/121: "a sale of -0.3763
# shares of XYZ followed by a reverse split 1 for 1783") or on the new conId after it (issue
# 181: PRSO 350 → 8.75, then -0.75 sold at 9.6 on the new conId the same day). A statement
# brings it after the syncs derived the conversion: the key is folded again with it.


def _import(
    ledger: MemoryLedger,
    fills: tuple[Fill, ...] = (),
    observations: tuple[Observation, ...] = (),
) -> None:
    """What app.db.statements does with a statement's fills and confirmations: store them,
    fold the keys they touch again (with their conversion partners) and write the result."""
    for new in fills:
        ledger.fills[new.exec_id] = new
    for number, observation in enumerate(observations, len(ledger.observations) + 1):
        ledger.observations.append(replace(observation, id=number))
    keys = sorted({f.key for f in fills} | {o.key for o in observations})
    changes, deleted = refold(ledger.history(keys), None, ledger.history)
    ledger.apply(
        SyncPlan(
            synced_at=at(0),
            accounts=frozenset(),
            changes=tuple(changes),
            deleted_position_ids=tuple(deleted),
        )
    )


def _confirmations(old: Decimal, new: Decimal, minutes: float = 30) -> tuple[Observation, ...]:
    """A statement's RS pair as app.domain.statements.confirmations stores it."""
    return tuple(
        Observation(
            "DU111",
            mine.con_id,
            ObservationKind.CONFIRMED,
            at(minutes),
            quantity=quantity,
            paired_con_id=other.con_id,
        )
        for mine, other, quantity in ((OLD, NEW, -old), (NEW, OLD, new))
    )


def _lives(ledger: MemoryLedger, contract: Contract) -> list[Lifecycle]:
    return [r for _, r in sorted(ledger.rows.items()) if r.contract.con_id == contract.con_id]


def _events(ledger: MemoryLedger, life: Lifecycle) -> list[PlannedEvent]:
    return [e for i, e in ledger.events if i == life.id]  # type: ignore[misc]


def _ledger_state(ledger: MemoryLedger) -> tuple[object, ...]:
    return (sorted(ledger.rows.items()), list(ledger.events))


def test_the_fraction_sold_on_the_old_conid_before_the_conversion_keeps_it() -> None:
    """1,000 @ 2.00; IB sells 1 old share at 2.10 (the fraction 1 for 3 would leave), then 999
    become 333 @ 6.00 under the new conId. The syncs saw 1,000 vanish and 333 appear (a
    conversion, the third share "paid in cash"); the statement's FracShare sale then books on
    the old key. Guards against the sale dissolving the conversion on re-fold: the old key
    MISSING with 999 and the new key an unexplained opening that lost the basis."""
    ledger = MemoryLedger()
    _held(ledger)
    opened = ledger.only_open().opened_at
    ledger.sync(snapshot(pos(NEW, "333", "6", market="6.3"), minutes=60))
    cash = fill(OLD, "SLD", "1", "2.1", minutes=30, commission="0", exec_id="flex-transaction:7")
    _import(ledger, (cash,))

    (old,) = _lives(ledger, OLD)
    assert old.close_reason is CloseReason.CONVERTED and old.missing_since is None
    assert old.realized_pnl == D("0.1")  # (2.10 − 2.00) × 1, exact: price and commission known
    kinds = [(e.kind, e.quantity_after, e.pnl_basis) for e in _events(ledger, old)]
    assert kinds == [
        (EventKind.OPENED, D(1000), None),
        (EventKind.REDUCED, D(999), PnlBasis.EXACT),
        (EventKind.CONVERTED, D(0), PnlBasis.ESTIMATED),
    ]
    (new,) = _lives(ledger, NEW)
    assert new.is_open and (new.quantity, new.average_price, new.opened_at) == (333, 6, opened)
    (converted,) = _events(ledger, new)
    assert converted.kind is EventKind.CONVERTED and converted.quantity_after == 333
    assert "paid in cash" not in converted.note  # the statement's sale was that fraction

    # The statement's RS rows (999 → 333) make both exact; importing all again changes nothing.
    _import(ledger, observations=_confirmations(D(999), D(333)))
    (old,) = _lives(ledger, OLD)
    assert old.pnl_basis is PnlBasis.EXACT and old.realized_pnl == D("0.1")
    before = _ledger_state(ledger)
    _import(ledger, (cash,))
    assert _ledger_state(ledger) == before
    plan = ledger.sync(snapshot(pos(NEW, "333", "6", market="6.3"), minutes=90))
    assert not [e for c in plan.changes for e in c.events]  # the broker agrees


def test_the_fraction_sold_on_the_new_conid_after_the_conversion_keeps_it() -> None:
    """1,000 @ 2.00 become 333.3333 @ 6.00 under the new conId, and IB sells the 0.3333 at
    6.30 there (stamped before the next sync, which sees 333). Guards against the sale
    dissolving the conversion on re-fold (an unexplained opening of 333.3333 at IB's average
    and the old key converted into nothing): the sale realizes against the carried basis."""
    ledger = MemoryLedger()
    _held(ledger)
    opened = ledger.only_open().opened_at
    ledger.sync(snapshot(pos(NEW, "333", "6", market="6.3"), minutes=60))
    cash = fill(NEW, "SLD", "0.3333", "6.3", minutes=30, commission="0", exec_id="flex-t:8")
    _import(ledger, (cash,))

    (old,) = _lives(ledger, OLD)
    assert old.close_reason is CloseReason.CONVERTED and old.realized_pnl == 0
    (new,) = _lives(ledger, NEW)
    assert new.is_open and (new.quantity, new.average_price, new.opened_at) == (333, 6, opened)
    events = [(e.kind, e.occurred_at, e.quantity_after) for e in _events(ledger, new)]
    assert events == [
        (EventKind.CONVERTED, at(30), D("333.3333")),  # no later than the sale it made possible
        (EventKind.REDUCED, at(30), D(333)),
    ]
    assert new.realized_pnl == D("0.09999")  # (6.30 − 6.00) × 0.3333
    assert new.pnl_basis is PnlBasis.ESTIMATED  # against a carried basis not yet confirmed

    _import(ledger, observations=_confirmations(D(1000), D("333.3333")))
    (new,) = _lives(ledger, NEW)
    assert new.realized_pnl == D("0.09999") and new.pnl_basis is PnlBasis.EXACT
    before = _ledger_state(ledger)
    _import(ledger, (cash,))
    assert _ledger_state(ledger) == before
    plan = ledger.sync(snapshot(pos(NEW, "333", "6", market="6.3"), minutes=90))
    assert not [e for c in plan.changes for e in c.events]


def test_the_fraction_sold_after_a_sync_that_still_showed_it() -> None:
    """The sync right after the conversion saw 333.3333 (IB had not sold the fraction yet,
    though its trade is stamped at the action's time); the next one sees 333 — an unseen sale
    at market until the statement's FracShare trade replaces it. Guards against the trade,
    stamped before the first of those syncs, being read as part of the opening."""
    ledger = MemoryLedger()
    _held(ledger)
    ledger.sync(snapshot(pos(NEW, "333.3333", "6", market="6.3"), minutes=60))
    ledger.sync(snapshot(pos(NEW, "333", "6", market="6.3"), minutes=120))
    (new,) = _lives(ledger, NEW)
    assert new.pnl_basis is PnlBasis.ESTIMATED and new.realized_pnl == D("0.09999")  # market
    cash = fill(NEW, "SLD", "0.3333", "6.4", minutes=30, commission="0", exec_id="flex-t:9")
    _import(ledger, (cash,))
    (new,) = _lives(ledger, NEW)
    assert (new.quantity, new.average_price) == (333, 6)
    kinds = [(e.kind, e.quantity_after, e.exec_ids) for e in _events(ledger, new)]
    assert kinds == [
        (EventKind.CONVERTED, D("333.3333"), ()),
        (EventKind.REDUCED, D(333), ("flex-t:9",)),
    ]
    assert new.realized_pnl == D("0.13332")  # (6.40 − 6.00) × 0.3333: the trade's price
    (old,) = _lives(ledger, OLD)
    assert old.close_reason is CloseReason.CONVERTED


def test_a_statement_sale_that_is_not_the_fraction_is_no_conversion() -> None:
    """A statement's sale of 500 on the old conId before it vanished: 500 left cannot have
    become 333 — the conversion is not booked from numbers that disagree (MISSING + opening)."""
    ledger = MemoryLedger()
    _held(ledger)
    ledger.sync(snapshot(pos(NEW, "333", "6", market="6.3"), minutes=60))
    _import(ledger, (fill(OLD, "SLD", "500", "2.1", minutes=30, exec_id="flex-t:10"),))
    (old,) = _lives(ledger, OLD)
    assert old.is_open and old.quantity == 500 and old.missing_since is not None
    (new,) = _lives(ledger, NEW)
    assert [e.kind for e in _events(ledger, new)] == [EventKind.OPENED]


def test_a_forward_split_to_a_new_conid_is_a_conversion() -> None:
    """ML's 4-for-1 under a new conId (ib-edavki issue 71, Flex type FI): 1,000 @ 2.00 vanish,
    4,000 @ 0.50 appear — one conversion carrying the basis, like a reverse split's."""
    ledger = MemoryLedger()
    _held(ledger)
    opened = ledger.only_open().opened_at
    plan = ledger.sync(snapshot(pos(NEW, "4000", "0.5", market="0.52"), minutes=60))
    assert (plan.opened, plan.missing) == (0, 0)
    (old,) = _lives(ledger, OLD)
    assert old.close_reason is CloseReason.CONVERTED and old.realized_pnl == 0
    (new,) = _lives(ledger, NEW)
    assert (new.quantity, new.average_price, new.opened_at) == (4000, D("0.5"), opened)
    (converted,) = _events(ledger, new)
    assert converted.kind is EventKind.CONVERTED and "(4 for 1)" in converted.note


# ------------------------------------------------------------------------------- shorts
def _short(ledger: MemoryLedger) -> None:
    """1,000 AMTD (old conId) sold short at 2.00 by fills the ledger saw; IB's avgCost of a
    short is positive (the average proceeds per unit)."""
    sold = fill(OLD, "SLD", "1000", "2", minutes=1)
    ledger.sync(snapshot(pos(OLD, "-1000", "2", market="2.1"), fills=(sold,), minutes=2))


def test_a_short_position_is_converted_with_its_sign_and_proceeds() -> None:
    """−1,000 @ 2.00 → 1 for 3 → −333 @ 6.00 (the third share bought in for cash). Covering
    333 at 5.00 with 1.00 commission then realizes (6 − 5) × 333 − 1 = 332 against the carried
    proceeds. Guards against a conversion that loses the sign or books the short as a long."""
    ledger = MemoryLedger()
    _short(ledger)
    opened = ledger.only_open().opened_at
    plan = ledger.sync(snapshot(pos(NEW, "-333", "6", market="6.3"), minutes=60))
    assert (plan.opened, plan.closed, plan.missing) == (0, 0, 0)
    (old,) = _lives(ledger, OLD)
    assert old.close_reason is CloseReason.CONVERTED and old.realized_pnl == 0
    kinds = [(e.kind, e.quantity_before, e.quantity_after) for e in _events(ledger, old)]
    assert kinds[-1] == (EventKind.CONVERTED, D(-1000), D(0))
    (new,) = _lives(ledger, NEW)
    assert (new.quantity, new.average_price, new.opened_at) == (-333, 6, opened)
    (converted,) = _events(ledger, new)
    assert (converted.quantity_before, converted.quantity_after) == (0, -333)
    assert "paid in cash" in converted.note

    again = ledger.sync(snapshot(pos(NEW, "-333", "6", market="6.3"), minutes=61))
    assert not [e for c in again.changes for e in c.events]
    covered = fill(NEW, "BOT", "333", "5", minutes=70, commission="1")
    ledger.sync(snapshot(fills=(covered,), minutes=71))
    (new,) = _lives(ledger, NEW)
    assert new.status is PositionStatus.CLOSED and new.realized_pnl == D(332)
    assert new.pnl_basis is PnlBasis.ESTIMATED

    _import(ledger, observations=_confirmations(D(-1000), D("-333.3333")))
    (new,) = _lives(ledger, NEW)
    assert new.realized_pnl == D(332) and new.pnl_basis is PnlBasis.EXACT


def test_a_short_conversion_with_the_fraction_bought_in_on_the_new_conid() -> None:
    """−1,000 → −333.3333; IB buys the 0.3333 back at 6.30 before the next sync (−333): the
    statement's trade realizes (6.00 − 6.30) × 0.3333 against the carried proceeds."""
    ledger = MemoryLedger()
    _short(ledger)
    ledger.sync(snapshot(pos(NEW, "-333", "6", market="6.3"), minutes=60))
    cash = fill(NEW, "BOT", "0.3333", "6.3", minutes=30, commission="0", exec_id="flex-t:11")
    _import(ledger, (cash,))
    (new,) = _lives(ledger, NEW)
    assert (new.quantity, new.average_price) == (-333, 6)
    kinds = [(e.kind, e.quantity_after) for e in _events(ledger, new)]
    assert kinds == [(EventKind.CONVERTED, D("-333.3333")), (EventKind.REDUCED, D(-333))]
    assert new.realized_pnl == D("-0.09999")


def test_a_short_and_a_long_are_never_paired() -> None:
    """The old key short, the new one long with the numbers of the ratio: not a conversion."""
    ledger = MemoryLedger()
    _short(ledger)
    plan = ledger.sync(snapshot(pos(NEW, "333", "6"), minutes=60))
    assert plan.missing == 1 and plan.opened == 1
