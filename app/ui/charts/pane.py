"""The Charts tab's widgets: the daily realized P&L chart beside the selected lifecycle's."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from app.domain.series import LifecyclePath, RealizedByDay
from app.domain.values import Lifecycle
from app.ui import formatting as fmt
from app.ui.charts.pnl_chart import DailyPnlChart
from app.ui.charts.position_chart import PositionChart


def _titled(title: QLabel, chart: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(title)
    layout.addWidget(chart, 1)
    return box


def realized_caption(series: RealizedByDay) -> str:
    """The daily chart's title: whose P&L, over how many days, the total, and the currency."""
    who = series.account or "all accounts"
    if not series.days:
        return f"<b>Realized P&amp;L per day</b> — {who}"
    days = len(series.days)
    currency = ""
    if len(series.currencies) == 1:
        currency = f" {series.currencies[0]}"
    elif series.currencies:
        currency = (
            f" (summed in each position's currency — {', '.join(series.currencies)} — "
            "not converted)"
        )
    first, last = series.days[0].day, series.days[-1].day
    return (
        f"<b>Realized P&amp;L per day</b> — {who} · {days} trading day"
        f"{'s' if days != 1 else ''}, {first:%d %b %Y} – {last:%d %b %Y} · total "
        f"<b>{fmt.money(series.total)}</b>{currency}"
    )


def position_caption(position: Lifecycle | None) -> str:
    """The lifecycle chart's title."""
    if position is None:
        return "<b>Selected position</b>"
    contract = position.contract
    span = f"opened {fmt.local_time(position.opened_at)}"
    if position.closed_at is not None:
        span += f", closed {fmt.local_time(position.closed_at)}"
    return (
        f"<b>{contract.local_symbol or contract.symbol}</b> in {position.account} — "
        f"{position.status.value.lower()}, {span} · realized "
        f"{fmt.money(position.realized_pnl)} {contract.currency}"
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
        self.position_title = QLabel(position_caption(None))
        self.position_title.setObjectName("positionTitle")
        for title in (self.pnl_title, self.position_title):
            title.setTextFormat(Qt.TextFormat.RichText)
            title.setWordWrap(True)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setObjectName("chartsSplitter")
        self.split.addWidget(_titled(self.pnl_title, self.pnl_chart))
        self.split.addWidget(_titled(self.position_title, self.position_chart))
        self.split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.split)

    def show_realized(self, series: RealizedByDay) -> None:
        """The daily realized P&L of one account (or all)."""
        self.pnl_title.setText(realized_caption(series))
        self.pnl_chart.set_series(series)

    def show_position(self, position: Lifecycle | None, path: LifecyclePath | None) -> None:
        """One lifecycle's path (None: nothing selected)."""
        self.position_title.setText(position_caption(position))
        self.position_chart.set_path(path)

    def show_problem(self, text: str) -> None:
        """The daily series could not be read (the charts keep what they showed)."""
        self.pnl_title.setText(f"<b>Realized P&amp;L per day</b> — could not read: {text}")
