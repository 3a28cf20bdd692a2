"""reconcile(): cached state + a broker snapshot (+ fills) → the plan that makes them agree.

Pure and deterministic. The invariants it implements are DESIGN.md's "Sync rules"; each branch
below names the rule it serves. Keys whose quantity and average did not change take a fast path
(market data only); a first sync's openings without fills another; every other key the snapshot
touches is folded again from its history (app.domain.fold) with what this snapshot adds — its
new fills, corrections and late commission reports, and an `Observation` of what it reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from app.domain.conversions import Holding, Pair, find_pairs
from app.domain.decimals import derived
from app.domain.executions import base_exec_id, sort_fills
from app.domain.fold import BROKER_PNL_TOLERANCE as PNL_TOLERANCE
from app.domain.fold import Carried, FoldedLifecycle, KeyHistory, fold
from app.domain.history import Observation, ObservationKind, StoredHistory, same_event
from app.domain.lots import with_fifo
from app.domain.plan import (
    FillCorrection,
    LifecycleChange,
    MarketUpdate,
    PlannedEvent,
    PnlMismatch,
    ReconcileOptions,
    SyncPlan,
)
from app.domain.prices import PRICE_MAX_AGE, is_price
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
    SkippedRow,
)

HistoryLoader = Callable[[Sequence[PositionKey]], Mapping[PositionKey, StoredHistory]]
"""Reads the stored history of some keys (the repository, in the sync's transaction)."""


_HUNDRED = Decimal(100)
_NO_FILLS: list[Fill] = []  # shared, never modified
_NO_HISTORY = StoredHistory()


def reconcile(
    state: LedgerState,
    snapshot: BrokerSnapshot,
    options: ReconcileOptions | None = None,
    load_history: HistoryLoader | None = None,
) -> SyncPlan:
    """Plan the ledger changes that make the cache agree with a complete snapshot.

    Keys the snapshot changed are folded again from their whole stored history (`load_history`
    reads it for those keys, in the same transaction); without a loader, from the cached OPEN
    lifecycle onwards (pure callers whose ledger holds no history).
    """
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
    # Accounts whose market data TWS did not serve this time (issue 16): their rows carry none,
    # and each position keeps its last price, its age told by the runs' stale-price notes.
    stale = frozenset(account for account, _ in snapshot.stale_prices)
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
    # When each was first seen: this snapshot, or (a correction, a late commission report) when
    # the version it replaces was.
    new_fills = tuple(replace(f, seen_at=at) for f in sorted_fills.new)
    stamped = []
    for old, fill in sorted_fills.corrections:
        replaced = state.known_fills.get(base_exec_id(old))
        first_seen = replaced.seen_at if replaced is not None and replaced.seen_at else at
        stamped.append((old, replace(fill, seen_at=first_seen)))
    sorted_fills = replace(sorted_fills, new=new_fills, corrections=tuple(stamped))
    fills_by_key: dict[PositionKey, list[Fill]] = defaultdict(list)
    for fill in sorted_fills.new:
        fills_by_key[fill.key].append(fill)

    # A correction (or a late commission report) re-derives the key it lands in, and the key of
    # the version it replaces (IB may correct a fill's account or contract).
    corrections: dict[str, Fill] = {}
    corrected: set[PositionKey] = set()
    for _, fill in sorted_fills.corrections:
        base = base_exec_id(fill.exec_id)
        corrections[base] = fill
        corrected.add(fill.key)
        replaced = state.known_fills.get(base)
        if replaced is not None and in_scope(replaced.key):
            corrected.add(replaced.key)

    changes: list[LifecycleChange] = []
    market: list[MarketUpdate] = []
    seen: list[int] = []
    cache = state.open_positions
    # The common case first, in the snapshot's order: a key whose quantity and average the cache
    # already holds and no fill explains anything; only prices may have moved. No event, no
    # lifecycle change, so no order is needed (sorting 20,000 keys cost more than handling them).
    rest: list[PositionKey] = []
    for key, reported in broker.items():
        cached = cache.get(key)
        if (
            cached is not None
            and reported.quantity == cached.quantity
            and cached.missing_since is None
            and key not in fills_by_key
            and key not in corrected
            and (cached.average_cost is None or cached.average_cost == reported.average_cost)
        ):
            assert cached.id is not None
            seen.append(cached.id)
            update = _market_update(cached, reported, reported.account in stale)
            if update is not None:
                market.append(update)
            continue
        rest.append(key)
    if snapshot.scope is None and not blocked:  # the usual full sync: no per-key call
        rest.extend(k for k in cache if k[0] in accounts and k not in broker)
    else:
        rest.extend(k for k in cache if in_scope(k) and k not in broker)
    # Keys with fills (or corrected fills) but neither reported nor cached (in scope).
    rest.extend(k for k in fills_by_key if k not in broker and k not in cache)
    rest.extend(
        k for k in corrected if k not in broker and k not in cache and k not in fills_by_key
    )

    traded = {f.key for f in usable_fills}
    pairs = _conversions(rest, cache, broker, traded | corrected)
    # Everything else in key order: these produce the changes, written in this order.
    observations: list[Observation] = []
    folding: dict[PositionKey, Observation | None] = {}
    for key in sorted(rest):
        cached = cache.get(key)
        row = broker.get(key)
        pair = pairs.get(key)
        if pair is not None:
            # One half of a conversion: stored as the observed pair, booked by the folds.
            observation = _paired(_observation(key, cached, row, at, options, True), pair)
            assert observation is not None
            folding[key] = observation
            observations.append(observation)
            continue
        if cached is None and row is not None and key not in traded and key not in corrected:
            # A first sync's common case: a position the cache never held and no fills explain.
            # (A key with fills today, even known ones, is folded: a fill booked after a row
            # that lagged it may have closed what this row still shows.)
            if row.quantity != 0:  # an explicit zero for a key never held changes nothing
                changes.append(_opened_unexplained(key, row, at))
                observations.append(_observation(key, None, row, at, options))  # type: ignore[arg-type]
            continue
        changed = key in fills_by_key or key in corrected
        observation = _observation(key, cached, row, at, options, changed)
        if observation is None:
            continue  # still missing, nothing new
        folding[key] = observation
        if observation is not None:
            observations.append(observation)

    stored = load_history(list(folding)) if load_history is not None and folding else {}
    deleted: list[int] = []
    held: list[str] = []
    converted: dict[PositionKey, tuple[Carried, ...]] = {}
    # A key converted into another is folded before it: the new key's fold carries its basis.
    for key in sorted(folding, key=lambda k: _appeared(folding[k])):
        observation = folding[key]
        history = stored.get(key, _NO_HISTORY) if load_history is not None else None
        known = (history.observations if history is not None else ()) + (
            (observation,) if observation is not None else ()
        )
        key_changes, key_deleted, key_held, key_converted = _fold_key(
            key,
            cache.get(key),
            broker.get(key),
            fills_by_key.get(key, _NO_FILLS),
            corrections,
            observation,
            history,
            options,
            keep_last_price=key[0] in stale,
            carried=_carried(key, known, load_history, options, converted),
        )
        converted[key] = key_converted
        changes.extend(key_changes)
        deleted.extend(key_deleted)
        held.extend(key_held)

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
        counts=_count(changes, at),
        new_observations=tuple(observations),
        deleted_position_ids=tuple(deleted),
        held_exec_ids=tuple(held),
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


def refold(
    stored: Mapping[PositionKey, StoredHistory],
    options: ReconcileOptions | None = None,
    load_history: HistoryLoader | None = None,
) -> tuple[list[LifecycleChange], list[int]]:
    """Fold keys again from their stored history alone (a user's close was added to it, say):
    the changes to write and the lifecycle ids to delete, as reconcile() plans them.

    With `load_history`, conversions reach across keys: a key converted into another brings the
    other along (its carried basis may have changed), and a key converted from another reads
    that one's history to know what it carries."""
    options = options or ReconcileOptions()
    histories = dict(stored)
    if load_history is not None:
        partners = {
            (key[0], o.vanished_into)
            for key, history in stored.items()
            for o in history.observations
            if o.vanished_into is not None
        }
        extra = sorted(k for k in partners if k not in histories)
        if extra:
            histories.update(load_history(extra))
    changes: list[LifecycleChange] = []
    deleted: list[int] = []
    converted: dict[PositionKey, tuple[Carried, ...]] = {}
    order = sorted(histories, key=lambda k: _new_side(histories[k]))
    for key in order:
        history = histories[key]
        if not history.lifecycles and not history.fills and not history.observations:
            continue
        cached = next((life for life in history.lifecycles if life.is_open), None)
        carried = _carried(key, history.observations, load_history, options, converted)
        key_changes, key_deleted, _, key_converted = _fold_key(
            key, cached, None, [], {}, None, history, options, carried=carried
        )
        converted[key] = key_converted
        changes.extend(key_changes)
        deleted.extend(key_deleted)
    changes, _ = _flag_pnl_differences(changes)
    return changes, deleted


# ---------------------------------------------------------------------------- conversions
def _conversions(
    keys: Sequence[PositionKey],
    cache: Mapping[PositionKey, Lifecycle],
    broker: Mapping[PositionKey, BrokerPosition],
    touched: set[PositionKey],
) -> dict[PositionKey, Pair]:
    """The conversions this snapshot shows (app.domain.conversions), by both of their keys:
    among the keys it changed, OPEN ones that vanished now (not reported, or reported 0) and
    keys reported for the first time, none with fills or corrections in this snapshot."""
    vanished: list[Holding] = []
    new_rows: list[BrokerPosition] = []
    for key in keys:
        if key in touched:
            continue
        cached, row = cache.get(key), broker.get(key)
        gone = row is None or not row.quantity
        if cached is not None and cached.missing_since is None and gone:
            average = cached.average_price
            if cached.average_cost:  # IB's own, as it multiplies it in a conversion
                average = cached.average_cost / cached.contract.multiplier
            vanished.append(Holding(key, cached.contract, cached.quantity, average))
        elif cached is None and row is not None and row.quantity:
            new_rows.append(row)
    if not vanished or not new_rows:
        return {}  # a first sync: 20,000 keys appeared, none vanished (no Holding built for them)
    appeared = [Holding(r.key, r.contract, r.quantity, r.average_price) for r in new_rows]
    found: dict[PositionKey, Pair] = {}
    for pair in find_pairs(vanished, appeared):
        found[pair.old.key] = found[pair.new.key] = pair
    return found


def _paired(observation: Observation | None, pair: Pair) -> Observation | None:
    """`observation` of one half of `pair` with the pairing stored beside it (the fact)."""
    if observation is None:
        return None
    if observation.key == pair.old.key:
        return replace(
            observation,
            paired_con_id=pair.new.key[1],
            paired_quantity=pair.new.quantity,
            paired_average_cost=pair.new.average * pair.new.contract.multiplier,
        )
    return replace(observation, paired_con_id=pair.old.key[1])


def _new_side(history: StoredHistory) -> int:
    """1 when the key was converted from another (fold it after that one), else 0."""
    return max(map(_appeared, history.observations), default=0)


def _appeared(observation: Observation | None) -> int:
    """1 for the new key's half of a conversion (folded after the vanished key), else 0."""
    return int(observation is not None and observation.appeared_from is not None)


def _carried(
    key: PositionKey,
    observations: Sequence[Observation],
    load_history: HistoryLoader | None,
    options: ReconcileOptions,
    known: dict[PositionKey, tuple[Carried, ...]],
) -> tuple[Carried, ...]:
    """What conversions into `key` carry: from `known` folds of this run, else by folding the
    vanished key's stored history (and, for a chain, its own sources first)."""
    sources = sorted({(key[0], o.appeared_from) for o in observations if o.appeared_from})
    if not sources:
        return ()
    missing = [s for s in sources if s not in known]
    loaded = load_history(missing) if missing and load_history is not None else {}
    out: list[Carried] = []
    for source in sources:
        if source not in known:
            history = loaded.get(source)
            contracts = [life.contract for life in history.lifecycles] if history else []
            if history is None or not contracts:
                known[source] = ()
                continue
            carried = _carried(source, history.observations, load_history, options, known)
            source_history = KeyHistory(
                source[0], contracts[0], history.fills, history.observations, carried=carried
            )
            folded = fold(source_history, calculate_realized_pnl=options.calculate_realized_pnl)
            known[source] = folded.converted
        out.extend(c for c in known[source] if c.to_con_id == key[1])
    return tuple(out)


# ---------------------------------------------------------------------------- folding keys
def _observation(
    key: PositionKey,
    cached: Lifecycle | None,
    row: BrokerPosition | None,
    at: datetime,
    options: ReconcileOptions,
    changed: bool = False,
) -> Observation | None:
    """What this snapshot tells about a key that changed (None: nothing new). `changed`: new
    fills or corrections arrived for it."""
    account, con_id = key
    if row is not None:
        price = row.market_price if is_price(row.market_price) else None
        return Observation(
            account, con_id, ObservationKind.REPORTED, at, row.quantity, row.average_cost, price
        )
    if cached is not None and cached.missing_since is not None and not changed:
        return None  # already missing: one MISSING event, however many syncs follow (rule 2)
    kind = (
        ObservationKind.ABSENT_CLOSE if options.mark_missing_as_closed else ObservationKind.ABSENT
    )
    return Observation(account, con_id, kind, at, price=_last_price(cached, at))


def _last_price(cached: Lifecycle | None, at: datetime) -> Decimal | None:
    """The market price the ledger last held for a key the broker no longer reports, when it
    is not stale: the last sync that reported the key (and set that price) was at most
    PRICE_MAX_AGE before `at`. Stored with the absence (a fact: what the ledger knew then), it
    can price what the absence closes (mark_missing_as_closed, a future's expiry) as an
    estimate; an older price is no price (issue 16, item 6)."""
    if cached is None or not is_price(cached.current_price):
        return None
    seen = cached.last_synced_at
    if seen is None or at - seen > PRICE_MAX_AGE:
        return None
    return cached.current_price


def _fold_key(
    key: PositionKey,
    cached: Lifecycle | None,
    row: BrokerPosition | None,
    new_fills: list[Fill],
    corrections: Mapping[str, Fill],
    observation: Observation | None,
    stored: StoredHistory | None,
    options: ReconcileOptions,
    *,
    keep_last_price: bool = False,
    carried: tuple[Carried, ...] = (),
) -> tuple[list[LifecycleChange], list[int], tuple[str, ...], tuple[Carried, ...]]:
    """Fold the key's whole history (with this snapshot's facts) and plan what differs from
    what is stored: (changes, lifecycle ids to delete, held execIds, conversions out)."""
    if cached is not None:
        contract = cached.contract
    elif row is not None:
        contract = row.contract
    elif new_fills:
        contract = new_fills[0].contract
    else:  # only a correction touched it: moved in, or moved out to another key
        known = [f.contract for f in corrections.values() if f.key == key]
        known += [life.contract for life in stored.lifecycles] if stored is not None else []
        known += [f.contract for f in stored.fills] if stored is not None else []
        contract = known[0]
    observations: tuple[Observation, ...] = (observation,) if observation is not None else ()
    if stored is not None and cached is not None and _held_before_history(cached, stored):
        # The ledger held this lifecycle before it kept the facts it rests on (a seed row
        # adopted by its first sync, a lifecycle from before revision 0007 whose facts were not
        # recoverable): its figures are taken as given and only what follows is folded.
        cached = next(life for life in stored.lifecycles if life.is_open)
        stored = None
    if stored is None:
        # No stored history (pure callers): fold from the cached lifecycle onwards.
        base = cached
        fills = tuple(new_fills)
        existing: tuple[Lifecycle, ...] = (cached,) if cached is not None else ()
    else:
        base = None
        # One pass, each base execId computed once (a key traded 1,000 times: 1,000 fills).
        history: list[Fill] = []
        bases: set[str] = set()
        for f in stored.fills:
            b = base_exec_id(f.exec_id)
            bases.add(b)
            correction = corrections.get(b)
            if correction is None:
                history.append(f)
            elif correction.key == key:  # else it moved to another key
                history.append(correction)
        history.extend(f for b, f in corrections.items() if f.key == key and b not in bases)
        fills = (*history, *new_fills)
        observations = stored.observations + observations
        existing = stored.lifecycles
    key_history = KeyHistory(key[0], contract, fills, observations, base, carried)
    folded = with_fifo(
        fold(key_history, calculate_realized_pnl=options.calculate_realized_pnl),
        key_history,
        stored,  # its lifecycles line up with the fold's as compared below
    )
    lifecycles = list(folded.lifecycles)
    if lifecycles and lifecycles[-1].lifecycle.is_open:
        last = lifecycles[-1]
        life = last.lifecycle
        held_before = next((x for x in reversed(existing) if x.is_open), cached)
        if keep_last_price and row and not _has_market(row) and held_before is not None:
            # Reported without market data because its account's were refused or did not end
            # (issue 16): the last known price stays, its age told by the runs' stale-price
            # notes; value and unrealized P&L stay only while the quantity they were for does.
            same = held_before.quantity == life.quantity
            life = replace(
                life,
                current_price=held_before.current_price,
                market_value=held_before.market_value if same else None,
                unrealized_pnl=held_before.unrealized_pnl if same else None,
                unrealized_pnl_pct=held_before.unrealized_pnl_pct if same else None,
            )
        elif row is not None:
            _, _, price, value, unrealized, pct = _market(row, life.quantity)
            life = replace(
                life,
                current_price=price,
                market_value=value,
                unrealized_pnl=unrealized,
                unrealized_pnl_pct=pct,
            )
        else:
            # Not reported now: market data and the last sync time stay as stored (read from
            # the history, which the database gives exactly; a kept copy may lag in the latter).
            held = next((x for x in reversed(existing) if x.is_open), cached)
            if held is not None:
                life = replace(
                    life,
                    current_price=held.current_price,
                    market_value=held.market_value,
                    unrealized_pnl=held.unrealized_pnl,
                    unrealized_pnl_pct=held.unrealized_pnl_pct,
                    last_synced_at=held.last_synced_at,
                )
        lifecycles[-1] = FoldedLifecycle(life, last.events)
    changes: list[LifecycleChange] = []
    for index, new in enumerate(lifecycles):
        old = existing[index] if index < len(existing) else None
        if old is None:
            changes.append(LifecycleChange(None, new.lifecycle, new.events))
            continue
        after = replace(new.lifecycle, id=old.id, contract=old.contract)
        events, replaces = new.events, False
        if stored is not None:
            kept = stored.events.get(old.id or 0, ())
            if len(kept) <= len(events) and all(map(same_event, kept, events)):
                events = events[len(kept) :]  # derived again unchanged: keep what is stored
            else:
                replaces = True
        if not events and not replaces and _same_substance(old, after):
            if after != old:  # market data only
                changes.append(LifecycleChange(old, after, ()))
            continue
        changes.append(LifecycleChange(old, after, events, replaces_events=replaces))
    deleted = [life.id for life in existing[len(lifecycles) :] if life.id is not None]
    return changes, deleted, folded.held, folded.converted


def _held_before_history(cached: Lifecycle, stored: StoredHistory) -> bool:
    """True when the key's only stored lifecycle is OPEN and opened before every stored fact of
    the key (a fold dates each lifecycle it opens by a fact, so one of its own never is)."""
    if len(stored.lifecycles) != 1 or not stored.lifecycles[0].is_open:
        return False
    first = stored.events.get(stored.lifecycles[0].id or 0, ())
    if first and first[0].kind is EventKind.CONVERTED:
        return False  # opened by a conversion: dated by the holding it carries, folded from it
    times = [o.at for o in stored.observations] + [f.time for f in stored.fills]
    return not times or stored.lifecycles[0].opened_at < min(times)


def _same_substance(old: Lifecycle, new: Lifecycle) -> bool:
    """True when a fold left a stored lifecycle's ledger figures as they are (market data and
    the last sync time aside)."""
    return (
        old.quantity == new.quantity
        and old.status is new.status
        and old.opened_at == new.opened_at
        and old.closed_at == new.closed_at
        and old.close_reason is new.close_reason
        and old.realized_pnl == new.realized_pnl
        and old.realized_pnl_estimated == new.realized_pnl_estimated
        and old.pnl_basis is new.pnl_basis
        and old.missing_since == new.missing_since
        and old.entry_trade_id == new.entry_trade_id
        and old.exit_trade_id == new.exit_trade_id
        and old.average_price == new.average_price
    )


_Market = tuple[Decimal, Decimal, Decimal | None, Decimal | None, Decimal | None, Decimal | None]
"""(average_price, average_cost, current_price, market_value, unrealized_pnl, its pct)."""


def _market(row: BrokerPosition, quantity: Decimal) -> _Market:
    # A tuple, not a dict, and the price checks inline: a full sync computes this for every one of
    # 20,000 positions.
    price = row.market_price
    value = row.market_value
    unrealized = row.unrealized_pnl
    if price is None or not price.is_finite() or price <= 0:
        # No price (none, 0 or -1 without market data): TWS derived the value and the
        # unrealized P&L from it, so they are none either (app.broker.convert.market_mark).
        price = value = unrealized = None
    if value is not None and not value.is_finite():
        value = None
    if unrealized is not None and not unrealized.is_finite():
        unrealized = None
    basis = abs(quantity) * row.average_cost
    # Derived: at the ledger's fixed scale, or the division's 28 digits reach the database.
    pct = derived(unrealized / basis * _HUNDRED) if unrealized is not None and basis else None
    return row.average_price, row.average_cost, price, value, unrealized, pct


def _market_update(
    cached: Lifecycle, row: BrokerPosition, keep_last: bool = False
) -> MarketUpdate | None:
    assert cached.id is not None
    average_price, average_cost, price, value, unrealized, pct = _market(row, cached.quantity)
    if keep_last and price is None and value is None and unrealized is None:
        # No market data because its account's were refused or did not end (issue 16): the
        # last known stays, its age told by the runs' stale-price notes (the same quantity).
        price, value = cached.current_price, cached.market_value
        unrealized, pct = cached.unrealized_pnl, cached.unrealized_pnl_pct
    if cached.average_cost is not None:
        # IB's average is what it was (the fast path checked): ours stands, as the fold left it.
        average_price = cached.average_price
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


def _has_market(row: BrokerPosition) -> bool:
    """The row carries some usable market data (price, value or unrealized P&L)."""
    return _usable(row.market_price) or _usable(row.market_value) or _usable(row.unrealized_pnl)


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
        flagged.append(replace(change, events=tuple(events)))
    return flagged, mismatches


def _with_note(event: PlannedEvent, note: str) -> PlannedEvent:
    return replace(event, note=note)


def _count(changes: list[LifecycleChange], at: datetime) -> dict[str, int]:
    """Lifecycles this plan opened, changed while open, closed, and newly flagged missing."""
    counts = {"opened": 0, "updated": 0, "closed": 0, "missing": 0}
    for change in changes:
        before, after = change.before, change.after
        was_open = before is not None and before.is_open
        converted_in = bool(change.events) and change.events[0].kind is EventKind.CONVERTED
        if after.close_reason is CloseReason.CONVERTED:
            continue  # a conversion is one change, counted on its new key (nothing closed)
        if before is None and converted_in:
            counts["updated"] += 1
            continue
        if before is None:
            counts["opened"] += 1
        if after.status is PositionStatus.CLOSED and (before is None or was_open):
            counts["closed"] += 1
        newly_missing = after.missing_since is not None and (
            before is None or before.missing_since is None
        )
        if newly_missing:
            counts["missing"] += 1
        elif was_open and after.is_open and change.events:
            counts["updated"] += 1  # a new warning alone is counted under "missing"
    return counts
