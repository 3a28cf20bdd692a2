"""Test helpers: build contracts, snapshots and fills; apply a plan to an in-memory ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.domain.executions import base_exec_id
from app.domain.history import Observation, StoredHistory
from app.domain.plan import ReconcileOptions, SyncPlan
from app.domain.reconcile import reconcile
from app.domain.values import (
    BrokerPosition,
    BrokerSnapshot,
    Contract,
    Fill,
    LedgerState,
    Lifecycle,
    PositionKey,
    PositionStatus,
    Side,
)

T0 = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
D = Decimal

AAPL = Contract(265598, "AAPL", exchange="NASDAQ", local_symbol="AAPL")
MSFT = Contract(272093, "MSFT", exchange="NASDAQ", local_symbol="MSFT")
ES = Contract(
    495512563,
    "ES",
    sec_type="FUT",
    exchange="CME",
    local_symbol="ESZ6",
    multiplier=D(50),
    expiry="20261218",
)
SPY_C = Contract(
    700000001,
    "SPY",
    sec_type="OPT",
    exchange="SMART",
    local_symbol="SPY   261218C00600000",
    multiplier=D(100),
    expiry="20261218",
    strike=D(600),
    right="C",
)


def at(minutes: float) -> datetime:
    """T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)


def pos(
    contract: Contract,
    quantity: str | Decimal,
    average_price: str | Decimal,
    *,
    account: str = "DU111",
    market: str | Decimal | None = None,
) -> BrokerPosition:
    """A broker row with IB's avgCost derived from a per-unit average."""
    q, avg = D(quantity), D(average_price)
    mkt = D(market) if market is not None else None
    value = mkt * q * contract.multiplier if mkt is not None else None
    unreal = (mkt - avg) * q * contract.multiplier if mkt is not None else None
    return BrokerPosition(account, contract, q, avg * contract.multiplier, mkt, value, unreal)


_counter = iter(range(1, 10**9))


def fill(
    contract: Contract,
    side: str,
    shares: str | Decimal,
    price: str | Decimal,
    *,
    account: str = "DU111",
    commission: str | Decimal | None = "0",
    minutes: float = 1,
    exec_id: str | None = None,
    broker_pnl: str | Decimal | None = None,
) -> Fill:
    """A fill with a fresh IB-style execId unless one is given."""
    n = next(_counter)
    return Fill(
        exec_id=exec_id or f"0000e0d5.{n:08x}.01.01",
        account=account,
        contract=contract,
        side=Side(side),
        shares=D(shares),
        price=D(price),
        time=at(minutes),
        commission=D(commission) if commission is not None else None,
        realized_pnl=D(broker_pnl) if broker_pnl is not None else None,
    )


def snapshot(
    *positions: BrokerPosition,
    fills: tuple[Fill, ...] = (),
    accounts: tuple[str, ...] = ("DU111",),
    minutes: float = 5,
    incomplete: str | None = None,
) -> BrokerSnapshot:
    """A snapshot taken at T0 + minutes."""
    return BrokerSnapshot(
        taken_at=at(minutes),
        accounts=frozenset(accounts),
        positions=positions,
        fills=fills,
        incomplete_reason=incomplete,
    )


@dataclass
class MemoryLedger:
    """An in-memory stand-in for the repository: applies plans exactly as the DB must."""

    rows: dict[int, Lifecycle] = field(default_factory=dict)
    events: list[tuple[int, object]] = field(default_factory=list)
    fills: dict[str, Fill] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    next_id: int = 1

    def history(self, keys: Sequence[PositionKey]) -> dict[PositionKey, StoredHistory]:
        """What the repository's load_histories reads for these keys."""
        out = {}
        for key in keys:
            lifecycles = tuple(r for _, r in sorted(self.rows.items()) if r.key == key)
            fills = tuple(f for f in self.fills.values() if f.key == key)
            seen = tuple(o for o in self.observations if o.key == key)
            events = {r.id: [e for i, e in self.events if i == r.id] for r in lifecycles}
            out[key] = StoredHistory(lifecycles, fills, seen, events)
        return out

    def sync(self, snap: BrokerSnapshot, options: ReconcileOptions | None = None) -> SyncPlan:
        """reconcile() against this ledger with its history, then apply the plan."""
        plan = reconcile(self.state(snap), snap, options, self.history)
        self.apply(plan)
        return plan

    def state(self, snap: BrokerSnapshot | None = None) -> LedgerState:
        """The LedgerState reconcile() sees (known fills: every stored one, keyed by base)."""
        open_rows = {r.key: r for r in self.rows.values() if r.status is PositionStatus.OPEN}
        known = {base_exec_id(f.exec_id): f for f in self.fills.values()}
        return LedgerState(open_positions=open_rows, known_fills=known)

    def apply(self, plan: SyncPlan) -> None:
        """Write the plan (what the repository does in one transaction)."""
        assert plan.incomplete_reason is None
        for row_id in plan.deleted_position_ids:
            del self.rows[row_id]
            self.events = [(i, e) for i, e in self.events if i != row_id]
        for change in plan.changes:
            if change.before is None:
                row_id = self.next_id
                self.next_id += 1
            else:
                assert change.before.id is not None
                row_id = change.before.id
                assert self.rows[row_id] == change.before, "plan made from stale state"
            self.rows[row_id] = replace(change.after, id=row_id)
            if change.replaces_events:
                self.events = [(i, e) for i, e in self.events if i != row_id]
            self.events.extend((row_id, e) for e in change.events)
        for update in plan.market_updates:
            self.rows[update.position_id] = replace(
                self.rows[update.position_id],
                average_price=update.average_price,
                average_cost=update.average_cost,
                current_price=update.current_price,
                market_value=update.market_value,
                unrealized_pnl=update.unrealized_pnl,
                unrealized_pnl_pct=update.unrealized_pnl_pct,
            )
        for row_id in plan.seen_position_ids:
            self.rows[row_id] = replace(self.rows[row_id], last_synced_at=plan.synced_at)
        for new in plan.new_fills:
            assert new.exec_id not in self.fills
            self.fills[new.exec_id] = new
        for correction in plan.corrections:
            self.fills.pop(correction.replaced_exec_id)
            self.fills[correction.fill.exec_id] = correction.fill
        for number, observation in enumerate(plan.new_observations, len(self.observations) + 1):
            self.observations.append(replace(observation, id=number))

    def open_rows(self) -> list[Lifecycle]:
        """OPEN lifecycles."""
        return [r for r in self.rows.values() if r.status is PositionStatus.OPEN]

    def only_open(self) -> Lifecycle:
        """The single OPEN lifecycle (asserts there is exactly one)."""
        rows = self.open_rows()
        assert len(rows) == 1, rows
        return rows[0]

    def realized_total(self) -> Decimal:
        """Realized P&L over every lifecycle."""
        return sum((r.realized_pnl for r in self.rows.values()), D(0))
