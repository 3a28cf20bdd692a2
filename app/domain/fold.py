"""fold(): one key's lifecycles, events and realized P&L, derived from its whole history.

DESIGN.md "Lifecycle and realized P&L". The history of an (account, conId) is its fills and its
observations (app.domain.history). The fold is pure and depends only on that history, so an input
that arrives late or changes — a commission report, an execution correction, a user's close —
is handled by folding the key again: the result always equals a from-scratch fold of the final
history, whatever order the inputs arrived in.

How the two kinds of facts meet. The broker's row is the truth for quantity; fills explain it.
Observations split the fills into segments: the fills up to an observation must take the booked
quantity to what the broker reported. What they do not explain (the residual) happened *before*
them — it is booked first: a position held before the app's first sync, a sale the app did not
see. Fills of a position held before the app first saw it therefore never open the other side,
and a position TWS reports with quantity 0 (closed today) is closed, not shorted.

Where an observation falls among the fills is not taken blindly from the clocks (IB's execution
time and this machine's sync time differ, and TWS may answer the executions request after a fill
whose position row it has not updated yet): among the fills within BOUNDARY_WINDOW of the
observation, the boundary that makes the quantities agree is taken, the nominal one first. A
fill the latest row does not show yet is *held*: booked after that row, never explained away by
an opposite residual "at market" (that booked P&L twice, once for the lag and once when the row
caught up).

Every realized amount carries a basis (`PnlBasis`): `exact` from fills with price and commission
against a known average (or IB's own per-fill realizedPNL where our average is not known);
`estimated` from a market, last-known or user price, or a commission not reported yet;
`unknown` with no price at all (the amount is None, never a guess).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from app.domain.conversions import conversion_ratio, delivered_agrees, ratio_text
from app.domain.decimals import decimal_text, derived
from app.domain.fast_init import fast_init
from app.domain.history import Observation, ObservationKind
from app.domain.plan import PlannedEvent
from app.domain.prices import PRICE_MAX_AGE, is_price
from app.domain.values import (
    ZERO,
    CloseReason,
    Contract,
    EventKind,
    Fill,
    Lifecycle,
    PnlBasis,
    PositionStatus,
    PriceSource,
    worse_basis,
)

BOUNDARY_WINDOW = timedelta(seconds=120)
"""How far an execution's time (IB's clock) may sit on the wrong side of an observation (this
machine's clock, or a position row that lags the executions answer) and still be moved across
it when that is what makes the quantities agree."""

CORRECTION_WINDOW = timedelta(hours=12)
"""How far apart a row and the next may be for the first to be read as transient (taken before a
correction of its fills took effect): corrections come within the trading day. Across a longer
gap — the app closed for a day — the next row agreeing with the fills alone is a coincidence of
trades the app never saw, not a correction."""

AVERAGE_TOLERANCE = Decimal("0.000001")
"""Relative difference between our average and IB's avgCost below which they are the same (IB
sends avgCost as a double)."""

BROKER_PNL_TOLERANCE = Decimal("0.01")
"""Our realized amount for a fill and IB's own realizedPNL for it agree within a cent (IB sends
a double); beyond it ours is not exact."""

SPLIT_TOLERANCE = Decimal("0.005")
"""A split's new average must be the old one divided by the ratio within 0.5 %."""

MAX_SPLIT_TERM = 100
"""Largest numerator / denominator of a plausible split ratio (1:100 reverse, 100:1 forward)."""

EXPIRING = frozenset({"OPT", "FOP", "WAR"})
"""Contracts that expire worthless when they vanish past expiry (closed at 0, exact)."""

UNEXPLAINED = "no fills seen; priced from IB's average cost"
HELD_BEFORE = "held before the fills the app saw; priced from IB's average cost"


@dataclass(frozen=True, slots=True)
class Carried:
    """What a conversion (app.domain.conversions) carries from the vanished key's lifecycle
    into the new key's: the holding, its cost basis and its opening date. Derived by folding
    the vanished key; handed to the new key's fold (KeyHistory.carried)."""

    from_con_id: int
    to_con_id: int
    at: datetime
    quantity: Decimal
    """The old key's quantity when it vanished."""
    average: Decimal
    """Our average per old unit (commissions in): the cost basis is quantity × average."""
    average_exact: bool
    opened_at: datetime
    entry_trade_id: str | None
    ratio: Fraction
    """New units per old unit (1/3 for a 1-for-3 reverse split)."""
    confirmed: bool
    """A statement's corporate action states it (an observation of kind CONFIRMED)."""


@dataclass(frozen=True, slots=True)
class KeyHistory:
    """Everything known about one key, in any order: fills (final versions) and observations."""

    account: str
    contract: Contract
    fills: tuple[Fill, ...] = ()
    observations: tuple[Observation, ...] = ()
    base: Lifecycle | None = None
    """The OPEN lifecycle to start from, when the history before it is not at hand (pure
    callers); its facts are then taken as given, and the fold books what follows."""
    carried: tuple[Carried, ...] = ()
    """Conversions into this key, from folding the keys that vanished into it (the caller
    folds those first: a key's fold sees only its own history)."""


@dataclass(frozen=True, slots=True)
class FoldedLifecycle:
    """One lifecycle the fold derived (id None) and its events, oldest first."""

    lifecycle: Lifecycle
    events: tuple[PlannedEvent, ...]


@dataclass(frozen=True, slots=True)
class Folded:
    """The fold of one key: its lifecycles in order (only the last may be OPEN)."""

    lifecycles: tuple[FoldedLifecycle, ...]
    held: tuple[str, ...] = ()
    """execIds booked after the latest broker row because that row did not show them yet."""
    converted: tuple[Carried, ...] = ()
    """Conversions out of this key the fold booked (to carry into the new keys' folds)."""


def fold(history: KeyHistory, *, calculate_realized_pnl: bool = True) -> Folded:
    """Derive the key's ledger from its history (pure; see the module docstring)."""
    book = _Book(history.account, history.contract, calculate_realized_pnl)
    if history.base is not None:
        book.resume(history.base)
    book.carried = {(c.from_con_id, c.at): c for c in history.carried}
    # A statement's confirmation is a fact about a conversion, not about the quantity held: it
    # takes no part in the segments (it only makes the conversion's figures exact).
    book.confirmed = {
        o.paired_con_id
        for o in history.observations
        if o.kind is ObservationKind.CONFIRMED and o.paired_con_id is not None
    }
    fills = sorted(history.fills, key=_fill_order)
    observations = sorted(
        (o for o in history.observations if o.kind is not ObservationKind.CONFIRMED),
        key=_observation_order,
    )
    held: tuple[str, ...] = ()
    for index, observation in enumerate(observations):
        following = observations[index + 1] if index + 1 < len(observations) else None
        later = [o for o in observations[index + 1 :] if _target(o) is not None]
        segment_end = _boundary(book, fills, observation, later)
        segment, fills = fills[:segment_end], fills[segment_end:]
        confirmed = None
        if following is not None and segment and following.at - observation.at <= CORRECTION_WINDOW:
            after = _target(following)
            if after is not None:
                upcoming = [f for f in fills if f.time <= following.at]
                confirmed = after - sum((f.signed_shares for f in upcoming), ZERO)
        following_row = book.observe(observation, segment, confirmed)
        if following_row:  # the row was taken before these were booked at IB: they follow it
            fills = [*following_row, *fills]
        held = tuple(f.exec_id for f in fills if f.time <= observation.at)
    book.book_fills(fills)
    return Folded(tuple(book.finish()), held, tuple(book.converted))


