"""What both charts share: a white plot with a grid, a legend, and a placeholder when empty."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPaintEvent, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.ui.charts.axes import Scale, tick_label

GRID = QColor("#e4e7eb")
ZERO_LINE = QColor("#9aa0a6")
BLUE = QColor("#2f6db5")
ORANGE = QColor("#d9822b")

# Legend swatches: a filled box (bars), a line, or a marker triangle.
BOX, LINE, UP, DOWN, HATCH = "box", "line", "up", "down", "hatch"


def paint_hatched(painter: QPainter, rect: QRectF, colour: QColor) -> None:
    """An outlined box filled with diagonal hatching: an estimate, apart from exact amounts."""
    painter.save()
    painter.setPen(QPen(colour, 1))
    painter.setBrush(QBrush(colour, Qt.BrushStyle.BDiagPattern))
    painter.drawRect(rect)
    painter.restore()


def triangle(centre: QPointF, size: float, up: bool) -> QPolygonF:
    """A marker triangle pointing up (a buy) or down (a sell) around `centre`."""
    x, y, h = centre.x(), centre.y(), size
    if up:
        points = [QPointF(x, y - h), QPointF(x - h, y + h * 0.8), QPointF(x + h, y + h * 0.8)]
    else:
        points = [QPointF(x, y + h), QPointF(x - h, y - h * 0.8), QPointF(x + h, y - h * 0.8)]
    return QPolygonF(points)


class ChartWidget(QWidget):
    """A QWidget that paints one chart; subclasses implement `paint_chart`."""

    placeholder = ""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def has_data(self) -> bool:
        """Whether there is anything to draw (otherwise the placeholder shows)."""
        return False

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
            if not self.has_data():
                painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(
                    QRectF(self.rect()).adjusted(12, 12, -12, -12),
                    Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                    self.placeholder,
                )
                return
            self.paint_chart(painter)
        finally:
            painter.end()

    def paint_chart(self, painter: QPainter) -> None:
        """Draw the chart (only called when `has_data()`)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def text_colour(self) -> QColor:
        """Axis and legend text: the palette's text, a little lighter."""
        colour = QColor(self.palette().color(QPalette.ColorRole.Text))
        colour.setAlpha(200)
        return colour

    def label_width(self, labels: Sequence[str]) -> int:
        """Pixels the widest of `labels` needs."""
        metrics = self.fontMetrics()
        return max((metrics.horizontalAdvance(text) for text in labels), default=0)

    def paint_grid(
        self,
        painter: QPainter,
        plot: QRectF,
        ticks: Sequence[float],
        *,
        right: bool = False,
        label: Callable[[float], str] | None = None,
    ) -> Scale:
        """Horizontal grid lines at `ticks` with labels beside the plot; returns the y scale.

        Labels go left of the plot, or right of it with `right` (then no grid lines: the left
        axis already drew them, and two grids at different steps read as noise).
        """
        scale = Scale.vertical(ticks, plot)
        metrics = self.fontMetrics()
        half = metrics.ascent() / 2 - 1
        for value in ticks:
            y = scale(value)
            if not right:
                painter.setPen(QPen(ZERO_LINE if value == 0 else GRID, 1))
                painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            text = label(value) if label is not None else tick_label(value, ticks)
            painter.setPen(self.text_colour())
            if right:
                painter.drawText(QPointF(plot.right() + 6, y + half), text)
            else:
                width = metrics.horizontalAdvance(text)
                painter.drawText(QPointF(plot.left() - 6 - width, y + half), text)
        return scale

    def paint_legend(
        self, painter: QPainter, x: float, y: float, items: Sequence[tuple[str, QColor, str]]
    ) -> float:
        """Swatch-and-text pairs in one row from (x, y = text baseline); returns the end x."""
        metrics = self.fontMetrics()
        mid = y - metrics.ascent() / 2 + 1
        for kind, colour, text in items:
            if kind == BOX:
                painter.fillRect(QRectF(x, mid - 5, 10, 10), colour)
            elif kind == HATCH:
                paint_hatched(painter, QRectF(x, mid - 5, 10, 10), colour)
            elif kind == LINE:
                painter.setPen(QPen(colour, 2))
                painter.drawLine(QPointF(x - 2, mid), QPointF(x + 12, mid))
            else:
                painter.setPen(QPen(QColor("white"), 1))
                painter.setBrush(colour)
                painter.drawPolygon(triangle(QPointF(x + 5, mid), 5, kind == UP))
                painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(self.text_colour())
            painter.drawText(QPointF(x + 16, y), text)
            x += 16 + metrics.horizontalAdvance(text) + 14
        return x
