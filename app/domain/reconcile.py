"""reconcile(): cached state + a broker snapshot (+ fills) → the plan that makes them agree.

Pure and deterministic. The invariants it implements are DESIGN.md's "Sync rules"; each branch
below names the rule it serves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from app.domain.book import Change, KeyBook, sign
from app.domain.executions import sort_fills
from app.domain.plan import (
    FillCorrection,
    LifecycleChange,
    MarketUpdate,
    PlannedEvent,
    PnlMismatch,
    ReconcileOptions,
    SyncPlan,
)
from app.domain.values import (
    ZERO,
    BrokerPosition,
    BrokerSnapshot,
    CloseReason,
    EventKind,
    Fill,
    LedgerState,
    Lifecycle,
    PositionKey,
    PositionStatus,
    PriceSource,
    SkippedRow,
)

SPLIT_TOLERANCE = Decimal("0.005")
"""A no-fill quantity change keeping quantity × average within 0.5 % is a split, not a trade."""

PNL_TOLERANCE = Decimal("0.01")
"""Our realized P&L and IB's may differ by rounding up to a cent before we flag it."""

_HUNDRED = Decimal(100)
_NO_FILLS: list[Fill] = []  # shared, never modified


def reconcile(
    state: LedgerState,
    snapshot: BrokerSnapshot,
    options: ReconcileOptions | None = None,
) -> SyncPlan:
    """Plan the ledger changes that make the cache agree with a complete snapshot."""
    options = options or ReconcileOptions()
    at = snapshot.taken_at
    if not snapshot.complete:  # Rule 1: only a complete snapshot may change the ledger.
        return SyncPlan(
            synced_at=at,
            accounts=snapshot.accounts,
            skipped=snapshot.skipped,
            positions_seen=len(snapshot.positions),
            incomplete_reason=snapshot.incomplete_reason,
        )

    skipped = list(snapshot.skipped)
    blocked: set[PositionKey] = {row.key for row in snapshot.skipped if row.key is not None}
    broker: dict[PositionKey, BrokerPosition] = {}
    accounts = snapshot.accounts
    for reported in snapshot.positions:
        key = reported.key
        problem = _row_problem(reported, accounts)
        if problem is None and key in broker:
            problem = "reported twice in one snapshot"
        if problem is not None:  # Rule 10: skip the row, never read the key as absent.
            skipped.append(SkippedRow(key, problem))
            blocked.add(key)
            continue
        broker[key] = reported
    for key in blocked:
        broker.pop(key, None)

    def in_scope(key: PositionKey) -> bool:
        return (
            key[0] in snapshot.accounts
            and (snapshot.scope is None or key in snapshot.scope)
            and key not in blocked
        )

    usable_fills: list[Fill] = []
    for fill in snapshot.fills:
        problem = _fill_problem(fill)
        if problem is not None:
            skipped.append(SkippedRow(fill.key, f"execution {fill.exec_id}: {problem}"))
        elif in_scope(fill.key):  # fills of keys out of scope wait for a later sync
            usable_fills.append(fill)
    sorted_fills = sort_fills(usable_fills, state.known_fills)
    fills_by_key: dict[PositionKey, list[Fill]] = defaultdict(list)
    for fill in sorted_fills.new:
        fills_by_key[fill.key].append(fill)

    changes: list[LifecycleChange] = []
    market: list[MarketUpdate] = []
    seen: list[int] = []
    cache = state.open_positions
    # The common case first, in the snapshot's order: a key whose quantity the cache already
    # holds and no fill explains anything; only prices may have moved. No event, no lifecycle
    # change, so no order is needed (sorting 20,000 keys cost more than handling them).
    rest: list[PositionKey] = []
    for key, reported in broker.items():
        cached = cache.get(key)
        if (
            cached is not None
            and reported.quantity == cached.quantity
            and cached.missing_since is None
            and key not in fills_by_key
        ):
            assert cached.id is not None
            seen.append(cached.id)
            update = _market_update(cached, reported)
            if update is not None:
                market.append(update)
            continue
        rest.append(key)
    if snapshot.scope is None and not blocked:  # the usual full sync: no per-key call
        rest.extend(k for k in cache if k[0] in accounts and k not in broker)
    else:
        rest.extend(k for k in cache if in_scope(k) and k not in broker)
    # Keys with fills but neither reported nor cached (in scope: fills_by_key only holds those).
    rest.extend(k for k in fills_by_key if k not in broker and k not in cache)

    # Everything else in key order: these produce the changes, written in this order.
    for key in sorted(rest):
        cached = cache.get(key)
        row = broker.get(key)
        fills = fills_by_key.get(key, _NO_FILLS)
        if cached is None and row is not None and not fills:
            # A first sync's common case: a position the cache never held and no fills explain.
            if row.quantity != 0:  # an explicit zero for a key never held changes nothing
                changes.append(_opened_unexplained(key, row, at))
            continue
        changes.extend(_reconcile_key(key, cached, row, fills, at, options))

    changes, mismatches = _flag_pnl_differences(changes)
    return SyncPlan(
        synced_at=at,
        accounts=snapshot.accounts,
        changes=tuple(changes),
        market_updates=tuple(market),
        seen_position_ids=tuple(seen),
        new_fills=sorted_fills.new,
        corrections=tuple(FillCorrection(old, fill) for old, fill in sorted_fills.corrections),
        skipped=tuple(skipped),
        pnl_mismatches=tuple(mismatches),
        positions_seen=len(snapshot.positions),
        counts=_count(changes),
    )