def _fill_order(fill: Fill) -> tuple[datetime, str]:
    return (fill.time, fill.exec_id)


def _observation_order(observation: Observation) -> tuple[datetime, int]:
    return (observation.at, observation.id if observation.id is not None else 1 << 62)


def _boundary(
    book: _Book, fills: Sequence[Fill], observation: Observation, later: list[Observation]
) -> int:
    """How many of `fills` (time-sorted) belong before `observation`.

    Nominally those at or before its time. IB stamps executions in whole seconds on its own
    clock, a sync is stamped on this machine's, and the position rows may lag the executions
    answer: so among the boundaries within BOUNDARY_WINDOW of the observation, the one that makes
    the quantities agree wins, the nearest to the nominal one first — agree with this
    observation when the booked quantity is known, else (the first observation: what was held
    before is unknown, so every boundary agrees with it) with the latest observation, which
    accounts for every fill since, else with the next one (a row that lagged the executions
    answer agrees with neither at once). No agreeing boundary: the nominal one, and a residual.
    """
    nominal = 0
    while nominal < len(fills) and _before(fills[nominal], observation):
        nominal += 1
    if observation.kind is ObservationKind.USER_CLOSE:
        return nominal
    low, high = observation.at - BOUNDARY_WINDOW, observation.at + BOUNDARY_WINDOW
    first = nominal
    while first > 0 and fills[first - 1].time >= low:
        first -= 1
    last = nominal
    while last < len(fills) and fills[last].time <= high:
        last += 1
    if later:  # a fill the next row was taken before cannot be in this one's
        cap = nominal
        while cap < last and _before(fills[cap], later[0]):
            cap += 1
        last = cap
    if first == last:
        return nominal
    candidates = sorted(range(first, last + 1), key=lambda k: (abs(k - nominal), k))
    if book.seen:
        target = _target(observation)
        if target is None:
            return nominal
        running = book.quantity + sum((f.signed_shares for f in fills[:first]), ZERO)
        sums = {}
        for k in range(first, last + 1):
            sums[k] = running
            if k < last:
                running += fills[k].signed_shares
        upto = len(fills)
        if later:
            upto = nominal
            while upto < len(fills) and _before(fills[upto], later[0]):
                upto += 1
        for k in candidates:
            if sums[k] != target:
                continue
            if k != nominal and (
                _book_contradicts(book, observation, fills[:k])
                or _closes_contradict(book.quantity, fills[:k])
                or _closes_contradict(target, fills[k:upto])
            ):
                # IB's average, or its realized P&L on a fill, says the row was not taken
                # there: trades the app never saw explain the quantities, not a lagging row.
                continue
            return k
        return nominal
    # The first observation: the boundary nearest the nominal one that agrees with the next
    # row or with the latest (which accounts for every fill since, unless days the app did not
    # see lie between — then the next row is the nearer evidence; a row lagging the executions
    # answer agrees with only one of them).
    reported = _target(observation)
    if reported is None or not later:
        return nominal
    ends = []
    for other in (later[0], later[-1]):
        end = 0
        while end < len(fills) and fills[end].time <= other.at:
            end += 1
        ends.append((_target(other), end))
    for k in candidates:
        for after, end in ends:
            if k > end or reported + sum((f.signed_shares for f in fills[k:end]), ZERO) != after:
                continue
            if k != nominal and _average_contradicts(book, observation, later[0], fills[k:]):
                break
            return k
    return nominal


def _book_contradicts(book: _Book, observation: Observation, fills: Sequence[Fill]) -> bool:
    """Whether IB's average in `observation` rules out that its row was taken after exactly
    `fills` on top of what the book holds: the quantities agree at more than one boundary when
    a row lags the executions answer *or* unseen trades came first, and the averages tell the two
    apart. Our average not exact, or IB's not reported: cannot tell (False)."""
    life = book.life
    theirs = _per_unit(observation.average_cost, book.multiplier)
    if theirs is None or observation.quantity in (None, ZERO):
        return False
    if life is None:
        carried = _carry(ZERO, ZERO, fills, book.multiplier)
    elif life.average is None or not life.average_exact:
        return False
    else:
        carried = _carry(life.quantity, life.average, fills, book.multiplier)
    return carried is not None and _differs(carried, theirs)


def _closes_contradict(start: Decimal, fills: Sequence[Fill]) -> bool:
    """Whether booking `fills` from `start` has a fill open or add that IB says closed
    something (its commission report carried a realized P&L): then unseen trades, not a lagging
    row, explain the quantities. A report without a figure says nothing (IB leaves it unset on
    openings, and tests and simulators may omit it)."""
    held = start
    for fill in fills:
        delta = fill.signed_shares
        closed = fill.realized_pnl is not None and fill.realized_pnl != 0
        if closed and (held == 0 or _sign(delta) == _sign(held)):
            return True
        held += delta
    return False


def _average_contradicts(
    book: _Book, observation: Observation, following: Observation, fills: Sequence[Fill]
) -> bool:
    """Whether IB's average at `following` rules out that `observation`'s row was taken before
    `fills` (a first observation moved off its nominal boundary): the row's quantity and average
    carried through the fills up to `following` must give IB's average there. Fills that cross
    zero, or averages not reported, cannot tell (False). Quantities alone match at many
    boundaries when fills net to zero (buy 5, sell 5); the averages tell them apart."""
    start = _target(observation)
    average = _per_unit(observation.average_cost, book.multiplier)
    expected = _per_unit(following.average_cost, book.multiplier)
    if start is None or start == 0 or average is None or expected is None:
        return False
    between = [f for f in fills if _before(f, following)]
    if start + sum((f.signed_shares for f in between), ZERO) != _target(following):
        return False  # the quantities disagree already: the averages cannot tell more
    carried = _carry(start, average, between, book.multiplier)
    return carried is not None and _differs(carried, expected)


def _before(fill: Fill, observation: Observation) -> bool:
    """Nominally, `fill` was in `observation`'s rows: stamped at or before it, and not first
    seen by the ledger after it (IB's whole-second stamps put a fill made just after a sync in
    that sync's second)."""
    return fill.time <= observation.at and (fill.seen_at is None or fill.seen_at <= observation.at)


