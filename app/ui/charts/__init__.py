"""The Charts tab: realized P&L per day (and cumulative), and the selected lifecycle's path.

Painted with QPainter in small widgets (PySide6-Essentials has no QtCharts); the series come
from app.domain.series, computed on the database thread (`feed.ChartsFeed`).
"""