_UNEXPLAINED = "no fills seen; priced from IB's average cost"


def _opened_unexplained(key: PositionKey, row: BrokerPosition, at: datetime) -> LifecycleChange:
    """Exactly what `_reconcile_key(key, None, row, [], …)` plans for a non-zero row, without
    a KeyBook: an opening priced from IB's average, then IB's market data (the same values and
    digits; tests/domain/test_fast_paths.py holds the two paths equal)."""
    quantity = row.quantity - ZERO  # the residual from flat, as KeyBook books it
    average_price, average_cost, price, value, unrealized, pct = _market(row, quantity)
    # Positional: a first sync builds these for every one of 20,000 positions.
    event = PlannedEvent(
        EventKind.OPENED, at, ZERO, quantity, average_price, None, None, None, (), _UNEXPLAINED
    )
    life = Lifecycle(
        None, key[0], row.contract, quantity, average_price, PositionStatus.OPEN, at,
        average_cost, price, value, unrealized, pct, ZERO, None, None, at,
    )  # fmt: skip
    return LifecycleChange(None, life, (event,))


def _reconcile_key(
    key: PositionKey,
    cached: Lifecycle | None,
    row: BrokerPosition | None,
    fills: list[Fill],
    at: datetime,
    options: ReconcileOptions,
) -> list[LifecycleChange]:
    if cached is not None:
        contract = cached.contract
    elif row is not None:
        contract = row.contract
    else:
        contract = fills[0].contract
    book = KeyBook(key[0], contract, cached, calculate_realized_pnl=options.calculate_realized_pnl)

    if cached is not None and cached.missing_since is not None and row is not None:
        # Rule 2: it came back; the warning clears before anything else is booked.
        book.note_event(
            PlannedEvent(
                EventKind.REAPPEARED,
                at,
                cached.quantity,
                cached.quantity,
                note=f"reported by the broker again (missing since {cached.missing_since:%c})",
            )
        )
        book.set_state(missing_since=None)

    for fill in fills:
        book.book(Change.from_fill(fill))

    if row is None:
        _absent(book, at, options)
    else:
        _reported(book, row, at, bool(fills))
    return book.changes()


def _absent(book: KeyBook, at: datetime, options: ReconcileOptions) -> None:
    """The key is in scope but the complete snapshot does not report it."""
    held = book.quantity
    current = book.current
    if held == 0 or current is None:
        return  # nothing open, or fills already netted it to zero (rule 2: fills explain it)
    if options.mark_missing_as_closed:
        price, source = _exit_price(None, current)
        book.book(
            Change(
                delta=-held,
                price=price,
                time=at,
                source=source,
                note="not reported by the broker; closed because mark_missing_as_closed is on",
                close_reason=CloseReason.MISSING,
            )
        )
        return
    if current.missing_since is None:  # Rule 2: one MISSING event, however many syncs follow.
        book.note_event(
            PlannedEvent(
                EventKind.MISSING,
                at,
                held,
                held,
                note="the broker no longer reports this position and no fills explain it",
            )
        )
        book.set_state(missing_since=at)