def _only_reduces(held: Decimal, fills: Sequence[Fill]) -> bool:
    """Whether `fills`, from `held`, only sell part of it (a short: buy part of it back),
    never reaching zero or adding — IB's sale of a fraction around a conversion."""
    for fill in fills:
        delta = fill.signed_shares
        if held == 0 or _sign(delta) == _sign(held) or abs(delta) >= abs(held):
            return False
        held += delta
    return True


def _target(observation: Observation) -> Decimal | None:
    """The quantity an observation says the broker holds (None: it says nothing of it)."""
    if observation.kind is ObservationKind.REPORTED:
        return observation.quantity
    if observation.kind is ObservationKind.USER_CLOSE:
        return None
    return ZERO


# ---------------------------------------------------------------------------- the book
@dataclass(slots=True)
class _Life:
    """The lifecycle being built."""

    quantity: Decimal
    average: Decimal | None
    """Per unit, commissions included (for a short: average proceeds). None: not known."""
    average_exact: bool
    opened_at: datetime
    entry_trade_id: str | None
    events: list[PlannedEvent] = field(default_factory=list)
    realized: Decimal = ZERO
    estimated: Decimal = ZERO
    basis: PnlBasis | None = None
    average_cost: Decimal | None = None
    market_price: Decimal | None = None
    market_price_at: datetime | None = None
    """When the ledger saw `market_price` (a sync's time): older than PRICE_MAX_AGE, it is stale."""
    last_synced_at: datetime | None = None
    missing_since: datetime | None = None
    exit_trade_id: str | None = None
    ib_average: Decimal | None = None
    """IB's average per unit at the last report (an ADJUSTED needs it to have moved)."""
    merge_from: int = 0
    """Events before this index are final (an observation came after them): never merged."""
    conversion_pending: bool = False
    """Opened by a conversion no statement has confirmed yet: what it realizes rests on the
    carried cost basis, so it is estimated (DESIGN: every realized amount has a basis)."""


@fast_init
@dataclass(frozen=True, slots=True)
class _Move:
    """One quantity change to book: a fill, or a change no fill explains."""

    delta: Decimal
    price: Decimal | None
    time: datetime
    source: PriceSource | None
    commission: Decimal | None = ZERO
    """None: a fill whose commission report has not arrived (booked as 0, estimated)."""
    exec_id: str | None = None
    broker_realized_pnl: Decimal | None = None
    note: str = ""
    close_reason: CloseReason = CloseReason.BROKER
    price_exact: bool = True
    """False when the price is a guess (market, last known, user): what it realizes is estimated
    and what it opens has an estimated average."""

    @classmethod
    def of(cls, fill: Fill) -> _Move:
        return cls(
            delta=fill.signed_shares,
            price=fill.price,
            time=fill.time,
            source=PriceSource.FILLS,
            commission=fill.commission,
            exec_id=fill.exec_id,
            broker_realized_pnl=fill.realized_pnl,
        )


