"""One lifecycle over time: quantity as a step line (left axis), average price (right axis),
and its fills as markers at their price (▲ bought, ▼ sold)."""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from typing import Any

from PySide6.QtCore import QEvent, QPointF, QRectF
from PySide6.QtGui import QColor, QHelpEvent, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QToolTip

from app.domain.series import LifecyclePath
from app.ui import formatting as fmt
from app.ui.charts.axes import Scale, nice_ticks
from app.ui.charts.base import BLUE, DOWN, LINE, ORANGE, UP, ChartWidget, triangle
from app.ui.models.keyed import GAIN, LOSS

QUANTITY_FILL = QColor(47, 109, 181, 40)
MARKER = 6.0


def _time_format(span: timedelta) -> str:
    if span <= timedelta(hours=20):
        return "%H:%M"
    if span <= timedelta(days=4):
        return "%d %b %H:%M"
    return "%d %b"


def time_ticks(start: datetime, end: datetime, count: int) -> list[datetime]:
    """About `count` instants to label: local midnights for spans over four days (a date label
    then means the day's start), else evenly spaced from start to end."""
    span = end - start
    if span <= timedelta(days=4):
        return [start + span * (i / (count - 1)) for i in range(count)]
    every = max(1, math.ceil(span.days / (count - 1)))
    day = start.astimezone().date() + timedelta(days=1)
    ticks: list[datetime] = []
    while True:
        # A naive local midnight made aware in this zone (DST-correct for that date).
        midnight = datetime.combine(day, time()).astimezone()
        if midnight > end:
            return ticks
        ticks.append(midnight)
        day += timedelta(days=every)


class PositionChart(ChartWidget):
    """The selected lifecycle's quantity and average price, with its fills marked."""

    placeholder = (
        "Select a position under Open positions or Closed to chart its quantity, average price "
        "and fills over its lifecycle."
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("positionChart")
        self.path: LifecyclePath | None = None
        self._marks: list[tuple[QPointF, str]] = []  # painted fill markers, for tooltips

    def set_path(self, path: LifecyclePath | None) -> None:
        """Show one lifecycle's path (None: the placeholder)."""
        self.path = path
        self.update()

    def has_data(self) -> bool:
        return self.path is not None and bool(self.path.points)

    def paint_chart(self, painter: QPainter) -> None:
        path = self.path
        assert path is not None
        points = path.points
        metrics = self.fontMetrics()
        line = metrics.height()

        quantities = [float(p.quantity) for p in points]
        q_ticks = nice_ticks(min(0.0, *quantities), max(0.0, *quantities), 4)
        prices = [float(p.average_price) for p in points if p.quantity != 0]
        prices += [float(m.price) for m in path.fills]
        if prices:
            low, high = min(prices), max(prices)
            pad = (high - low) * 0.08 or abs(high) * 0.01 or 1.0
            p_ticks = nice_ticks(low - pad, high + pad, 4)
        else:
            p_ticks = []

        left = self.label_width([f"{t:,.4f}".rstrip("0") for t in q_ticks]) + 14
        right = self.label_width([f"{t:,.2f}" for t in p_ticks]) + 14 if p_ticks else 14
        plot = QRectF(left, line + 16, self.width() - left - right, self.height() - line * 3 - 18)

        self.paint_legend(
            painter,
            plot.left(),
            line + 2,
            [
                (LINE, BLUE, "Quantity (left)"),
                (LINE, ORANGE, "Average price (right)"),
                (UP, GAIN, "Bought"),
                (DOWN, LOSS, "Sold"),
            ],
        )
        q = self.paint_grid(painter, plot, q_ticks)
        price = self.paint_grid(painter, plot, p_ticks, right=True) if p_ticks else None

        start = min([points[0].at, *(m.at for m in path.fills)])
        end = max([path.end, points[-1].at, *(m.at for m in path.fills)])
        if end <= start:
            end = start + timedelta(hours=1)
        margin = (end - start) * 0.03
        t0, t1 = start - margin, end + margin
        x = Scale(0.0, (t1 - t0).total_seconds(), plot.left(), plot.right())

        def at(when: datetime) -> float:
            return x((when - t0).total_seconds())

        # Quantity: a step line from the opening to the end, the area to zero tinted.
        steps = QPainterPath()
        steps.moveTo(at(points[0].at), q(0))
        for point in points:
            steps.lineTo(at(point.at), steps.currentPosition().y())
            steps.lineTo(at(point.at), q(float(point.quantity)))
        steps.lineTo(at(path.end), steps.currentPosition().y())
        area = QPainterPath(steps)
        area.lineTo(at(path.end), q(0))
        area.closeSubpath()
        painter.fillPath(area, QUANTITY_FILL)
        painter.setPen(QPen(BLUE, 2))
        painter.drawPath(steps)

        # Average price: steps too, only while something is held.
        if price is not None:
            average = QPainterPath()
            for i, point in enumerate(points):
                until = points[i + 1].at if i + 1 < len(points) else path.end
                if point.quantity == 0:
                    continue
                y = price(float(point.average_price))
                previous = points[i - 1] if i else None
                if previous is not None and previous.quantity != 0:
                    average.lineTo(at(point.at), y)
                else:
                    average.moveTo(at(point.at), y)
                average.lineTo(at(until), y)
            painter.setPen(QPen(ORANGE, 2))
            painter.drawPath(average)

            self._marks = []
            painter.setPen(QPen(QColor("white"), 1))
            for mark in path.fills:
                centre = QPointF(at(mark.at), price(float(mark.price)))
                painter.setBrush(GAIN if mark.bought else LOSS)
                painter.drawPolygon(triangle(centre, MARKER, mark.bought))
                verb = "Bought" if mark.bought else "Sold"
                self._marks.append(
                    (
                        centre,
                        f"{verb} {fmt.quantity(mark.shares)} @ {fmt.price(mark.price)}\n"
                        f"{fmt.local_time(mark.at, True)}",
                    )
                )
            painter.setBrush(QColor(0, 0, 0, 0))

        # Time labels, in the workstation's time zone.
        pattern = _time_format(end - start)
        painter.setPen(self.text_colour())
        for when in time_ticks(start, end, 5 if plot.width() > 420 else 3):
            text = when.astimezone().strftime(pattern)
            width = metrics.horizontalAdvance(text)
            middle = min(max(at(when), plot.left() + width / 2), plot.right() - width / 2)
            painter.drawText(QPointF(middle - width / 2, plot.bottom() + line + 4), text)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            near = [
                text
                for centre, text in self._marks
                if (centre - QPointF(event.pos())).manhattanLength() <= MARKER * 2
            ]
            if near and self.has_data():
                QToolTip.showText(event.globalPos(), "\n\n".join(near), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)