def _reported(book: KeyBook, row: BrokerPosition, at: datetime, had_fills: bool) -> None:
    """The broker reports the key: book whatever the fills did not explain, then take IB's data."""
    held = book.quantity
    target = row.quantity
    residual = target - held
    if residual != 0:
        current = book.current
        if (
            not had_fills
            and current is not None
            and sign(held) == sign(target) != 0
            and _is_split(held, current.average_price, target, row.average_price)
        ):
            book.note_event(
                PlannedEvent(
                    EventKind.SPLIT,
                    at,
                    held,
                    target,
                    price=row.average_price,
                    note=f"quantity {held} → {target} with no fills; cost basis unchanged",
                )
            )
            book.set_state(quantity=target)
        elif held != 0 and sign(residual) != sign(held):
            price, source = _exit_price(row, current)
            book.book(
                Change(
                    residual,
                    price,
                    at,
                    source,
                    note="quantity changed with no fills seen; exit priced from "
                    + ("the market" if source is PriceSource.MARKET else "the last known price"),
                )
            )
        else:
            # An opening or an add that no fill explains: price it at what IB's new average
            # implies; the average itself is then taken from IB below.
            book.book(
                Change(
                    residual,
                    _implied_price(held, book.average_price, target, row),
                    at,
                    None,
                    note=_UNEXPLAINED,
                )
            )
    if book.current is not None and target != 0:
        book.set_state(last_synced_at=at, **_market_fields(row, book.quantity))


def _implied_price(
    held: Decimal, average: Decimal, target: Decimal, row: BrokerPosition
) -> Decimal:
    added = abs(target) - abs(held)
    if held == 0 or sign(held) != sign(target) or added <= 0:
        return row.average_price
    implied = (abs(target) * row.average_price - abs(held) * average) / added
    return implied if implied > 0 else row.average_price


_Market = tuple[Decimal, Decimal, Decimal | None, Decimal | None, Decimal | None, Decimal | None]
"""(average_price, average_cost, current_price, market_value, unrealized_pnl, its pct)."""


def _market(row: BrokerPosition, quantity: Decimal) -> _Market:
    # A tuple, not a dict, and _usable() inline: a full sync computes this for every one of
    # 20,000 positions.
    price = row.market_price
    if price is not None and not price.is_finite():
        price = None
    value = row.market_value
    if value is not None and not value.is_finite():
        value = None
    unrealized = row.unrealized_pnl
    if unrealized is not None and not unrealized.is_finite():
        unrealized = None
    basis = abs(quantity) * row.average_cost
    pct = unrealized / basis * _HUNDRED if unrealized is not None and basis else None
    return row.average_price, row.average_cost, price, value, unrealized, pct


def _market_fields(row: BrokerPosition, quantity: Decimal) -> dict[str, Decimal | None]:
    average_price, average_cost, price, value, unrealized, pct = _market(row, quantity)
    return {
        "average_price": average_price,
        "average_cost": average_cost,
        "current_price": price,
        "market_value": value,
        "unrealized_pnl": unrealized,
        "unrealized_pnl_pct": pct,
    }


def _market_update(cached: Lifecycle, row: BrokerPosition) -> MarketUpdate | None:
    assert cached.id is not None
    average_price, average_cost, price, value, unrealized, pct = _market(row, cached.quantity)
    if (
        cached.average_price == average_price
        and cached.average_cost == average_cost
        and cached.current_price == price
        and cached.market_value == value
        and cached.unrealized_pnl == unrealized
        and cached.unrealized_pnl_pct == pct
    ):
        return None
    return MarketUpdate(
        position_id=cached.id,
        average_price=average_price,
        average_cost=average_cost,
        current_price=price,
        market_value=value,
        unrealized_pnl=unrealized,
        unrealized_pnl_pct=pct,
    )