class _Book:
    """Books moves for one key in order; collects finished lifecycles."""

    def __init__(self, account: str, contract: Contract, pnl: bool) -> None:
        self.account = account
        self.contract = contract
        self.multiplier = contract.multiplier
        self.pnl = pnl
        self.life: _Life | None = None
        self.done: list[FoldedLifecycle] = []
        self.seen = False
        """True once anything was booked or observed: the booked quantity is then known."""
        self.carried: dict[tuple[int, datetime], Carried] = {}
        self.confirmed: set[int] = set()
        """conIds a statement's corporate action pairs this key with (conversions confirmed)."""
        self.converted: list[Carried] = []

    @property
    def quantity(self) -> Decimal:
        return self.life.quantity if self.life else ZERO

    def resume(self, base: Lifecycle) -> None:
        """Continue `base` (an OPEN lifecycle as stored) instead of folding what led to it."""
        self.life = _Life(
            quantity=base.quantity,
            average=base.average_price,
            average_exact=True,
            opened_at=base.opened_at,
            entry_trade_id=base.entry_trade_id,
            realized=base.realized_pnl,
            estimated=base.realized_pnl_estimated,
            basis=base.pnl_basis,
            average_cost=base.average_cost,
            market_price=base.current_price,
            market_price_at=base.last_synced_at,
            last_synced_at=base.last_synced_at,
            missing_since=base.missing_since,
            exit_trade_id=base.exit_trade_id,
        )
        self.seen = True

    # ------------------------------------------------------------------ observations
    def observe(
        self, observation: Observation, segment: list[Fill], confirmed: Decimal | None = None
    ) -> list[Fill]:
        """Book one observation and the fills that belong before it; the fills of `segment`
        its row was taken before after all (booked after it: the caller puts them first among
        the rest).

        `confirmed`: the quantity the following observation implies here (it, less the fills
        between the two). When the segment's fills alone reach it, a residual this observation
        would book is transient — a row taken before a correction of those fills took effect —
        and is not booked (a correction to an opening fill booked a fake reduction)."""
        # Events never merge across an observation: what a sync stored stays a prefix of what
        # a later fold derives, so it is kept instead of written again.
        if self.life is not None:
            self.life.merge_from = len(self.life.events)
        if observation.vanished_into is not None and self._convert_out(observation, segment):
            self.seen = True
            return []
        after: list[Fill] = []
        if observation.appeared_from is not None:
            # Then read as any report (market data, averages) with what is left of the segment.
            held_back = self._convert_in(observation, segment)
            if held_back:
                segment, after = [], held_back
        if observation.kind is ObservationKind.REPORTED:
            self._reported(observation, segment, confirmed)
        elif observation.kind is ObservationKind.USER_CLOSE:
            self.book_fills(segment)
            self._user_close(observation)
        else:
            self._absent(observation, segment)
        self.seen = True
        return after

    def _reported(
        self, ob: Observation, segment: list[Fill], confirmed: Decimal | None = None
    ) -> None:
        target = ob.quantity if ob.quantity is not None else ZERO
        ib_average = _per_unit(ob.average_cost, self.multiplier)
        life = self.life
        if life is not None and life.missing_since is not None:
            self._note(
                EventKind.REAPPEARED,
                ob.at,
                note=f"reported by the broker again (missing since {life.missing_since:%c})",
            )
            life.missing_since = None
        moved = sum((f.signed_shares for f in segment), ZERO)
        residual = target - self.quantity - moved
        if (
            residual != 0
            and segment
            and confirmed is not None
            and self.quantity + moved == confirmed
        ):
            residual = ZERO  # transient: the following row agrees with the fills alone
            self.book_fills(segment)
            if self.life is not None and self.life.events:  # the fills may have closed it
                self._flag(f"IB reported {_text(target)} here; the fills and the next report agree")
        elif residual != 0 and self._split(ob, segment, target, ib_average):
            pass
        elif residual != 0:
            self._residual(ob, segment, residual, target, ib_average)
            self.book_fills(segment)
        else:
            self.book_fills(segment)
        life = self.life
        if life is None:
            return
        if target == 0:  # an explicit zero closes whatever is left (rule 3)
            return
        life.last_synced_at = ob.at
        if is_price(ob.price):
            life.market_price, life.market_price_at = ob.price, ob.at
        if ib_average is None:
            return
        quiet = not segment and residual == 0
        previous, life.ib_average = life.ib_average, ib_average
        moved_at_ib = previous is None or _differs(previous, ib_average)
        if life.average is None:
            life.average, life.average_exact = ib_average, True
        elif _differs(life.average, ib_average) and quiet and moved_at_ib:
            # IB's average moved with the quantity unchanged and no fills: IB's is taken.
            if life.average_exact:
                why = "unseen trades or a basis adjustment; what unseen trades realized is unknown"
            else:
                why = "ours rests on estimates (a commission not reported yet, a guessed price)"
            self._note(
                EventKind.ADJUSTED,
                ob.at,
                price=ib_average,
                note=f"IB's average moved from {_text(life.average)} to {_text(ib_average)} "
                f"with the quantity unchanged and no fills: {why}",
                basis=PnlBasis.UNKNOWN if life.average_exact and self.pnl else None,
            )
            life.average, life.average_exact = ib_average, True
        elif _differs(life.average, ib_average):
            # Fills explain the change: ours stands, the difference is flagged (DESIGN: never
            # silently replaced).
            self._flag(f"IB's average is {_text(ib_average)}; ours {_text(life.average)}")
        life.average_cost = ob.average_cost

    def _residual(
        self,
        ob: Observation,
        segment: list[Fill],
        residual: Decimal,
        target: Decimal,
        ib_average: Decimal | None,
    ) -> None:
        """Book the change the segment's fills do not explain, before them."""
        held = self.quantity
        at = min([ob.at, *(f.time for f in segment[:1])])
        if held != 0 and _sign(residual) != _sign(held):
            # An unseen sale (or more): priced at the market, else the last price known.
            closing = -held if abs(residual) >= abs(held) else residual
            flips = abs(residual) > abs(held)
            exit_price, source = self._exit_price(ob)
            self._book(
                _Move(
                    closing,
                    exit_price,
                    at,
                    source,
                    note="quantity changed with no fills seen; exit priced from "
                    + _source_text(source),
                    close_reason=CloseReason.FLIP if flips else CloseReason.BROKER,
                    price_exact=False,
                )
            )
            residual -= closing
            if residual == 0:
                self._after_unseen_sale(target, ib_average, segment)
                return
            held = ZERO
        # An opening or an add no fill explains: priced so that, with the segment's fills, the
        # average comes out as IB's (IB's average is unchanged by sales, so it is unwound
        # through the fills back to before them).
        before = _unwind(target, ib_average, segment, self.multiplier)
        price: Decimal | None = None
        exact = before is not None
        if before is not None:
            if held == 0:
                price = before
            else:
                assert self.life is not None
                if self.life.average is None:
                    price, exact = before, False
                else:
                    whole = abs(held + residual) * before - abs(held) * self.life.average
                    implied = whole / abs(residual)
                    price = derived(implied) if implied > 0 else before
                    exact = implied > 0 and self.life.average_exact
        elif ib_average is not None and target != 0:
            price, exact = ib_average, False
        self._book(
            _Move(
                residual,
                price,
                at,
                None,
                note=HELD_BEFORE if segment and held == 0 else UNEXPLAINED,
                price_exact=exact,
            )
        )

    def _after_unseen_sale(
        self, target: Decimal, ib_average: Decimal | None, segment: list[Fill]
    ) -> None:
        """The average of what an unseen sale left. Unseen trades may have closed and reopened
        the position, so ours is exact only where IB's own average, unwound through the
        segment's fills, confirms it; IB's is taken where it says otherwise, and where IB gives
        none (flat again by the row) ours is no longer called exact — a later sale then books
        IB's own realizedPNL, or an estimate."""
        life = self.life
        if life is None or life.average is None:
            return
        before = _unwind(target, ib_average, segment, self.multiplier)
        if before is None:
            life.average_exact = False
        elif _differs(life.average, before):
            self._flag(
                f"IB's average after the unseen trades is {_text(before)}; ours was "
                f"{_text(life.average)}"
            )
            life.average, life.average_exact = before, True

    def _split(
        self,
        ob: Observation,
        segment: list[Fill],
        target: Decimal,
        ib_average: Decimal | None,
    ) -> bool:
        """Book a split or reverse split if that is what happened; False (nothing booked) if not.

        A split moves quantity and IB's average inversely by one plausible ratio; a sale never
        moves IB's average, so it is never read as a split. Tried with the split before the
        segment's fills (splits take effect at the open) and then after them.
        """
        life = self.life
        if life is None or life.average is None or ib_average is None or life.quantity == 0:
            return False
        moved = sum((f.signed_shares for f in segment), ZERO)
        ratio = _split_ratio(life.quantity, target - moved)
        if ratio is not None:
            scaled = life.average * ratio.denominator / ratio.numerator
            split = life.quantity * ratio.numerator / ratio.denominator
            path = _simulate(split, scaled, segment, self.multiplier)
            if path is not None and _close(path[1], ib_average, SPLIT_TOLERANCE):
                self._book_split(ob, ratio, target - moved)
                self.book_fills(segment)
                return True
        path = _simulate(life.quantity, life.average, segment, self.multiplier)
        if path is None:
            return False
        ratio = _split_by_average(path[0], target, path[1], ib_average)
        if ratio is None:
            return False
        self.book_fills(segment)
        self._book_split(ob, ratio, target)
        return True

    def _book_split(self, ob: Observation, ratio: Fraction, after: Decimal) -> None:
        life = self.life
        assert life is not None and life.average is not None
        before = life.quantity
        whole = before * Decimal(ratio.numerator) / Decimal(ratio.denominator)
        cash = abs(whole) - abs(after)
        note = f"split {ratio.numerator}:{ratio.denominator}: quantity {_text(before)} → "
        note += f"{_text(after)} with no fills; cost basis unchanged"
        if cash:
            note += f" ({_text(cash)} fractional unit(s) paid in cash, not booked)"
        life.average = derived(life.average * Decimal(ratio.denominator) / ratio.numerator)
        life.average_cost = None
        life.quantity = after
        self._note(
            EventKind.SPLIT, ob.at, before=before, after=after, price=life.average, note=note
        )

    def _convert_out(self, ob: Observation, segment: list[Fill]) -> bool:
        """Close the lifecycle as converted into `ob.paired_con_id` when the numbers say so
        (app.domain.conversions.conversion_ratio: the same rule the sync paired the keys by,
        now against the ledger's own state); False (nothing booked) otherwise — then the key
        is what any vanished key is (missing, or closed by mark_missing_as_closed).

        `segment`: fills the sync did not see (a statement's, added later) between the last
        report and the conversion. Sales only — IB sells a reverse split's fraction on the old
        conId before the action (a `FracShare` trade: ib-edavki issue 121) — they are booked
        first, as any sale, and what they leave must agree with the ratio; anything else is no
        conversion."""
        life = self.life
        new_con_id = ob.paired_con_id
        if life is None or life.quantity == 0 or life.missing_since is not None:
            return False
        if new_con_id is None or ob.paired_quantity is None:
            return False
        if not _only_reduces(life.quantity, segment):
            return False
        held = life.quantity + sum((f.signed_shares for f in segment), ZERO)
        # A sale leaves IB's average unchanged: the one it reported last still holds.
        old_average = life.ib_average if life.ib_average is not None else life.average
        new_average = _per_unit(ob.paired_average_cost, self.multiplier)
        if old_average is None or new_average is None:
            return False
        ratio = conversion_ratio(held, old_average, ob.paired_quantity, new_average)
        if ratio is None:
            return False
        self.book_fills(segment)
        life = self.life
        assert life is not None and life.quantity == held
        confirmed = new_con_id in self.confirmed
        average = life.average if life.average is not None else old_average
        exact = life.average is not None and life.average_exact
        self.converted.append(
            Carried(
                self.contract.con_id,
                new_con_id,
                ob.at,
                life.quantity,
                average,
                exact,
                life.opened_at,
                life.entry_trade_id,
                ratio,
                confirmed,
            )
        )
        # Nothing was sold: 0 realized. Its basis says how sure that is — a statement's action
        # makes it exact; until then a trade the app never saw could explain the same rows.
        basis = (PnlBasis.EXACT if confirmed else PnlBasis.ESTIMATED) if self.pnl else None
        note = (
            f"converted into conId {new_con_id} ({ratio_text(ratio)}): quantity "
            f"{_text(life.quantity)} → {_text(ob.paired_quantity)} there, no fills; nothing "
            f"sold, the cost basis ({_text(abs(life.quantity) * average * self.multiplier)}) "
            "and the opening date go on in the new lifecycle"
        )
        note += "; confirmed by a statement" if confirmed else "; estimated until a statement"
        note += "'s corporate action confirms it" if not confirmed else ""
        before = life.quantity
        life.quantity = ZERO
        life.events.append(
            PlannedEvent(
                EventKind.CONVERTED,
                ob.at,
                before,
                ZERO,
                price=average,
                realized_pnl=ZERO,
                note=note,
                pnl_basis=basis,
            )
        )
        life.basis = worse_basis(life.basis, basis)
        self._close(ob.at, CloseReason.CONVERTED)
        return True

    def _convert_in(self, ob: Observation, segment: list[Fill]) -> list[Fill]:
        """Open the lifecycle from the vanished key's (Carried): its cost basis at the ratio,
        its opening date (holding period) and, until a statement confirms the conversion,
        estimated realized amounts. Nothing is booked when the vanished key's fold booked no
        conversion, or the segment's fills do not fit one.

        `segment`: fills the sync did not see (a statement's) up to this row. IB sells the
        fraction a reverse split leaves on the new conId (a `FracShare` trade stamped at the
        action's time: ib-edavki issue 181), so sales of what the conversion delivered are
        booked after it, as any sale — before this row when the row shows them done (the
        delivered quantity is the row's plus what they sold), else after it (the row was taken
        before IB booked them: returned, for the caller to book after the row)."""
        carried = self.carried.get((ob.appeared_from or 0, ob.at))
        if carried is None or self.quantity != 0 or ob.quantity is None or ob.quantity == 0:
            return []
        delivered, at = ob.quantity, ob.at
        later: list[Fill] = []
        if segment:
            before = ob.quantity - sum((f.signed_shares for f in segment), ZERO)
            if _only_reduces(before, segment) and delivered_agrees(
                carried.quantity, carried.ratio, before
            ):
                delivered = before
            elif _only_reduces(ob.quantity, segment) and delivered_agrees(
                carried.quantity, carried.ratio, ob.quantity
            ):
                later = segment
            else:
                return []
            at = min(at, segment[0].time)  # it came no later than the sales it made possible
        ratio = carried.ratio
        average = derived(carried.average * ratio.denominator / ratio.numerator)
        confirmed = carried.confirmed or carried.from_con_id in self.confirmed
        self.life = _Life(
            quantity=delivered,
            average=average,
            average_exact=carried.average_exact,
            opened_at=carried.opened_at,
            entry_trade_id=carried.entry_trade_id,
            conversion_pending=not confirmed,
        )
        # IB's average is taken as the one it had: a difference from ours is flagged, not read
        # as an average that moved (an ADJUSTED event).
        self.life.ib_average = _per_unit(ob.average_cost, self.multiplier)
        whole = carried.quantity * ratio.numerator / ratio.denominator
        cash = abs(whole) - abs(delivered)
        note = (
            f"converted from conId {carried.from_con_id} ({ratio_text(ratio)}): quantity "
            f"{_text(carried.quantity)} there → {_text(delivered)}, no fills; cost basis and "
            f"opening date ({carried.opened_at:%Y-%m-%d}) carried over"
        )
        if cash > 0:
            note += f" ({_text(cash)} fractional unit(s) paid in cash, not booked)"
        note += "; confirmed by a statement" if confirmed else "; estimated until confirmed"
        self.life.events.append(
            PlannedEvent(EventKind.CONVERTED, at, ZERO, delivered, price=average, note=note)
        )
        self.seen = True
        return later

    def _absent(self, ob: Observation, segment: list[Fill]) -> None:
        """A complete snapshot did not report the key."""
        if not self.seen and segment:
            # Never held in the ledger and flat now: whatever the fills sold was held before.
            moved = sum((f.signed_shares for f in segment), ZERO)
            if moved != 0:
                self._residual(ob, segment, -moved, ZERO, None)
        self.book_fills(segment)
        life = self.life
        if life is None or life.quantity == 0:
            return  # nothing open, or fills netted it to zero (rule 2: fills explain it)
        expired = _expired_on(self.contract, ob.at)
        if expired is not None:
            self._expire(ob, expired)
        elif ob.kind is ObservationKind.ABSENT_CLOSE:
            price, source = self._exit_price(ob)
            self._book(
                _Move(
                    -life.quantity,
                    price,
                    ob.at,
                    source,
                    note="not reported by the broker; closed because mark_missing_as_closed is on",
                    close_reason=CloseReason.MISSING,
                    price_exact=False,
                )
            )
        elif life.missing_since is None:  # rule 2: one MISSING event, however many syncs follow
            self._note(
                EventKind.MISSING,
                ob.at,
                note="the broker no longer reports this position and no fills explain it",
            )
            life.missing_since = ob.at

    def _expire(self, ob: Observation, expiry: date) -> None:
        life = self.life
        assert life is not None
        if self.contract.sec_type in EXPIRING:
            move = _Move(
                -life.quantity,
                ZERO,
                ob.at,
                None,
                note=f"expired worthless on {expiry:%Y-%m-%d} (vanished past expiry, no fills)",
                close_reason=CloseReason.EXPIRED,
            )
        else:
            price, source = self._exit_price(ob)
            move = _Move(
                -life.quantity,
                price,
                ob.at,
                source,
                note=f"expired on {expiry:%Y-%m-%d}; settled at the last price known",
                close_reason=CloseReason.EXPIRED,
                price_exact=False,
            )
        self._book(move)

    def _user_close(self, ob: Observation) -> None:
        life = self.life
        if life is None or life.quantity == 0:
            return
        self._book(
            _Move(
                -life.quantity,
                ob.price,
                ob.at,
                PriceSource.MANUAL,
                note=ob.note,
                close_reason=CloseReason.MANUAL,
                price_exact=False,
            ),
            kind=EventKind.MARKED_CLOSED,
        )

    def _exit_price(self, ob: Observation) -> tuple[Decimal | None, PriceSource | None]:
        """Exit price when no fills explain a reduction: market at sync → last known → none.

        Only a price (app.domain.prices.is_price: never 0 or -1) seen at most PRICE_MAX_AGE
        before the exit: an absence carries the last price the ledger held, when fresh; a
        stale one is no price (issue 16, item 6), and what it would have priced is unknown."""
        if is_price(ob.price):
            if ob.kind is ObservationKind.REPORTED:
                return ob.price, PriceSource.MARKET
            return ob.price, PriceSource.LAST_KNOWN  # an absence: the ledger's last, when fresh
        life = self.life
        if (
            life is not None
            and is_price(life.market_price)
            and life.market_price_at is not None
            and ob.at - life.market_price_at <= PRICE_MAX_AGE
        ):
            return life.market_price, PriceSource.LAST_KNOWN
        return None, None

    # ------------------------------------------------------------------ fills
    def book_fills(self, fills: Iterable[Fill]) -> None:
        """Book fills in time order; fills of the same instant in an order consistent with the
        position path (see `_next_of_instant`)."""
        # The fills arrive in time order: each instant is the run of fills that share the
        # first one's time (an index walk: rescanning the rest per instant was quadratic).
        pending = list(fills)
        start, count = 0, len(pending)
        while start < count:
            instant = pending[start].time
            end = start + 1
            while end < count and pending[end].time == instant:
                end += 1
            if end == start + 1:  # alone in its instant (the usual case): nothing to order
                self._book(_Move.of(pending[start]))
                start = end
                continue
            group = pending[start:end]
            start = end
            while group:
                life = self.life
                average = life.average if life is not None else None
                fill = _next_of_instant(group, self.quantity, average, self.multiplier)
                group.remove(fill)
                self._book(_Move.of(fill))

    def _book(self, move: _Move, kind: EventKind | None = None) -> None:
        if move.delta == 0:
            return
        self.seen = True
        held = self.quantity
        if held == 0:
            self._start(move, move.delta, move.commission)
        elif _sign(move.delta) == _sign(held):
            self._increase(move)
        else:
            self._reduce(move, kind)

    def _start(self, move: _Move, quantity: Decimal, commission: Decimal | None) -> None:
        average: Decimal | None = None
        if move.price is not None and commission:
            per_unit = commission / (abs(quantity) * self.multiplier)
            average = derived(move.price + _sign(quantity) * per_unit)
        elif move.price is not None:
            average = move.price  # IB's own digits: the fast path for openings keeps them too
        self.life = _Life(
            quantity=quantity,
            average=average,
            average_exact=average is not None and move.price_exact and commission is not None,
            opened_at=move.time,
            entry_trade_id=move.exec_id,
        )
        self._event(EventKind.OPENED, move, ZERO, quantity, None, None)

    def _increase(self, move: _Move) -> None:
        life = self.life
        assert life is not None
        held, added = abs(life.quantity), abs(move.delta)
        if life.average is None or move.price is None:
            life.average = None
        else:
            cost = held * life.average + added * move.price
            cost += _sign(move.delta) * (move.commission or ZERO) / self.multiplier
            life.average = derived(cost / (held + added))
            life.average_exact = (
                life.average_exact and move.price_exact and move.commission is not None
            )
        life.average_cost = None  # IB's own figure comes back with the next row
        before = life.quantity
        life.quantity += move.delta
        self._event(EventKind.INCREASED, move, before, life.quantity, None, None)

    def _reduce(self, move: _Move, kind: EventKind | None) -> None:
        life = self.life
        assert life is not None
        held, moved = abs(life.quantity), abs(move.delta)
        closing = min(moved, held)
        # A fill through zero splits its commission pro rata between the two lifecycles.
        commission = move.commission
        closing_commission = None if commission is None else commission * closing / moved
        amount, basis = self._realized(move, closing, closing_commission)
        if life.conversion_pending and basis is PnlBasis.EXACT:
            basis = PnlBasis.ESTIMATED  # against a cost basis carried by an unconfirmed conversion
        before = life.quantity
        after = before + (-before if moved >= held else move.delta)
        life.quantity = after
        if amount is not None:
            life.realized += amount
            if basis is PnlBasis.ESTIMATED:
                life.estimated += amount
        life.basis = worse_basis(life.basis, basis)
        if after != 0:
            self._event(kind or EventKind.REDUCED, move, before, after, amount, basis)
            return
        self._event(kind or EventKind.CLOSED, move, before, ZERO, amount, basis)
        remainder = moved - closing
        life.exit_trade_id = move.exec_id or life.exit_trade_id
        self._close(move.time, CloseReason.FLIP if remainder > 0 else move.close_reason)
        if remainder > 0:
            rest = None if commission is None or closing_commission is None else commission
            if rest is not None and closing_commission is not None:
                rest -= closing_commission
            self._start(move, remainder * _sign(move.delta), rest)

    def _realized(
        self, move: _Move, closing: Decimal, commission: Decimal | None
    ) -> tuple[Decimal | None, PnlBasis | None]:
        """The realized amount of closing `closing` units with `move`, and its basis."""
        if not self.pnl:
            return ZERO, None
        life = self.life
        assert life is not None
        ours: Decimal | None = None
        if life.average is not None and move.price is not None:
            gross = (move.price - life.average) * closing * self.multiplier
            ours = derived(gross * _sign(life.quantity) - (commission or ZERO))
        if move.source is PriceSource.FILLS:
            if ours is not None and life.average_exact:
                theirs = move.broker_realized_pnl
                if theirs is not None and abs(ours - theirs) > BROKER_PNL_TOLERANCE:
                    # IB booked this fill against another average: trades the app never saw
                    # (a closed day that closed and reopened the position with the quantity
                    # netting out) can make ours wrong with every input known. Two sources
                    # disagree, so ours is not called exact (the event's note shows both).
                    return ours, PnlBasis.ESTIMATED
                return ours, PnlBasis.EXACT if commission is not None else PnlBasis.ESTIMATED
            if move.broker_realized_pnl is not None:
                # Our average is a guess (or unknown) but IB booked this fill against its own:
                # IB's figure is the fact.
                return move.broker_realized_pnl, PnlBasis.EXACT
        if ours is None:
            return None, PnlBasis.UNKNOWN
        exact = move.price_exact and life.average_exact and commission is not None
        return ours, PnlBasis.EXACT if exact else PnlBasis.ESTIMATED

    # ------------------------------------------------------------------ events
    def _event(
        self,
        kind: EventKind,
        move: _Move,
        before: Decimal,
        after: Decimal,
        realized: Decimal | None,
        basis: PnlBasis | None,
    ) -> None:
        assert self.life is not None
        note = move.note
        if move.source is PriceSource.FILLS and move.commission is None:
            note = "commission not reported yet"
        event = PlannedEvent(
            kind=kind,
            occurred_at=move.time,
            quantity_before=before,
            quantity_after=after,
            price=move.price,
            price_source=move.source,
            realized_pnl=realized,
            broker_realized_pnl=move.broker_realized_pnl if realized is not None else None,
            exec_ids=(move.exec_id,) if move.exec_id else (),
            note=note,
            pnl_basis=basis,
        )
        events = self.life.events
        if len(events) > self.life.merge_from and _can_merge(events[-1], event):
            events[-1] = _merge(events[-1], event)
        else:
            events.append(event)

    def _note(
        self,
        kind: EventKind,
        at: datetime,
        *,
        before: Decimal | None = None,
        after: Decimal | None = None,
        price: Decimal | None = None,
        note: str = "",
        basis: PnlBasis | None = None,
    ) -> None:
        """An event that moves no quantity (or a split): MISSING, REAPPEARED, ADJUSTED, SPLIT."""
        life = self.life
        assert life is not None
        held = life.quantity
        event = PlannedEvent(
            kind,
            at,
            held if before is None else before,
            held if after is None else after,
            price=price,
            note=note,
            pnl_basis=basis,
        )
        life.events.append(event)
        life.basis = worse_basis(life.basis, basis)

    def _flag(self, text: str) -> None:
        """Append `text` to the note of the lifecycle's last event."""
        life = self.life
        assert life is not None and life.events
        last = life.events[-1]
        if text in last.note:
            return  # said already (a report repeated while the same difference stands)
        life.events[-1] = replace(last, note=f"{last.note}; {text}" if last.note else text)

    # ------------------------------------------------------------------ lifecycles
    def _close(self, at: datetime, reason: CloseReason) -> None:
        life = self.life
        assert life is not None
        self.done.append(self._folded(life, PositionStatus.CLOSED, at, reason))
        self.life = None

    def _folded(
        self,
        life: _Life,
        status: PositionStatus,
        closed_at: datetime | None,
        reason: CloseReason | None,
    ) -> FoldedLifecycle:
        average = life.average if life.average is not None else ZERO
        open_ = status is PositionStatus.OPEN
        lifecycle = Lifecycle(
            id=None,
            account=self.account,
            contract=self.contract,
            quantity=life.quantity,
            average_price=average,
            status=status,
            opened_at=life.opened_at,
            average_cost=(life.average_cost if open_ and life.average_cost is not None else None)
            or derived(average * self.multiplier),
            current_price=life.market_price if open_ else None,
            realized_pnl=life.realized,
            closed_at=closed_at,
            close_reason=reason,
            last_synced_at=life.last_synced_at or life.opened_at,
            missing_since=life.missing_since if open_ else None,
            entry_trade_id=life.entry_trade_id,
            exit_trade_id=life.exit_trade_id,
            realized_pnl_estimated=life.estimated,
            pnl_basis=life.basis,
        )
        return FoldedLifecycle(lifecycle, tuple(life.events))

    def finish(self) -> list[FoldedLifecycle]:
        """Every lifecycle, oldest first; the last one OPEN if a position is held."""
        done = list(self.done)
        if self.life is not None:
            done.append(self._folded(self.life, PositionStatus.OPEN, None, None))
        return done


