"""Hypothesis properties of reconcile(): idempotence, P&L against a plain ledger, rule 1."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.plan import ReconcileOptions
from app.domain.reconcile import reconcile
from app.domain.values import BrokerPosition, BrokerSnapshot, Contract, EventKind, Fill, Side
from tests.domain.ledger_fixture import AAPL, ES, MSFT, SPY_C, D, MemoryLedger, at, pos

CONTRACTS = (AAPL, MSFT, ES, SPY_C)
CENT = Decimal("0.01")

sizes = st.one_of(
    st.integers(1, 500).map(Decimal),
    st.integers(1, 50_000).map(lambda n: Decimal(n) / 10_000),  # fractional, 0.0001 steps
)
prices = st.integers(100, 500_000).map(lambda n: Decimal(n) / 100)
commissions = st.sampled_from(["0", "0.35", "1.00", "2.47"]).map(Decimal)


@dataclass
class PlainLedger:
    """An independent average-cost ledger, written as plainly as possible (IB's method).

    A long's average is its cost per unit including opening commissions; a short's is its
    proceeds per unit net of them. A reduction realizes (price − average) × units × multiplier
    on a long (the reverse on a short) minus the commission share of the units it closes.
    """

    multiplier: Decimal
    qty: Decimal = Decimal(0)
    avg: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)

    def trade(self, signed: Decimal, price: Decimal, commission: Decimal) -> None:
        units = abs(signed)
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            per_unit_fee = commission / self.multiplier
            if signed > 0:  # buying: the fee is part of the cost
                total = self.avg * abs(self.qty) + price * units + per_unit_fee
            else:  # selling short: the fee comes off the proceeds
                total = self.avg * abs(self.qty) + price * units - per_unit_fee
            self.qty += signed
            self.avg = total / abs(self.qty)
            return
        closing = min(units, abs(self.qty))
        part = commission * closing / units
        if self.qty > 0:
            self.realized += (price - self.avg) * closing * self.multiplier - part
        else:
            self.realized += (self.avg - price) * closing * self.multiplier - part
        opening = units - closing
        if abs(self.qty) > closing:
            self.qty += signed
        elif opening == 0:
            self.qty, self.avg = Decimal(0), Decimal(0)
        else:
            self.qty = opening if signed > 0 else -opening
            fee = (commission - part) / (opening * self.multiplier)
            self.avg = price + fee if signed > 0 else price - fee


@st.composite
def trading_days(draw: st.DrawFn) -> tuple[Contract, list[list[tuple[Decimal, Decimal, Decimal]]]]:
    """A contract and batches of (signed size, price, commission) fills between syncs."""
    contract = draw(st.sampled_from(CONTRACTS))
    batches = draw(
        st.lists(
            st.lists(
                st.tuples(
                    st.tuples(st.booleans(), sizes).map(lambda t: t[1] if t[0] else -t[1]),
                    prices,
                    commissions,
                ),
                min_size=0,
                max_size=4,
            ),
            min_size=1,
            max_size=8,
        )
    )
    return contract, batches


@given(trading_days())
@settings(max_examples=300, deadline=None)
def test_realized_pnl_matches_plain_ledger(day):
    """(b) Events' realized P&L sums to an independent average-cost ledger, to the cent."""
    contract, batches = day
    ledger = MemoryLedger()
    plain = PlainLedger(contract.multiplier)
    minute = 0
    n = 0
    for batch in batches:
        fills = []
        for signed, price, commission in batch:
            minute += 1
            n += 1
            plain.trade(signed, price, commission)
            fills.append(
                Fill(
                    exec_id=f"0000e0d5.{n:08x}.01.01",
                    account="DU111",
                    contract=contract,
                    side=Side.BOUGHT if signed > 0 else Side.SOLD,
                    shares=abs(signed),
                    price=price,
                    time=at(minute),
                    commission=commission,
                )
            )
        minute += 1
        rows = ()
        if plain.qty != 0:
            rows = (pos(contract, plain.qty, plain.avg, market=batch[-1][1] if batch else None),)
        snap = BrokerSnapshot(at(minute), frozenset({"DU111"}), rows, tuple(fills))
        ledger.sync(snap)

        open_rows = ledger.open_rows()
        assert sum((r.quantity for r in open_rows), Decimal(0)) == plain.qty
        assert len(open_rows) == (1 if plain.qty != 0 else 0)
    events_total = sum(
        (e.realized_pnl for _, e in ledger.events if e.realized_pnl is not None), Decimal(0)
    )
    # Derived decimals carry 10 places (app.domain.decimals): far inside a cent, but a sum can
    # straddle a half cent, so compare the difference rather than the rounded figures.
    assert abs(events_total - plain.realized) < CENT / 100
    assert abs(ledger.realized_total() - plain.realized) < CENT / 100
    assert not any(e.kind is EventKind.MISSING for _, e in ledger.events)


accounts = st.sampled_from(["DU111", "DU222"])


@st.composite
def broker_rows(draw: st.DrawFn) -> tuple[BrokerPosition, ...]:
    """Up to one row per (account, contract), random quantities including zero."""
    rows = []
    for account in ("DU111", "DU222"):
        for contract in CONTRACTS:
            if draw(st.booleans()):
                qty = draw(st.sampled_from([D(0), D(5), D(-3), D("0.5"), D(100), D(200)]))
                avg = draw(st.sampled_from([D(10), D(20), D("4500")]))
                market = draw(st.none() | st.sampled_from([D(9), D(11), D(21)]))
                rows.append(pos(contract, qty, avg, account=account, market=market))
    return tuple(rows)


@st.composite
def snapshots(draw: st.DrawFn, minute: int) -> BrokerSnapshot:
    rows = draw(broker_rows())
    fills = []
    for i in range(draw(st.integers(0, 3))):
        contract = draw(st.sampled_from(CONTRACTS))
        fills.append(
            Fill(
                exec_id=f"0000e0d5.{draw(st.integers(0, 30)):08x}.01.0{draw(st.integers(1, 2))}",
                account=draw(accounts),
                contract=contract,
                side=draw(st.sampled_from(list(Side))),
                shares=draw(sizes),
                price=draw(prices),
                time=at(minute - 1 + i / 10),
                commission=draw(commissions),
            )
        )
    return BrokerSnapshot(at(minute), frozenset({"DU111", "DU222"}), rows, tuple(fills))


@given(st.data(), st.booleans())
@settings(max_examples=200, deadline=None)
def test_replanning_after_apply_changes_nothing(data, close_missing):
    """(a) Apply a plan, re-plan the same snapshot: no event, no change, no fill."""
    ledger = MemoryLedger()
    options = ReconcileOptions(mark_missing_as_closed=close_missing)
    for minute in range(10, 60, 10):
        snap = data.draw(snapshots(minute))
        ledger.sync(snap, options)
        again = reconcile(ledger.state(), snap, options, ledger.history)
        assert again.changes == ()
        assert again.new_fills == () and again.corrections == ()
        assert again.market_updates == ()
        # Rule: at most one OPEN lifecycle per key.
        keys = [r.key for r in ledger.open_rows()]
        assert len(keys) == len(set(keys))


@given(st.data(), st.sampled_from(["positionEnd", "disconnected", "1100"]))
@settings(max_examples=150, deadline=None)
def test_incomplete_snapshot_never_changes_anything(data, reason):
    """(c) An incomplete snapshot never opens, changes or closes anything."""
    ledger = MemoryLedger()
    ledger.sync(data.draw(snapshots(10)))
    rows_before = dict(ledger.rows)
    snap = data.draw(snapshots(20))
    broken = BrokerSnapshot(
        snap.taken_at, snap.accounts, snap.positions, snap.fills, incomplete_reason=reason
    )
    plan = reconcile(ledger.state(), broken)
    assert plan.is_empty and plan.market_updates == () and plan.seen_position_ids == ()
    assert plan.incomplete_reason == reason
    assert ledger.rows == rows_before


@given(trading_days())
@settings(max_examples=200, deadline=None)
def test_plain_ledger_agrees_with_simulated_ib(day):
    """The test's ledger and the simulator's IB model (written separately) agree fill by fill.

    Guards the two from sharing a mistake, such as adding a short sale's commission to its
    average instead of taking it off the proceeds.
    """
    from app.sim.pnl import apply_fill

    contract, batches = day
    plain = PlainLedger(contract.multiplier)
    qty, avg_cost, realized = Decimal(0), Decimal(0), Decimal(0)
    for batch in batches:
        for signed, price, commission in batch:
            plain.trade(signed, price, commission)
            outcome = apply_fill(qty, avg_cost, signed, price, contract.multiplier, commission)
            qty, avg_cost = outcome.quantity, outcome.avg_cost
            realized += outcome.realized or 0
            assert qty == plain.qty
            assert abs(avg_cost - plain.avg * contract.multiplier) < Decimal("1e-12")
            assert abs(realized - plain.realized) < Decimal("1e-9")
