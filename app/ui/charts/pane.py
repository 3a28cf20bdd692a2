"""The Charts tab's widgets: the daily realized P&L chart beside the selected lifecycle's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from app.domain.realized import basis_label
from app.domain.series import DailyRealized, LifecyclePath, RealizedByDay
from app.domain.values import CostBasis, Lifecycle
from app.ui import formatting as fmt
from app.ui.charts.pnl_chart import DailyPnlChart
from app.ui.charts.position_chart import PositionChart


def _titled(title: QLabel, chart: QWidget, picker: QWidget | None = None) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    if picker is None:
        layout.addWidget(title)
    else:
        row = QHBoxLayout()
        row.addWidget(title, 1)
        row.addWidget(picker)
        layout.addLayout(row)
    layout.addWidget(chart, 1)
    return box


def realized_caption(
    series: RealizedByDay, others: Sequence[str] = (), cost_basis: CostBasis = CostBasis.AVERAGE
) -> str:
    """The daily chart's title: whose P&L, in which figure (average cost or FIFO lots: they
    differ for the same trades), in which currency, over how many days, the total with its
    estimated part, and the other currencies (each charted apart, never added)."""
    who = series.account or "all accounts"
    also = f" · also realized in {', '.join(others)} (pick the currency)" if others else ""
    head = f"<b>Realized P&amp;L per day, {basis_label(cost_basis)}</b>"
    if not series.days:
        return f"{head} — {who}{also}"
    days = len(series.days)
    currency = f" {series.currency}" if series.currency else ""
    first, last = series.days[0].day, series.days[-1].day
    estimated = ""
    if series.estimated:
        estimated = f" (<i>estimated {fmt.money(series.estimated)}</i>, hatched)"
    if series.unknown:
        estimated += f" · <i>{series.unknown} unpriced</i>"
    return (
        f"{head} — {who} · {days} trading day"
        f"{'s' if days != 1 else ''}, {first:%d %b %Y} – {last:%d %b %Y} · total "
        f"<b>{fmt.money(series.total)}</b>{currency}{estimated}{also}"
    )


def position_caption(position: Lifecycle | None) -> str:
    """The lifecycle chart's title (its realized figure is the lifecycle's own, average cost,
    whatever the setting `cost_basis`: said, so it is not read as the FIFO figure)."""
    if position is None:
        return "<b>Selected position</b>"
    contract = position.contract
    span = f"opened {fmt.local_time(position.opened_at)}"
    if position.closed_at is not None:
        span += f", closed {fmt.local_time(position.closed_at)}"
    return (
        f"<b>{contract.local_symbol or contract.symbol}</b> in {position.account} — "
        f"{position.status.value.lower()}, {span} · realized "
        f"{fmt.money(position.realized_pnl)} {contract.currency} at average cost"
    )


class ChartsPane(QWidget):
    """The Charts tab; `app.ui.charts.feed.ChartsFeed` fills it."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("chartsPane")
        self.pnl_chart = DailyPnlChart()
        self.position_chart = PositionChart()
        self.pnl_title = QLabel(realized_caption(RealizedByDay()))
        self.pnl_title.setObjectName("pnlTitle")
        self.daily = DailyRealized()
        # One currency at a time: a daily series never adds currencies.
        self.pnl_currency = QComboBox()
        self.pnl_currency.setObjectName("pnlCurrency")
        self.pnl_currency.setToolTip(
            "Realized P&L is charted per currency: amounts in different currencies are never added."
        )
        self.pnl_currency.setEnabled(False)
        self.pnl_currency.currentTextChanged.connect(self.on_pnl_currency_current_text_changed)
        self.position_title = QLabel(position_caption(None))
        self.position_title.setObjectName("positionTitle")
        for title in (self.pnl_title, self.position_title):
            title.setTextFormat(Qt.TextFormat.RichText)
            title.setWordWrap(True)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setObjectName("chartsSplitter")
        self.split.addWidget(_titled(self.pnl_title, self.pnl_chart, self.pnl_currency))
        self.split.addWidget(_titled(self.position_title, self.position_chart))
        self.split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.split)

    def show_realized(self, daily: DailyRealized) -> None:
        """The daily realized P&L of one account (or all): the picked currency's series (kept
        across reloads while it still realized something; else the first currency)."""
        self.daily = daily
        currencies = list(daily.currencies)
        keep = self.pnl_currency.currentText()
        picker = self.pnl_currency
        picker.blockSignals(True)  # one redraw below, not one per item
        try:
            picker.clear()
            picker.addItems(currencies)
            if keep in currencies:
                picker.setCurrentText(keep)
        finally:
            picker.blockSignals(False)
        picker.setEnabled(len(currencies) > 1)
        self._show_currency(picker.currentText())

    def on_pnl_currency_current_text_changed(self, currency: str) -> None:
        """The user picked another currency."""
        self._show_currency(currency)

    def _show_currency(self, currency: str) -> None:
        series = self.daily.series(currency)
        others = [c for c in self.daily.currencies if c != currency]
        self.pnl_title.setText(realized_caption(series, others, self.daily.cost_basis))
        self.pnl_chart.set_series(series, self.daily.cost_basis)

    def show_position(self, position: Lifecycle | None, path: LifecyclePath | None) -> None:
        """One lifecycle's path (None: nothing selected)."""
        self.position_title.setText(position_caption(position))
        self.position_chart.set_path(path)

    def show_problem(self, text: str) -> None:
        """The daily series could not be read (the charts keep what they showed)."""
        self.pnl_title.setText(f"<b>Realized P&amp;L per day</b> — could not read: {text}")