# ---------------------------------------------------------------------------- helpers
def _next_of_instant(
    group: list[Fill], held: Decimal, average: Decimal | None, multiplier: Decimal
) -> Fill:
    """Which of several fills of the same instant (IB times have whole seconds) to book next.

    execIds are not time order, so the position path decides: a fill IB gave a realizedPNL
    closed something and should reduce what is held; one without it opened or added and should
    not; a closing fill whose realized P&L against the average held now equals IB's figure
    is booked now (a close and a re-open in one second: closing first gives IB's number, adding
    first would not); and a fill that does not cross zero is preferred to one that does. Ties
    keep the execId order (deterministic, so every fold of the same history agrees).

    A match is within a cent and within a thousandth of the price move IB's figure implies:
    amounts of a few cents (small prices and quantities) would otherwise match whichever fill is
    tried, and a crossing fill could be booked before the one that truly came first.
    """

    def score(fill: Fill) -> tuple[int, int, int]:
        delta = fill.signed_shares
        reduces = held != 0 and _sign(delta) != _sign(held)
        closes = fill.realized_pnl is not None and fill.realized_pnl != 0
        consistent = closes == reduces if fill.realized_pnl is not None else not reduces
        crosses = reduces and abs(delta) > abs(held)
        matches = False
        if reduces and fill.realized_pnl is not None and average is not None:
            closing = min(abs(delta), abs(held))
            fee = (fill.commission or ZERO) * closing / abs(delta)
            ours = (fill.price - average) * closing * multiplier * _sign(held) - fee
            # Within a cent and a thousandth of the price move IB's figure implies (its amount
            # less the commission, which both sides share: at cents prices the commission is
            # most of the amount, and any fill would match).
            gross = abs(fill.realized_pnl + fee)
            tolerance = min(BROKER_PNL_TOLERANCE, max(gross / 1000, Decimal("0.000001")))
            matches = abs(ours - fill.realized_pnl) <= tolerance
        return (int(consistent), int(matches), int(not crosses))

    best = group[0]
    best_score = score(best)
    for fill in group[1:]:
        candidate = score(fill)
        if candidate > best_score:
            best, best_score = fill, candidate
    return best


