"""LiveBook: what one TWS connection has reported so far, converted once, keyed by position.

One book per connection; a reconnect starts a new one, so nothing from before a drop can leak
into a snapshot. Within a connection, `generation` moves on every IB connectivity loss (1100)
and restore (1101/1102): data is "current" only when its end marker arrived for a request made
in the current generation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from app.broker.convert import (
    EXCHANGE_RATE_TAG,
    Mark,
    base_currency_named,
    exchange_rates,
    kept_account_value,
)
from app.broker.logs import mask_account
from app.domain.values import (
    AccountValue,
    BrokerPosition,
    BrokerSnapshot,
    ExchangeRate,
    Fill,
    PositionKey,
    SkippedRow,
)

logger = logging.getLogger(__name__)

# Unkeyed bad rows (no usable account/conId) are only reported, never block a key; keep a few.
_MAX_UNKEYED = 100


class LiveBook:
    """Positions, market data and bad rows of one connection, plus request bookkeeping."""

    def __init__(self) -> None:
        self.managed: tuple[str, ...] = ()
        self.managed_set: frozenset[str] = frozenset()  # the same, for membership per row
        self.generation = 0
        self.rows: dict[PositionKey, BrokerPosition] = {}
        self.skipped: dict[PositionKey, SkippedRow] = {}
        self.unkeyed: list[SkippedRow] = []
        self.marks: dict[str, dict[int, Mark]] = {}
        self.positions_pending: int | None = None  # generation of the request in flight
        self.positions_generation: int | None = None  # positionEnd came for this generation
        self.accounts_pending: dict[str, int] = {}
        # Whether a complete snapshot already used the latest answer: a refresh asks again only
        # then (an answer nothing used yet, like the connect's own request, is just as fresh).
        self.positions_served = False
        self.accounts_served: set[str] = set()
        self.accounts_generation: dict[str, int] = {}
        self.live_account: str | None = None  # the one reqAccountUpdates subscription
        self.executions_pending: set[int] = set()  # reqIds of reqExecutions in flight
        self.executions_request: int | None = None  # the latest reqExecutions sent
        self._cut: tuple[int, dict[PositionKey, BrokerPosition], dict[PositionKey, SkippedRow]]
        self._cut = (-1, {}, {})
        self._merged: dict[PositionKey, tuple[BrokerPosition, Mark, BrokerPosition]] = {}
        self.exec_keys: dict[str, PositionKey] = {}
        self.exec_skipped: dict[str, SkippedRow] = {}
        # IB's ExchangeRate account values (account → currency → (value text, received at)) and
        # each account's base currency: best-effort facts, never a condition of a snapshot.
        self.rate_values: dict[str, dict[str, tuple[str, datetime]]] = {}
        self.base_currency: dict[str, str] = {}
        # IB's NetLiq and cash account values, the latest per (account, tag, currency): facts
        # beside the ledger like the rates (a value IB stops sending keeps its last report).
        self.kept_values: dict[tuple[str, str, str], AccountValue] = {}

    # ------------------------------------------------------------------ connection
    def set_managed(self, accounts: Iterable[str]) -> None:
        """The accounts this TWS login manages (managedAccounts, message 15)."""
        self.managed = tuple(dict.fromkeys(a for a in accounts if a))
        self.managed_set = frozenset(self.managed)

    def invalidate(self) -> None:
        """IB connectivity lost or restored: everything must be requested again."""
        self.generation += 1

    # ------------------------------------------------------------------ positions
    def begin_positions(self) -> None:
        """A reqPositions went out: its answer replaces what we hold.

        Explicit zeros stay: TWS said the position is closed and nothing since said otherwise,
        so a fresh answer that no longer lists it must not turn that close into "missing".
        """
        self.positions_pending = self.generation
        self.rows = {key: row for key, row in self.rows.items() if row.quantity == 0}
        self.skipped.clear()

    def end_positions(self) -> None:
        """positionEnd arrived."""
        if self.positions_pending is not None:
            self.positions_generation = self.positions_pending
            self.positions_served = False
        self.positions_pending = None

    def abandon_positions(self) -> None:
        """Our positions request timed out: stop treating pushes as part of its answer."""
        self.positions_pending = None

    def positions_current(self) -> bool:
        """positionEnd came for a request made in this generation of this connection."""
        return self.positions_generation == self.generation

    def put_position(self, row: BrokerPosition) -> None:
        """A good position row; it carries the latest market data we hold for its key."""
        key = row.key
        marks = self.marks.get(key[0])
        mark = marks.get(key[1]) if marks is not None else None
        if mark is None:
            self.rows[key] = row
        else:
            last = self._merged.get(key)  # _merge's shortcut, inline: every row of a resync
            if last is not None and last[1] is mark and last[0] is row:
                self.rows[key] = last[2]
            else:
                self.rows[key] = self._merge(key, row, mark)
        if self.skipped:
            self.skipped.pop(key, None)

    def skip(self, key: PositionKey | None, reason: str) -> None:
        """A bad position row: its key stays blocked until a good row for it arrives."""
        if key is None:
            self.unkeyed.append(SkippedRow(None, reason))
            del self.unkeyed[:-_MAX_UNKEYED]
            logger.warning("skipped a position row without a usable key: %s", reason)
            return
        self.skipped[key] = SkippedRow(key, reason)
        self.rows.pop(key, None)
        logger.warning("skipped position row %s/%s: %s", mask_account(key[0]), key[1], reason)

    # ------------------------------------------------------------------ account data
    def begin_account(self, account: str) -> None:
        """reqAccountUpdates(subscribe, account) went out: it replaces the one subscription."""
        self.accounts_pending[account] = self.generation
        self.live_account = account
        # Fresh market data replaces this account's; rows keep the last known until it comes.
        self.marks[account] = {}

    def end_account(self, account: str) -> None:
        """accountDownloadEnd for `account` arrived."""
        started = self.accounts_pending.pop(account, None)
        if started is not None:
            self.accounts_generation[account] = started
            self.accounts_served.discard(account)

    def abandon_account(self, account: str) -> None:
        self.accounts_pending.pop(account, None)

    def account_current(self, account: str, *, live_only: bool) -> bool:
        """Its download ended in this generation (and, if `live_only`, it is still subscribed:
        only the subscribed account's market data keeps moving)."""
        if self.accounts_generation.get(account) != self.generation:
            return False
        return not live_only or self.live_account == account

    def put_account_value(self, account: str, tag: str, value: str, currency: str) -> None:
        """An updateAccountValue row: keeps the base currency, the `ExchangeRate` values and
        the NetLiq and cash values."""
        if tag == EXCHANGE_RATE_TAG:
            self.rate_values.setdefault(account, {})[currency] = (value, datetime.now(UTC))
            return
        if (base := base_currency_named(tag, currency)) is not None:
            self.base_currency[account] = base
        kept = kept_account_value(tag, value)
        if kept is not None:
            name, text = kept
            at = datetime.now(UTC)
            self.kept_values[(account, name, currency)] = AccountValue(
                account, name, currency, text, at
            )

    def account_values(self, accounts: Iterable[str]) -> tuple[AccountValue, ...]:
        """The latest NetLiq and cash values of these accounts, by account, tag and currency."""
        wanted = frozenset(accounts)
        return tuple(v for k, v in sorted(self.kept_values.items()) if k[0] in wanted)

    def exchange_rates(self, accounts: Iterable[str]) -> tuple[ExchangeRate, ...]:
        """The latest rates of these accounts (those whose base currency is known)."""
        rates: list[ExchangeRate] = []
        for account in accounts:
            values = self.rate_values.get(account)
            if values:
                rates += exchange_rates(account, self.base_currency.get(account), values)
        return tuple(rates)

    def put_mark(self, key: PositionKey, quantity_is_zero: bool, mark: Mark) -> None:
        """Market data of a portfolio row, merged into the position row at once: rows are
        kept ready to hand out, so a snapshot of 20,000 positions is a filter, not a rebuild."""
        marks = self.marks.get(key[0])
        if marks is None:
            marks = self.marks[key[0]] = {}
        if quantity_is_zero:
            marks.pop(key[1], None)
            return
        marks[key[1]] = mark
        row = self.rows.get(key)
        if row is not None:
            last = self._merged.get(key)  # _merge's shortcut, inline: every row of a resync
            if last is None or last[1] is not mark or last[2] is not row:
                self.rows[key] = self._merge(key, row, mark)

    def _merge(self, key: PositionKey, row: BrokerPosition, mark: Mark) -> BrokerPosition:
        """`row` with `mark`'s market data; the last merge of each key is reused when its inputs
        are the very same objects (the session hands out the same objects for unchanged rows,
        so a full resync of an unchanged book builds nothing new)."""
        last = self._merged.get(key)
        if last is not None:
            if last[1] is mark and (last[0] is row or last[2] is row):
                return last[2]  # merging `mark` into its own result changes nothing
            if last[2] is row:
                # New market data for a merged row: merge from the row as decoded (the same
                # fields but the market data), so the next resync's rows find it here.
                row = last[0]
        merged = _with_mark(row, mark)
        self._merged[key] = (row, mark, merged)
        return merged

    # ------------------------------------------------------------------ executions
    def end_executions(self, req_id: int) -> None:
        """execDetailsEnd for `req_id`: the rows as of this moment go with that answer.

        A fill just after TWS answered reaches the position rows (its pushes follow the
        answer) but not the answer; pairing the answer with those later rows would read the
        fill's quantity as a change no fill explains. The next snapshot brings both.
        """
        self.executions_pending.discard(req_id)
        if req_id == self.executions_request:
            self._cut = (req_id, dict(self.rows), dict(self.skipped))

    def skip_execution(self, exec_id: str, key: PositionKey | None, reason: str) -> None:
        row = SkippedRow(key, f"execution {exec_id}: {reason}")
        if exec_id:
            self.exec_skipped[exec_id] = row
        else:
            self.unkeyed.append(row)
            del self.unkeyed[:-_MAX_UNKEYED]
        where = f"{mask_account(key[0])}/{key[1]}" if key else "?"
        logger.warning("skipped execution row %s (%s): %s", exec_id or "?", where, reason)

    # ------------------------------------------------------------------ snapshots
    def served(self, accounts: Iterable[str]) -> None:
        """A complete snapshot used the positions and these accounts' data."""
        self.positions_served = True
        self.accounts_served.update(accounts)

    def assemble(
        self,
        accounts: tuple[str, ...],
        scope: frozenset[PositionKey] | None,
        fills: Iterable[Fill],
        fill_skips: Iterable[SkippedRow],
    ) -> BrokerSnapshot:
        """A snapshot of `accounts` (limited to `scope`) from what this book holds now."""
        wanted = frozenset(accounts)
        rows, bad_rows = self.rows, self.skipped
        if self.executions_request is not None and self._cut[0] == self.executions_request:
            _, rows, bad_rows = self._cut  # as at the end of the executions answer
        self._cut = (-1, {}, {})

        def included(key: PositionKey | None) -> bool:
            if key is None:
                return scope is None
            return key[0] in wanted and (scope is None or key in scope)

        if scope is None:
            positions = [row for key, row in rows.items() if key[0] in wanted]
        else:  # a selective sync touches its own keys only, however many rows we hold
            positions = [
                row for key in sorted(scope) if key[0] in wanted and (row := rows.get(key))
            ]

        managed = frozenset(self.managed)

        def reported(key: PositionKey | None) -> bool:
            # A row of an account this login does not manage is reported (it is a bad row),
            # a row of a managed account outside the `account` limit is simply not ours.
            if key is not None and key[0] not in managed:
                return scope is None
            return included(key)

        skipped = [row for key, row in bad_rows.items() if reported(key)]
        skipped += [row for row in self.exec_skipped.values() if reported(row.key)]
        skipped += [row for row in fill_skips if reported(row.key)]
        if scope is None:
            skipped += self.unkeyed
            self.unkeyed = []  # reported once; they block nothing
        return BrokerSnapshot(
            taken_at=datetime.now(UTC),
            accounts=wanted,
            positions=tuple(positions),
            fills=tuple(f for f in fills if included(f.key)),
            skipped=tuple(skipped),
            scope=scope,
            exchange_rates=self.exchange_rates(accounts),
            account_values=self.account_values(accounts),
        )


def _with_mark(row: BrokerPosition, mark: Mark) -> BrokerPosition:
    # Positional (the fields' order): one per portfolio row of every full sync.
    return BrokerPosition(
        row.account, row.contract, row.quantity, row.average_cost,
        mark.market_price, mark.market_value, mark.unrealized_pnl,
    )  # fmt: skip
