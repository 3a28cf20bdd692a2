"""The summary strip: open positions, missing, unrealized, realized today and in total, per
currency for the account filter's choice, and IB's NetLiq and cash — from the ledger, so the
same offline (with their age).

`summary_html()` is pure (tested without a window); `SummaryFeed` reads the ledger on the
database thread after every reload and filter change, one load at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QSizePolicy

from app.db.errors import DatabaseError
from app.db.reader import LedgerReader
from app.domain.account_values import AccountFigures, CurrencyFigures, Figure
from app.domain.money import BaseConversion, RealizedTotals
from app.domain.realized import basis_label
from app.domain.summary import Summary, day_start
from app.domain.values import CostBasis, Lifecycle
from app.sync.tasks import TaskGroup
from app.ui import formatting as fmt
from app.ui.palette import Colours

log = logging.getLogger(__name__)

SETTLE_S = 0.3

AGE_TICK_MS = 30_000
"""How often the strip's ages are redrawn without a reload (they read in minutes)."""
STALE_PART_S = 60
"""A figure this much older than the newest account value says its own time."""
TOOLTIP = (
    "Per currency: amounts in different currencies are never added. Unrealized is IB's figure "
    "at the last sync; realized today counts events since local midnight; ≈ marks the part "
    "resting on estimates (see the Realized column), ? amounts that could not be priced.\n"
    "Realized figures are average cost (as TWS) or FIFO lots (as IB's tax reporting), as the "
    "head line says (setting cost_basis).\n"
    "The base-currency line uses IB's own ExchangeRate values, with their time.\n"
    "NetLiq and cash are IB's account values as last reported (per currency: its ledger's "
    "NetLiquidationByCurrency and CashBalance; total: NetLiquidation and TotalCashValue in "
    "each account's base currency); a value IB stopped sending keeps its time."
)


def _amount(value: Decimal, colours: Colours) -> str:
    colour = colours.gain if value > 0 else colours.loss if value < 0 else None
    text = ("+" if value > 0 else "") + fmt.money(value)
    return f'<span style="color:{colour}">{text}</span>' if colour else text


def _realized(totals: RealizedTotals, colours: Colours) -> str:
    text = _amount(totals.total, colours)
    if totals.estimated:
        text += f" <i>(≈ {fmt.money(totals.estimated)} estimated)</i>"
    if totals.unknown_count:
        text += f" <i>+ {totals.unknown_count} ?</i>"
    return text


def _base_line(label: str, conversion: BaseConversion | None, colours: Colours) -> str | None:
    if conversion is None:
        return None
    if conversion.total is None:
        return f"{label}: <i>no base-currency figure — {escape(conversion.reason or '')}</i>"
    total = conversion.total
    figure = _realized(RealizedTotals(total.exact, total.estimated, total.unknown_count), colours)
    return f"{label} {figure} {escape(total.base_currency)}"


def _ago(at: datetime, now: datetime) -> str:
    seconds = (now - at).total_seconds()
    return "just now" if seconds < 60 else f"{fmt.age(seconds)} ago"


def _figure(f: Figure | None, newest: datetime, now: datetime, colours: Colours) -> str:
    if f is None:
        return "<i>unknown</i>"  # IB never sent it: no figure, never a zero
    text = fmt.money(f.amount)
    if f.amount < 0:
        text = f'<span style="color:{colours.loss}">{text}</span>'
    if (newest - f.at).total_seconds() > STALE_PART_S:
        text += f" <i>(of {fmt.local_time(f.at)}, {_ago(f.at, now)})</i>"
    return text


def _values_lines(
    values: AccountFigures, now: datetime, colours: Colours, *, name_accounts: bool
) -> list[str]:
    """NetLiq and cash: per currency, then the totals in each base currency; their age."""
    if values.empty or values.newest is None:
        return ["NetLiq, cash: <i>no account values from IB in the ledger yet</i>"]
    newest = values.newest
    head = f"IB account values as of {fmt.local_time(newest)}, {_ago(newest, now)}"

    def line(name: str, pick: Callable[[CurrencyFigures], Figure | None]) -> str:
        parts = [
            f"<b>{escape(c.currency)}</b> {_figure(pick(c), newest, now, colours)}"
            for c in values.by_currency
        ]
        totals = []
        for c in values.in_base:
            figure = pick(c)
            text = f"<b>{escape(c.currency)}</b> {_figure(figure, newest, now, colours)}"
            if name_accounts and figure is not None:
                # Whose totals: each is in its own base currency, so the reader sees why two
                # totals stand apart rather than one sum. One account is named; several are
                # counted (their names made the strip wrap at 1280 px; the account filter and
                # `status` name them).
                accounts = figure.accounts
                who = accounts[0] if len(accounts) == 1 else f"{len(accounts)} accounts"
                text += f" ({escape(who)})"
            totals.append(text)
        text = f"<b>{name}</b>: " + (" · ".join(parts) if parts else "<i>none by currency</i>")
        if totals:
            text += " — account totals in base currency: " + " · ".join(totals)
        return text

    lines = [
        line("NetLiq", lambda c: c.net_liquidation),
        line("Cash", lambda c: c.cash),
    ]
    lines[0] = f"{head} · {lines[0]}"
    if values.without:
        who = ", ".join(escape(a) for a in values.without)
        lines[-1] += f" <i>(nothing from IB yet for {who})</i>"
    return lines