def _unwind(
    quantity: Decimal, average: Decimal | None, fills: Sequence[Fill], multiplier: Decimal
) -> Decimal | None:
    """IB's average before `fills`, from the position and IB's average after them; None when
    it cannot be known (the fills crossed zero, or the position is flat now)."""
    if average is None or quantity == 0:
        return None
    if not fills:
        return average
    q, a = quantity, average
    for fill in reversed(fills):
        before = q - fill.signed_shares
        if before == 0 or _sign(before) != _sign(q):
            return None
        if abs(q) > abs(before):  # an add: take its cost out again (sales leave IB's average)
            added = abs(fill.signed_shares)
            cost = abs(q) * a - added * fill.price
            cost -= _sign(q) * (fill.commission or ZERO) / multiplier
            a = cost / abs(before)
            if a <= 0:
                return None
        q = before
    return derived(a)


def _split_ratio(before: Decimal, after: Decimal) -> Fraction | None:
    """after / before when it is a plausible split ratio (small whole terms, not 1)."""
    if before == 0 or after == 0 or _sign(before) != _sign(after) or before == after:
        return None
    ratio = Fraction(after) / Fraction(before)
    if ratio.numerator > MAX_SPLIT_TERM or ratio.denominator > MAX_SPLIT_TERM:
        return None
    return ratio


