"""reconcile()'s shortcut for openings without fills plans exactly what the general path plans.

A first sync of 20,000 positions opens every one of them; reconcile builds those openings
directly instead of through a fold. The general path (`_fold_key` over an empty history) stays
the reference: the same lifecycle, the same event, the same Decimal digits.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.history import StoredHistory
from app.domain.plan import ReconcileOptions
from app.domain.reconcile import _fold_key, _observation, _opened_unexplained, reconcile
from app.domain.values import BrokerPosition, BrokerSnapshot, Contract, LedgerState
from tests.domain.ledger_fixture import at

texts = st.sampled_from(
    ["1", "10", "1E+1", "2.50", "0.0001", "-3", "-2.500", "190.5", "100.00", "7E-3", "12345.678"]
)
numbers = texts.map(Decimal)
market = st.one_of(st.none(), numbers, st.sampled_from(["NaN", "Infinity"]).map(Decimal))
contracts = st.builds(
    Contract,
    con_id=st.integers(1, 10**6),
    symbol=st.just("X"),
    sec_type=st.sampled_from(["STK", "OPT", "FUT"]),
    multiplier=st.sampled_from(["1", "100", "50", "0.5", "1E+2"]).map(Decimal),
)
rows = st.builds(
    BrokerPosition,
    account=st.just("DU111"),
    contract=contracts,
    quantity=numbers,
    average_cost=numbers.map(abs),
    market_price=market,
    market_value=market,
    unrealized_pnl=market,
)


@given(rows, st.booleans(), st.booleans())
@settings(max_examples=400, deadline=None)
def test_opening_shortcut_equals_the_general_path(
    row: BrokerPosition, pnl: bool, missing_closes: bool
) -> None:
    options = ReconcileOptions(mark_missing_as_closed=missing_closes, calculate_realized_pnl=pnl)
    (general,) = _general(row, options)
    shortcut = _opened_unexplained(row.key, row, at(5))
    assert shortcut == general
    assert repr(shortcut) == repr(general)


zero_or_not = st.builds(
    BrokerPosition,
    account=st.just("DU111"),
    contract=contracts,
    quantity=st.one_of(numbers, st.sampled_from(["0", "-0", "0.00"]).map(Decimal)),
    average_cost=numbers.map(abs),
    market_price=market,
)


@given(st.lists(zero_or_not, max_size=6, unique_by=lambda r: r.contract.con_id))
@settings(max_examples=200, deadline=None)
def test_first_sync_plans_through_the_shortcut_as_before(batch: list[BrokerPosition]) -> None:
    """Zeros for keys never held plan nothing; every other row one opening, in key order."""
    snap = BrokerSnapshot(at(5), frozenset({"DU111"}), positions=tuple(batch))
    plan = reconcile(LedgerState(), snap)
    expected = [
        change
        for row in sorted(batch, key=lambda r: r.key)
        for change in _general(row, ReconcileOptions())
        if row.quantity != 0
    ]
    assert list(plan.changes) == expected
    assert repr(plan.changes) == repr(tuple(expected))


def _general(row: BrokerPosition, options: ReconcileOptions) -> list:
    observation = _observation(row.key, None, row, at(5), options)
    changes, deleted, held, _ = _fold_key(
        row.key, None, row, [], {}, observation, StoredHistory(), options
    )
    assert not deleted and not held
    return changes
