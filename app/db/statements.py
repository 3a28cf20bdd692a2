"""The one write door for IB statements: merge a statement's fills into the ledger's history.

It runs like a sync's transaction (app.db.store) and like Mark closed (app.db.manual): the
accounts' locks first (PostgreSQL; on SQLite the transaction is BEGIN IMMEDIATE), then the facts
are stored — executions the ledger never saw, and what a statement completes of those it has
(a commission report that never arrived, a later correction), and a `confirmed` observation on
both keys of each conversion the syncs derived that the statement's corporate actions state
(app.domain.statements.confirmations) — and every key they touch is folded again from its whole
stored history (app.domain.reconcile.refold), so the estimates the ledger had to make are
replaced by what the statement says. All or nothing: one transaction for the whole import.
Nothing new (a re-import) writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, delete, update
from sqlalchemy.orm import Session

from app.db import concurrency, rates
from app.db.repository import queries, writes
from app.db.tables import AccountRow, ExecutionRow
from app.domain.history import Observation, StoredHistory
from app.domain.money import totals_from_lifecycles
from app.domain.plan import ReconcileOptions
from app.domain.reconcile import refold
from app.domain.statements import (
    Confirmations,
    ImportSummary,
    Statement,
    confirmations,
    pnl_changes,
    sort_statement_fills,
    with_contracts,
)
from app.domain.values import BrokerSnapshot, Fill, PositionKey

A = cast(Table, AccountRow.__table__)
X = cast(Table, ExecutionRow.__table__)


def import_statement(
    session: Session, statement: Statement, options: ReconcileOptions | None = None
) -> ImportSummary:
    """Store `statement`'s facts and re-derive every key they touch; what it did."""
    options = options or ReconcileOptions()
    codes = set(statement.accounts) | {f.account for f in statement.fills}
    # A conversion's account is locked, never created: one the ledger does not know derived
    # no conversion to confirm.
    concurrency.lock_accounts(session, codes | {c.account for c in statement.conversions})
    before_accounts = set(writes.account_ids(session, codes, create=False))
    ids = writes.account_ids(session, codes, create=True)
    added = tuple(sorted(set(ids) - before_accounts))
    _set_base_currencies(session, statement, ids)

    # The ledger's latest version of each execution the statement names (by base execId).
    probe = BrokerSnapshot(datetime.now(UTC), frozenset(), fills=statement.fills)
    stored = queries.known_fills(session, probe)
    merged = sort_statement_fills(statement.fills, stored)
    confirming = Confirmations()
    if statement.conversions:
        pairs = {(c.account, con_id) for c in statement.conversions for con_id in c.con_ids}
        confirming = confirmations(
            statement.conversions, queries.load_histories(session, sorted(pairs))
        )
    summary = ImportSummary(
        sources=statement.sources,
        trades=statement.trades,
        new=len(merged.new),
        known=merged.known,
        completed=len(merged.completed),
        accounts_added=added,
        not_applied=statement.not_applied + confirming.not_applied,
        conversions_confirmed=confirming.confirmed,
        conversions_known=confirming.known,
    )
    # Rates are facts of their own: the newest per (account, currency) is kept (app.db.rates).
    rates.store_rates(session, statement.rates)
    if not merged.new and not merged.completed and not confirming.observations:
        return summary

    keys = sorted(
        {f.key for f in merged.new}
        | {f.key for pair in merged.completed for f in pair}  # a correction may move a fill
        | {o.key for o in confirming.observations}
    )
    # Read before writing: the statement's own fills (tens of thousands) are then added in
    # memory, not read back.
    stored_histories = queries.load_histories(session, keys)
    for stored_fill, _ in merged.completed:
        session.execute(delete(X).where(X.c.exec_id == stored_fill.exec_id))
    written = [*merged.new, *(fill for _, fill in merged.completed)]
    writes.insert_fills(session, written, ids)
    for observation in confirming.observations:
        writes.record_observation(session, observation)

    before = totals_from_lifecycles(
        life for h in stored_histories.values() for life in h.lifecycles
    )
    histories = _with_statement(stored_histories, merged.new, merged.completed, statement)
    histories = _with_confirmations(histories, confirming.observations)
    changes, deleted = refold(
        histories, options, lambda more: queries.load_histories(session, more)
    )
    writes.apply_refold(session, changes, deleted)
    after = totals_from_lifecycles(queries.lifecycles_for(session, keys))
    return replace(
        summary,
        keys=tuple(keys),
        lifecycles_changed=len(changes) + len(deleted),
        pnl=pnl_changes(before, after),
    )


def _with_statement(
    stored: dict[PositionKey, StoredHistory],
    new: Sequence[Fill],
    completed: Sequence[tuple[Fill, Fill]],
    statement: Statement,
) -> dict[PositionKey, StoredHistory]:
    """Each key's stored history with the statement's fills in it (as load_histories would read
    it after the writes: the latest version of each execution)."""
    replaced = {old.exec_id for old, _ in completed}
    added: dict[PositionKey, list[Fill]] = {}
    for fill in [*new, *(fill for _, fill in completed)]:
        added.setdefault(fill.key, []).append(fill)
    out = {}
    for key, history in stored.items():
        fills = [f for f in history.fills if f.exec_id not in replaced]
        fills.extend(added.get(key, ()))
        if not history.lifecycles:
            # A key the ledger never held: its contract is the statement's (the executions
            # table keeps conId and symbol only, and a fold takes the contract from them).
            fills = list(with_contracts(fills, statement.contracts))
        # The stored events were folded from the fills as read: a re-fold keeps a lifecycle's
        # FIFO figures only while the fills it names are those (StoredHistory.folded_from).
        out[key] = replace(history, fills=tuple(fills), folded_from=history.fills)
    return out


def _with_confirmations(
    histories: dict[PositionKey, StoredHistory], observations: Sequence[Observation]
) -> dict[PositionKey, StoredHistory]:
    """Each key's history with the statement's confirmations in it (as stored just now)."""
    out = dict(histories)
    for observation in observations:
        history = out[observation.key]
        out[observation.key] = replace(history, observations=(*history.observations, observation))
    return out


def _set_base_currencies(session: Session, statement: Statement, ids: dict[str, int]) -> None:
    """An account's base currency, where the statement names it and the ledger has none."""
    for code, currency in sorted(statement.base_currencies.items()):
        account_id = ids.get(code)
        if account_id is None:
            continue
        session.execute(
            update(A)
            .where(A.c.id == account_id, A.c.base_currency.is_(None))
            .values(base_currency=currency)
        )