def _split_by_average(
    before: Decimal, after: Decimal, average: Decimal, ib_average: Decimal
) -> Fraction | None:
    """The split ratio IB's average moved by, when the quantity moved by it too — exactly, or
    (a reverse split) to the whole units with the fractional one paid in cash."""
    if before == 0 or after == 0 or _sign(before) != _sign(after) or ib_average == 0:
        return None
    moved = Fraction(average) / Fraction(ib_average)
    if moved <= 0:
        return None  # the averages have opposite signs: no ratio
    ratio = moved.limit_denominator(MAX_SPLIT_TERM)
    if ratio == 1 or ratio.numerator > MAX_SPLIT_TERM:
        return None
    if abs(ratio - moved) > ratio * Fraction(SPLIT_TOLERANCE):
        return None
    whole = Fraction(before) * ratio
    if whole == Fraction(after):
        return ratio
    if ratio < 1 and whole.denominator != 1 and Fraction(int(whole)) == Fraction(after) != 0:
        return ratio  # a reverse split that paid the fractional unit in cash
    return None


def _carry(
    quantity: Decimal, average: Decimal, fills: Sequence[Fill], multiplier: Decimal
) -> Decimal | None:
    """IB's average per unit after `fills` on a position (commissions in; a sale leaves it;
    through zero it restarts at the fill's price with the opening part's commission); None when
    flat at the end or a commission is not known."""
    q, a = quantity, average
    for fill in fills:
        d = fill.signed_shares
        if fill.commission is None:
            return None
        if q == 0 or _sign(d) == _sign(q):
            cost = abs(q) * a + abs(d) * fill.price + _sign(d) * fill.commission / multiplier
            q, a = q + d, cost / (abs(q) + abs(d))
        elif abs(d) <= abs(q):
            q += d
        else:
            rest = q + d
            opening = fill.commission * abs(rest) / abs(d)
            q, a = rest, fill.price + _sign(rest) * opening / (abs(rest) * multiplier)
    return a if q != 0 else None