def _exit_price(
    row: BrokerPosition | None, current: Lifecycle | None
) -> tuple[Decimal, PriceSource]:
    """Exit price when no fills explain a reduction: market at sync → last known price."""
    if row is not None and _usable(row.market_price):
        assert row.market_price is not None
        return row.market_price, PriceSource.MARKET
    if current is not None and _usable(current.current_price):
        assert current.current_price is not None
        return current.current_price, PriceSource.LAST_KNOWN
    # Nothing better known: exit at the average, which realizes nothing rather than guessing.
    return (current.average_price if current else ZERO), PriceSource.LAST_KNOWN


def _is_split(held: Decimal, average: Decimal, target: Decimal, new_average: Decimal) -> bool:
    before = abs(held * average)
    after = abs(target * new_average)
    if before == 0:
        return False
    return abs(after - before) <= before * SPLIT_TOLERANCE


def _usable(value: Decimal | None) -> bool:
    return value is not None and value.is_finite()


def _row_problem(row: BrokerPosition, accounts: frozenset[str]) -> str | None:
    if row.account not in accounts:
        return "account is not one of the managed accounts"
    if row.contract.con_id <= 0:
        return "no conId"
    if not row.quantity.is_finite():
        return "quantity is not a number"
    if not row.average_cost.is_finite():
        return "average cost is not a number"
    if not row.contract.multiplier.is_finite() or row.contract.multiplier <= 0:
        return "multiplier is not positive"
    return None


def _fill_problem(fill: Fill) -> str | None:
    if not fill.shares.is_finite() or fill.shares <= 0:
        return "shares not positive"
    if not fill.price.is_finite():
        return "price is not a number"
    if fill.contract.con_id <= 0:
        return "no conId"
    if not fill.contract.multiplier.is_finite() or fill.contract.multiplier <= 0:
        return "multiplier is not positive"
    if fill.commission is not None and not fill.commission.is_finite():
        return "commission is not a number"
    return None


def _flag_pnl_differences(
    changes: list[LifecycleChange],
) -> tuple[list[LifecycleChange], list[PnlMismatch]]:
    """Where IB reported a per-fill realized P&L, flag a difference from ours over a cent."""
    mismatches: list[PnlMismatch] = []
    flagged: list[LifecycleChange] = []
    for change in changes:
        for event in change.events:
            if event.broker_realized_pnl is not None:
                break
        else:
            flagged.append(change)  # nothing to compare (openings, syncs without fills)
            continue
        events = []
        for event in change.events:
            ours, theirs = event.realized_pnl, event.broker_realized_pnl
            if ours is not None and theirs is not None and abs(ours - theirs) > PNL_TOLERANCE:
                after = change.after
                mismatches.append(
                    PnlMismatch(
                        after.account,
                        after.contract.con_id,
                        after.contract.symbol,
                        ours,
                        theirs,
                        event.exec_ids,
                    )
                )
                text = f"IB reports realized P&L {theirs:.2f}; ours is {ours:.2f}"
                note = f"{event.note}; {text}" if event.note else text
                events.append(_with_note(event, note))
                continue
            events.append(event)
        flagged.append(LifecycleChange(change.before, change.after, tuple(events)))
    return flagged, mismatches


def _with_note(event: PlannedEvent, note: str) -> PlannedEvent:
    return replace(event, note=note)


def _count(changes: list[LifecycleChange]) -> dict[str, int]:
    counts = {"opened": 0, "updated": 0, "closed": 0, "missing": 0}
    for change in changes:
        missing = 0
        for event in change.events:
            if event.kind is EventKind.MISSING:
                missing += 1
        if change.before is None:
            counts["opened"] += 1
        elif change.after.status is PositionStatus.OPEN and missing < len(change.events):
            counts["updated"] += 1  # a new warning alone is counted under "missing"
        if change.after.status is PositionStatus.CLOSED:
            counts["closed"] += 1
        counts["missing"] += missing
    return counts
