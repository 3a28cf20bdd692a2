"""Realized P&L per day of one currency as bars (green gain, red loss; the estimated part
hatched on top of the exact one) with the running total as a line."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QEvent, QPointF, QRectF
from PySide6.QtGui import QColor, QHelpEvent, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QToolTip

from app.domain.realized import basis_label
from app.domain.series import DayPnl, RealizedByDay
from app.domain.values import CostBasis
from app.ui import formatting as fmt
from app.ui.charts.axes import nice_ticks
from app.ui.charts.base import BLUE, BOX, HATCH, LINE, ChartWidget, paint_hatched
from app.ui.models.keyed import GAIN, LOSS

ESTIMATE = QColor("#6b7280")
"""The legend's swatch for the hatched (estimated) part; bars hatch in their gain/loss colour."""


class DailyPnlChart(ChartWidget):
    """Bars of realized P&L per local day and the cumulative line, over the days that realized."""

    placeholder = "No realized P&L in the ledger yet: it appears here once a position is reduced."

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("dailyPnlChart")
        self.series = RealizedByDay()
        self.cost_basis = CostBasis.AVERAGE
        """Which figure the series sums (the tooltips say so)."""
        self._slots: list[tuple[float, float, DayPnl]] = []  # (left x, right x, day) for tooltips

    def set_series(self, series: RealizedByDay, cost_basis: CostBasis = CostBasis.AVERAGE) -> None:
        """Show `series`, summed in the figure `cost_basis` names (exact values; only the pixels
        are floats)."""
        self.series = series
        self.cost_basis = cost_basis
        self.update()

    def has_data(self) -> bool:
        return bool(self.series.days)

    def paint_chart(self, painter: QPainter) -> None:
        days = self.series.days
        metrics = self.fontMetrics()
        values = [float(v) for d in days for v in (d.realized, d.exact, d.cumulative)]
        ticks = nice_ticks(min(0.0, *values), max(0.0, *values))
        left = self.label_width([f"{t:,.2f}" for t in (ticks[0], ticks[-1])]) + 14
        line = metrics.height()
        plot = QRectF(left, line + 16, self.width() - left - 14, self.height() - line * 3 - 18)

        legend = [(BOX, GAIN, "Gain"), (BOX, LOSS, "Loss")]
        if any(d.estimated or d.unknown for d in days):
            legend.append((HATCH, ESTIMATE, "Estimated"))
        legend.append((LINE, BLUE, f"Cumulative {self.series.currency}".rstrip()))
        self.paint_legend(painter, plot.left(), line + 2, legend)
        y = self.paint_grid(painter, plot, ticks)

        slot = plot.width() / len(days)
        bar = max(2.0, min(34.0, slot * 0.62))
        zero = y(0)
        self._slots = []
        cumulative = QPainterPath()
        for i, day in enumerate(days):
            centre = plot.left() + slot * (i + 0.5)
            self._slots.append((centre - slot / 2, centre + slot / 2, day))
            # The exact part from zero, solid; the estimated part stacked on it, hatched, so an
            # estimate is never read as exact (its sign may differ from the exact part's).
            top = y(float(day.exact))
            colour = GAIN if day.exact >= 0 else LOSS
            if day.exact or not day.estimated:
                height = max(1.0, abs(zero - top))  # a zero day still shows as a hairline
                painter.fillRect(QRectF(centre - bar / 2, min(top, zero), bar, height), colour)
            if day.estimated:
                end = y(float(day.realized))
                hatch = GAIN if day.estimated >= 0 else LOSS
                rect = QRectF(centre - bar / 2, min(top, end), bar, max(1.0, abs(end - top)))
                paint_hatched(painter, rect, hatch)
            point = QPointF(centre, y(float(day.cumulative)))
            if i == 0:
                cumulative.moveTo(point)
            else:
                cumulative.lineTo(point)
        painter.setPen(QPen(BLUE, 2))
        painter.drawPath(cumulative)
        if slot >= 8:
            painter.setBrush(BLUE)
            for i, day in enumerate(days):
                centre = plot.left() + slot * (i + 0.5)
                painter.drawEllipse(QPointF(centre, y(float(day.cumulative))), 2.5, 2.5)
        painter.setBrush(QColor(0, 0, 0, 0))

        # Day labels under the plot, thinned so they never overlap.
        years = {d.day.year for d in days}
        pattern = "%d %b" if len(years) == 1 else "%d %b %y"
        sample = metrics.horizontalAdvance(days[0].day.strftime(pattern)) + 10
        every = max(1, math.ceil(sample / slot))
        painter.setPen(self.text_colour())
        for i, day in enumerate(days):
            if i % every and i != len(days) - 1:
                continue
            if i == len(days) - 1 and i % every and (i % every) * slot < sample:
                continue  # the last label would collide with the one before it
            text = day.day.strftime(pattern)
            centre = plot.left() + slot * (i + 0.5)
            width = metrics.horizontalAdvance(text)
            painter.drawText(QPointF(centre - width / 2, plot.bottom() + line + 4), text)

    def day_at(self, x: float) -> DayPnl | None:
        """The day whose slot contains pixel column `x` (after a paint)."""
        for start, end, day in self._slots:
            if start <= x < end:
                return day
        return None

    def day_tip(self, day: DayPnl) -> str:
        """The tooltip of one day's bar: its currency, and exact and estimated apart."""
        currency = f" {self.series.currency}" if self.series.currency else ""
        text = f"{day.day:%a %d %b %Y}\nRealized ({basis_label(self.cost_basis)}) "
        text += f"{fmt.money(day.realized)}{currency}"
        if day.estimated:
            text += (
                f"\n  exact {fmt.money(day.exact)}, estimated {fmt.money(day.estimated)} "
                "(hatched: priced from the market or a last known price, or a commission not "
                "reported yet)"
            )
        if day.unknown:
            text += f"\n  {day.unknown} amount(s) could not be priced and are not included"
        return text + f"\nCumulative {fmt.money(day.cumulative)}{currency}"

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            day = self.day_at(event.pos().x()) if self.has_data() else None
            if day is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), self.day_tip(day), self)
            return True
        return super().event(event)