def _simulate(
    quantity: Decimal, average: Decimal, fills: Sequence[Fill], multiplier: Decimal
) -> tuple[Decimal, Decimal] | None:
    """(quantity, average) after booking `fills` on a position; None if they cross zero."""
    q, a = quantity, average
    for fill in fills:
        d = fill.signed_shares
        if q != 0 and _sign(d) == _sign(q):
            commission = (fill.commission or ZERO) / multiplier
            a = (abs(q) * a + abs(d) * fill.price + _sign(d) * commission) / (abs(q) + abs(d))
        elif q == 0 or abs(d) >= abs(q):
            return None
        q += d
    return q, a


_EXPIRY = re.compile(r"^(\d{4})(\d{2})(\d{2})?")


def _expired_on(contract: Contract, at: datetime) -> date | None:
    """The expiry date when `contract` expires (options, warrants, futures) and `at` is past it."""
    if contract.sec_type not in EXPIRING and contract.sec_type not in ("FUT", "CONTFUT"):
        return None
    match = _EXPIRY.match(contract.expiry or "")
    if match is None:
        return None
    year, month, day = int(match[1]), int(match[2]), match[3]
    try:
        if day is not None:
            expiry = date(year, month, int(day))
        else:  # YYYYMM: the month's last day
            following = date(year + month // 12, month % 12 + 1, 1)
            expiry = following - timedelta(days=1)
    except ValueError:
        return None
    return expiry if at.date() > expiry else None


def _can_merge(last: PlannedEvent, new: PlannedEvent) -> bool:
    """Consecutive adds (or consecutive reductions) of one kind and basis read as one event."""
    return (
        last.kind is new.kind
        and last.kind in (EventKind.INCREASED, EventKind.REDUCED)
        and last.price_source is new.price_source
        and last.pnl_basis is new.pnl_basis
        and not last.note
        and not new.note
    )


def _merge(a: PlannedEvent, b: PlannedEvent) -> PlannedEvent:
    qa = abs(a.quantity_after - a.quantity_before)
    qb = abs(b.quantity_after - b.quantity_before)
    price = None
    if a.price is not None and b.price is not None and qa + qb > 0:
        price = derived((a.price * qa + b.price * qb) / (qa + qb))  # VWAP of the merged fills
    # IB's figure is comparable only when every merged fill carried one.
    broker = (
        a.broker_realized_pnl + b.broker_realized_pnl
        if a.broker_realized_pnl is not None and b.broker_realized_pnl is not None
        else None
    )
    # `a` with b's end: positional, not dataclasses.replace (several times slower; a fold of
    # 1,000 fills merges ~400 times).
    return PlannedEvent(
        a.kind, b.occurred_at, a.quantity_before, b.quantity_after, price, a.price_source,
        _add(a.realized_pnl, b.realized_pnl), broker, a.exec_ids + b.exec_ids, a.note,
        a.pnl_basis, a.realized_pnl_fifo, a.pnl_basis_fifo,
    )  # fmt: skip


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _per_unit(average_cost: Decimal | None, multiplier: Decimal) -> Decimal | None:
    if average_cost is None or not average_cost.is_finite() or average_cost == 0:
        return None  # TWS sends avgCost 0 for a position closed today: no average known
    # Negative is an average: a short's proceeds less commissions per unit can go below zero
    # (a $1 minimum commission on a few shares of a 10-cent stock).
    return average_cost / multiplier


def _differs(ours: Decimal, theirs: Decimal) -> bool:
    return not _close(ours, theirs, AVERAGE_TOLERANCE)


def _close(a: Decimal, b: Decimal, relative: Decimal) -> bool:
    return abs(a - b) <= max(abs(b) * relative, Decimal("0.0000005"))


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


def _text(value: Decimal) -> str:
    return decimal_text(derived(value))


def _source_text(source: PriceSource | None) -> str:
    if source is PriceSource.MARKET:
        return "the market"
    if source is PriceSource.LAST_KNOWN:
        return "the last known price"
    return (
        "nothing: no usable price (none, 0 or -1 from IB, or the last one older than "
        f"{PRICE_MAX_AGE.total_seconds() / 3600:g} h), the amount is unknown"
    )
