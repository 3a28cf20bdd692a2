"""IB statements (Activity Flex Query XML) as ledger facts, and what merging them changed.

DESIGN.md "Lifecycle and realized P&L": a statement's executions are fills like the live ones —
its `ibExecID` is the API's execId — so they join a key's history and the fold re-derives the
key (app.domain.fold): a sale the live stream missed is booked at its real price, time and
commission, and the estimate the ledger had to make for it is gone. This module is pure: the
parser (app.flex) produces a `Statement`, the write door (app.db.statements) stores it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from app.domain.decimals import decimal_text
from app.domain.executions import base_exec_id, correction_rank
from app.domain.history import Observation, ObservationKind, StoredHistory
from app.domain.money import ByCurrency
from app.domain.values import CloseReason, Contract, EventKind, ExchangeRate, Fill, PositionKey


class StatementError(ValueError):
    """A statement that cannot be imported; the message names the file and the row."""


@dataclass(frozen=True, slots=True)
class StatedConversion:
    """A statement's corporate action that moves one holding to a new conId (app.flex.actions:
    the `RS` / `IC` rows of one action, netted per conId). Which side is the old key is not
    read from the signs alone (a short's rows have the other signs): the import takes it from
    the conversion the syncs derived (app.db.statements)."""

    account: str
    action: str
    """IB's `actionID` (or `transactionID` where the query has no actionID)."""
    kind: str
    """IB's type code: "RS" (reverse split) or "IC" (issue change)."""
    at: datetime
    """UTC: the action's time (its `dateTime`, or its `reportDate` at the open)."""
    removed: tuple[int, Decimal]
    """(conId, netted quantity) of the row pair's negative side (the old key of a long)."""
    added: tuple[int, Decimal]
    """(conId, netted quantity) of the positive side (the new key of a long)."""
    description: str = ""
    where: str = ""
    """"file: line N" of the action's first row (for the summary's notes)."""

    @property
    def con_ids(self) -> frozenset[int]:
        """The two conIds of the action."""
        return frozenset({self.removed[0], self.added[0]})


@dataclass(frozen=True, slots=True)
class Statement:
    """Everything taken from one or more Flex statements (one import)."""

    sources: tuple[str, ...]
    """The files (or "Flex Web Service") the facts came from, for messages."""
    fills: tuple[Fill, ...] = ()
    """Executions, `seen_at` None: a statement is IB's record of when they happened."""
    contracts: Mapping[int, Contract] = field(default_factory=dict)
    """Every traded contract by conId, as the statement describes it."""
    base_currencies: Mapping[str, str] = field(default_factory=dict)
    """Account → base currency, where the statement says (AccountInformation)."""
    rates: tuple[ExchangeRate, ...] = ()
    """IB's `fxRateToBase` of each trade (currency → base) at the trade's time."""
    accounts: frozenset[str] = frozenset()
    not_applied: tuple[str, ...] = ()
    """Rows read but not applied (transfers, reverse splits, …), each saying where and why."""
    conversions: tuple[StatedConversion, ...] = ()
    """Conversions to a new conId the statement's corporate actions state (RS / IC / FI pairs)."""

    @property
    def trades(self) -> int:
        """How many execution rows the statement(s) held (duplicates of overlaps included)."""
        return len(self.fills)


def merge(statements: Iterable[Statement]) -> Statement:
    """One statement of several (overlapping statements: the same execution once)."""
    parts = list(statements)
    contracts: dict[int, Contract] = {}
    bases: dict[str, str] = {}
    conversions: dict[tuple[str, str], StatedConversion] = {}
    for part in parts:
        contracts.update(part.contracts)
        bases.update(part.base_currencies)
        for conversion in part.conversions:  # overlapping statements: one action once
            conversions.setdefault((conversion.account, conversion.action), conversion)
    return Statement(
        sources=tuple(s for part in parts for s in part.sources),
        fills=tuple(f for part in parts for f in part.fills),
        contracts=contracts,
        base_currencies=bases,
        rates=tuple(r for part in parts for r in part.rates),
        accounts=frozenset(a for part in parts for a in part.accounts),
        not_applied=tuple(n for part in parts for n in part.not_applied),
        conversions=tuple(conversions.values()),
    )


@dataclass(frozen=True, slots=True)
class SortedStatementFills:
    """A statement's fills against what the ledger holds already."""

    new: tuple[Fill, ...]
    """Executions the ledger never saw (by base execId)."""
    completed: tuple[tuple[Fill, Fill], ...]
    """(the stored fill, what replaces it): a live fill whose commission report never arrived
    gets the statement's commission; a later correction of an execution replaces the stored
    version (and may move it to another account or contract)."""
    known: int
    """Statement executions the ledger already held as they are (nothing to add)."""


def sort_statement_fills(fills: Iterable[Fill], stored: Mapping[str, Fill]) -> SortedStatementFills:
    """Deduplicate a statement's fills (overlaps, corrections) and split them against `stored`
    (the ledger's latest version of each execution, keyed by base execId).

    A fill the ledger holds keeps what the live stream recorded — its time, when it was first
    seen, IB's per-fill realizedPNL — and takes from the statement only what it lacked.
    """
    latest: dict[str, Fill] = {}
    for fill in fills:
        base = base_exec_id(fill.exec_id)
        held = latest.get(base)
        if held is None or correction_rank(fill.exec_id) > correction_rank(held.exec_id):
            latest[base] = fill
    new: list[Fill] = []
    completed: list[tuple[Fill, Fill]] = []
    known = 0
    for base, fill in latest.items():
        have = stored.get(base)
        if have is None:
            new.append(fill)
        elif correction_rank(fill.exec_id) > correction_rank(have.exec_id):
            completed.append((have, replace(fill, seen_at=have.seen_at)))
        elif (have.commission is None and fill.commission is not None) or (
            have.fifo_realized_pnl is None and fill.fifo_realized_pnl is not None
        ):
            # What the live stream cannot give: a commission report that never arrived, and
            # IB's FIFO figure (statements only).
            completed.append(
                (
                    have,
                    replace(
                        have,
                        commission=have.commission
                        if have.commission is not None
                        else fill.commission,
                        commission_currency=have.commission_currency or fill.commission_currency,
                        fifo_realized_pnl=have.fifo_realized_pnl
                        if have.fifo_realized_pnl is not None
                        else fill.fifo_realized_pnl,
                    ),
                )
            )
        else:
            known += 1
    new.sort(key=lambda f: (f.time, f.exec_id))
    return SortedStatementFills(tuple(new), tuple(completed), known)


@dataclass(frozen=True, slots=True)
class Confirmations:
    """What a statement's stated conversions add to the ledger (see `confirmations`)."""

    observations: tuple[Observation, ...] = ()
    """New `confirmed` observations, one per key of each conversion not yet confirmed."""
    confirmed: int = 0
    """Conversions they confirm."""
    known: int = 0
    """Conversions confirmed already (a re-import)."""
    not_applied: tuple[str, ...] = ()
    """Stated conversions the ledger derived no matching conversion for, each saying why."""


@dataclass(frozen=True, slots=True)
class _Derived:
    old: int
    new: int
    held: Decimal
    """The old key's quantity when it was converted (the CONVERTED event's quantity before)."""
    reported: Decimal
    """IB's quantity of the new key at that sync."""


def confirmations(
    conversions: Iterable[StatedConversion], histories: Mapping[PositionKey, StoredHistory]
) -> Confirmations:
    """The `confirmed` observations a statement's conversions make (both keys of each), for
    conversions the syncs derived — and only those: the fold (app.domain.fold) reads a
    confirmation as "this derived conversion is a fact", never as a conversion of its own, so a
    stated pair the ledger did not derive (its two changes seen at different syncs, numbers off
    the ratio) is listed as not applied and changes nothing. `histories`: both keys of every
    conversion, as stored (app.db.repository.load_histories)."""
    observations: list[Observation] = []
    confirmed = known = 0
    notes: list[str] = []
    for stated in conversions:
        head = (
            f"{stated.where + ': ' if stated.where else ''}corporate action {stated.kind} "
            f"{stated.action} ({stated.description or '?'})"
        )
        derived = _derived(stated, histories)
        if derived is None:
            first, second = sorted(stated.con_ids)
            notes.append(
                f"{head}: the ledger derived no conversion between conId {first} and conId "
                f"{second} (the syncs did not see one vanish as the other appeared); not "
                "applied, nothing booked — import the statement again after a sync pairs them, "
                "or judge the MISSING key yourself"
            )
            continue
        quantities = {stated.removed[0]: stated.removed[1], stated.added[0]: stated.added[1]}
        removed, added = quantities[derived.old], quantities[derived.new]
        if not _quantities_agree(derived, removed, added):
            notes.append(
                f"{head}: states {removed} of conId {derived.old} → {added} of conId "
                f"{derived.new}, but the ledger converted {derived.held} into {derived.reported}"
                "; not applied (the conversion stays estimated)"
            )
            continue
        new_rows = [
            Observation(
                stated.account,
                con_id,
                ObservationKind.CONFIRMED,
                stated.at,
                quantity=quantity,
                note=f"statement: corporate action {stated.kind} {stated.action} "
                f"({stated.description or '?'})",
                paired_con_id=other,
            )
            for con_id, quantity, other in (
                (derived.old, removed, derived.new),
                (derived.new, added, derived.old),
            )
            if not _confirmed(histories.get((stated.account, con_id)), other)
        ]
        if new_rows:
            observations.extend(new_rows)
            confirmed += 1
        else:
            known += 1
    return Confirmations(tuple(observations), confirmed, known, tuple(notes))


def _derived(
    stated: StatedConversion, histories: Mapping[PositionKey, StoredHistory]
) -> _Derived | None:
    """The conversion the ledger derived between the action's two conIds (either way round:
    the signs alone do not say which is the old key of a short), or None."""
    for old, new in ((stated.removed[0], stated.added[0]), (stated.added[0], stated.removed[0])):
        history = histories.get((stated.account, old))
        arrived = histories.get((stated.account, new))
        if history is None or arrived is None:
            continue
        for ob in history.observations:
            if ob.vanished_into != new or ob.paired_quantity is None:
                continue
            closed = [
                life
                for life in history.lifecycles
                if life.close_reason is CloseReason.CONVERTED and life.closed_at == ob.at
            ]
            opened = [
                life
                for life in arrived.lifecycles
                if life.id is not None
                and (first := arrived.events.get(life.id))
                and first[0].kind is EventKind.CONVERTED
                # at the sync that paired the keys, or at the first sale of what it delivered
                # (IB's sale of a reverse split's fraction, stamped before that sync)
                and first[0].occurred_at <= ob.at
            ]
            if len(closed) != 1 or len(opened) != 1 or closed[0].id is None:
                continue
            events = history.events.get(closed[0].id, ())
            converting = [e for e in events if e.kind is EventKind.CONVERTED]
            if len(converting) != 1:
                continue
            return _Derived(old, new, converting[0].quantity_before, ob.paired_quantity)
    return None


def _quantities_agree(derived: _Derived, removed: Decimal, added: Decimal) -> bool:
    """The statement removes what the ledger held and adds what IB reported — or more by the
    fraction IB paid in cash (the new quantity's whole part was reported). It may remove less
    than the ledger held by less than one new unit's worth: IB sold that fraction on the old
    conId before the action (a FracShare trade the ledger gets with a statement; ib-edavki
    issue 121), and the fold books it as a sale once it has it."""
    if (added > 0) != (derived.held > 0) or (removed > 0) == (derived.held > 0):
        return False
    sold = abs(derived.held) - abs(removed)
    if sold < 0 or (sold > 0 and sold * abs(added) >= abs(removed)):
        return False
    return derived.reported in (added, added.to_integral_value(rounding=ROUND_DOWN))


def _confirmed(history: StoredHistory | None, other: int) -> bool:
    """Whether the key holds a confirmation pairing it with `other` already."""
    return history is not None and any(
        o.kind is ObservationKind.CONFIRMED and o.paired_con_id == other
        for o in history.observations
    )


@dataclass(frozen=True, slots=True)
class PnlChange:
    """Realized P&L of one currency over the keys an import re-derived, before and after."""

    currency: str
    before: Decimal
    after: Decimal
    estimated_before: Decimal
    estimated_after: Decimal

    @property
    def delta(self) -> Decimal:
        """How much the realized total moved."""
        return self.after - self.before


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What one import did (the CLI prints it; the window shows it)."""

    sources: tuple[str, ...]
    trades: int
    """Execution rows read (all statements, overlaps counted each time)."""
    new: int
    """Executions the ledger did not have."""
    known: int
    """Executions the ledger already had as they are."""
    completed: int
    """Stored executions the statement completed (commission, correction)."""
    accounts_added: tuple[str, ...] = ()
    keys: tuple[PositionKey, ...] = ()
    """(account, conId) keys re-derived."""
    lifecycles_changed: int = 0
    pnl: tuple[PnlChange, ...] = ()
    """Per currency, over the re-derived keys; never one figure of several currencies."""
    not_applied: tuple[str, ...] = ()
    """Statement rows read but not applied (the ledger keeps what the syncs derived)."""
    conversions_confirmed: int = 0
    """Conversions the syncs derived that the statement's corporate actions now confirm."""
    conversions_known: int = 0
    """Conversions the statement states that the ledger holds confirmed already."""

    @property
    def changed(self) -> bool:
        """False when the import added nothing (a re-import)."""
        return bool(self.new or self.completed or self.conversions_confirmed)


def pnl_changes(before: ByCurrency, after: ByCurrency) -> tuple[PnlChange, ...]:
    """Per-currency realized totals before and after (only currencies that moved)."""
    out = []
    for currency in sorted(set(before) | set(after)):
        old, new = before.get(currency), after.get(currency)
        change = PnlChange(
            currency,
            old.total if old else Decimal(0),
            new.total if new else Decimal(0),
            old.estimated if old else Decimal(0),
            new.estimated if new else Decimal(0),
        )
        if change.before != change.after or change.estimated_before != change.estimated_after:
            out.append(change)
    return tuple(out)


def with_contracts(fills: Iterable[Fill], contracts: Mapping[int, Contract]) -> tuple[Fill, ...]:
    """`fills` carrying the statement's full contract (the executions table keeps only conId and
    symbol: a key the ledger never held would otherwise be folded as a stock of multiplier 1)."""
    return tuple(
        replace(f, contract=contracts[f.contract.con_id]) if f.contract.con_id in contracts else f
        for f in fills
    )


def summary_lines(summary: ImportSummary) -> list[str]:
    """The import summary for people (the CLI prints it; the window shows it)."""
    lines = [
        f"Read          {summary.trades} trade(s) from {len(summary.sources)} statement(s)",
        f"Trades        {summary.new} new, {summary.known} already known, "
        f"{summary.completed} completed (commission or correction)",
    ]
    if summary.accounts_added:
        lines.append(f"Accounts      added {', '.join(summary.accounts_added)}")
    if summary.conversions_confirmed or summary.conversions_known:
        lines.append(
            f"Conversions   {summary.conversions_confirmed} confirmed by corporate actions, "
            f"{summary.conversions_known} already confirmed"
        )
    for note in summary.not_applied:
        lines.append(f"Not applied   {note}")
    if not summary.changed:
        lines.append("Ledger        unchanged (nothing new to apply)")
        return lines
    lines.append(
        f"Re-derived    {len(summary.keys)} position(s); {summary.lifecycles_changed} "
        "lifecycle(s) changed"
    )
    for p in summary.pnl:
        sign = "+" if p.delta >= 0 else ""
        lines.append(
            f"Realized P&L  {p.currency} {decimal_text(p.before)} → {decimal_text(p.after)} "
            f"({sign}{decimal_text(p.delta)}); estimated part {decimal_text(p.estimated_before)}"
            f" → {decimal_text(p.estimated_after)}"
        )
    return lines