def summary_html(
    summary: Summary,
    *,
    last_synced: datetime | None,
    colours: Colours,
    now: datetime | None = None,
) -> str:
    """The strip's rich text: a head line, one line per currency, a base-currency line, and IB's
    NetLiq and cash (`now` for their age)."""
    who = escape(summary.account) if summary.account else "All accounts"
    # The time, not an age: the strip is redrawn when the ledger changes, not every second
    # (the banner ticks the age).
    age = (
        f"as of the last sync, {fmt.local_time(last_synced)}"
        if last_synced is not None
        else "no complete sync yet"
    )
    # Average cost and FIFO lots differ for the same trades: the strip says which it sums.
    lines = [f"<b>{who}</b> · {age} · realized at <b>{basis_label(summary.cost_basis)}</b>"]
    if not summary.currencies:
        lines.append("no positions in the ledger")
    for c in summary.currencies:
        parts = [f"<b>{escape(c.currency or '?')}</b> {c.open_positions} open"]
        if c.missing:
            parts.append(
                f'<span style="color:{colours.loss}">⚠ {c.missing} missing at broker</span>'
            )
        if c.open_positions and c.unrealized_unknown == c.open_positions:
            unrealized = "unrealized <i>unknown</i>"  # no market data at all: not 0.00
        else:
            unrealized = f"unrealized {_amount(c.unrealized, colours)}"
        if c.unrealized_unknown:
            unrealized += f" <i>({c.unrealized_unknown} without a price)</i>"
        parts.append(unrealized)
        parts.append(f"realized today {_realized(c.realized_today, colours)}")
        parts.append(f"realized total {_realized(c.realized_total, colours)}")
        lines.append(" · ".join(parts))
    base = [
        line
        for line in (
            _base_line("unrealized", summary.unrealized_base, colours),
            _base_line("realized today", summary.realized_today_base, colours),
            _base_line("realized total", summary.realized_total_base, colours),
        )
        if line is not None
    ]
    if base:
        times = [
            b.total.rates_at
            for b in (
                summary.unrealized_base,
                summary.realized_today_base,
                summary.realized_total_base,
            )
            if b is not None and b.total is not None and b.total.rates_at is not None
        ]
        at = f" (IB rates of {fmt.local_time(min(times))})" if times else ""
        lines.append(f"In the base currency{at}: " + " · ".join(base))
    lines += _values_lines(
        summary.account_values,
        now or datetime.now(UTC),
        colours,
        name_accounts=summary.account is None,
    )
    return "<br>".join(lines)


class SummaryStrip(QLabel):
    """The strip widget (objectName `summaryStrip`)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("summaryStrip")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        self.setToolTip(TOOLTIP)
        self.setText("Reading the cached ledger…")
        self.summary: Summary | None = None


class SummaryFeed:
    """Keeps a SummaryStrip current: `changed()` after reloads and filter changes."""

    def __init__(
        self,
        strip: SummaryStrip,
        reader_of: Callable[[], LedgerReader],
        rows_of: Callable[[], tuple[list[Lifecycle], str | None, datetime | None]],
        colours_of: Callable[[], Colours],
        tasks: TaskGroup,
        *,
        cost_basis_of: Callable[[], CostBasis] = lambda: CostBasis.AVERAGE,
    ) -> None:
        self.strip = strip
        self.loads = 0
        """Completed loads (tests)."""
        self._reader_of = reader_of
        self._rows_of = rows_of
        self._colours_of = colours_of
        self._cost_basis_of = cost_basis_of
        self._tasks = tasks
        self._stale = False
        self._loading = False
        self.stopped = False
        """Set when the window stops: its ledger is closed, nothing more is read."""
        self._last_synced: datetime | None = None
        # The ages ("3 h ago") move without any reload: redraw from the figures held (no read).
        self._ages = QTimer(strip)
        self._ages.setInterval(AGE_TICK_MS)
        self._ages.timeout.connect(self.redraw)
        self._ages.start()

    def redraw(self) -> None:
        """Draw the figures held again (their ages moved on)."""
        summary = self.strip.summary
        if summary is None or self.stopped:
            return
        self.strip.setText(
            summary_html(summary, last_synced=self._last_synced, colours=self._colours_of())
        )

    def changed(self) -> None:
        """The ledger, the filter or the palette changed: load again (once per burst)."""
        if self.stopped:
            return
        self._stale = True
        if not self._loading:
            self._loading = True
            self._tasks.spawn(self._load(), "summary")

    async def _load(self) -> None:
        try:
            while self._stale:
                # A burst of changes (a reload's, then the differences') makes one load, after
                # the first paint and outside the sync that caused it: at 20,000 positions the
                # figures are tens of milliseconds of Python, which on the database thread
                # would compete with the window's repaints for the GIL.
                await asyncio.sleep(SETTLE_S)
                if self.stopped:
                    return
                self._stale = False
                lifecycles, account, last_synced = self._rows_of()
                now = datetime.now(UTC)
                since = day_start(now.astimezone()).astimezone(UTC)
                # Read and summed on the database thread (app.db.reader.summary), in one
                # snapshot: today's realizing events, IB's rates and account values.
                summary = await self._reader_of().summary(
                    lifecycles, account, since, self._cost_basis_of()
                )
                self.strip.summary = summary
                self._last_synced = last_synced
                self.redraw()
                self.loads += 1
        except DatabaseError as exc:
            log.warning("summary: could not read the ledger: %s", exc)
            self.strip.setText(f"<i>Summary unavailable: {escape(str(exc))}</i>")
        finally:
            self._loading = False
