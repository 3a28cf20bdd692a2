"""KeyedTableModel: rows keyed by identity, sorted and filtered in Python, updated in place.

Sorting and filtering live in the model rather than a QSortFilterProxyModel: a proxy calls a
Python `lessThan` about n·log n times, over a second for 20,000 rows, while sorting Python
tuples by a precomputed key takes milliseconds. Decimal values sort as numbers (the default
proxy would not order them at all).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon

from app.domain.values import PnlBasis
from app.ui.palette import LIGHT, Colours

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
KEY_ROLE = Qt.ItemDataRole.UserRole + 2

# The light palette's P&L colours (charts draw with these); tables follow the palette in use
# (`set_colours`, app.ui.palette). An estimate keeps the gain/loss hue in another shade (and
# italic, with "≈"): still readable as a gain or a loss, never mistaken for an exact figure.
# Unknown (no price) is grey.
GAIN = QColor(LIGHT.gain)
LOSS = QColor(LIGHT.loss)
ESTIMATED_GAIN = QColor(LIGHT.estimated_gain)
ESTIMATED_LOSS = QColor(LIGHT.estimated_loss)
UNKNOWN = QColor(LIGHT.unknown)

Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its title, raw (sort) value, display text and presentation hints."""

    title: str
    value: Callable[[Any], Any]
    text: Callable[[Any], str]
    numeric: bool = False
    pnl: bool = False  # coloured green/red by sign
    tooltip: str = ""
    width: int = 90  # default pixels; the user's own widths are remembered per table
    basis: Callable[[Any], PnlBasis | None] | None = None
    """For a realized P&L column: how far the row's figure can be trusted (app.ui.estimates)."""
    why: Callable[[Any], str] | None = None
    """For a `basis` column: the cell's tooltip when the figure is not exact."""
    cell_tip: Callable[[Any], str] | None = None
    """A cell's own tooltip (when no highlight or estimate has one to show)."""


@dataclass(frozen=True, slots=True)
class PreparedReset:
    """A reset worked out off the GUI thread: rows by key, the visible keys in order."""

    layout: int
    rows: dict[Hashable, Any]
    visible: list[Hashable]
    order_keys: dict[Hashable, Any]


@dataclass(frozen=True, slots=True)
class Highlight:
    """A row's marking: background, an icon in the first column, and why (tooltip)."""

    background: QColor
    icon: QIcon
    reason: str


def _italic() -> QFont:
    font = QFont()
    font.setItalic(True)
    return font


def _brushes(colours: Colours) -> tuple[QBrush, QBrush, QBrush, QBrush, QBrush]:
    return (
        QBrush(QColor(colours.gain)),
        QBrush(QColor(colours.loss)),
        QBrush(QColor(colours.estimated_gain)),
        QBrush(QColor(colours.estimated_loss)),
        QBrush(QColor(colours.unknown)),
    )


def _sort_key(value: Any) -> tuple[int, Any]:
    # None and blanks sort after every value in ascending order.
    return (1, 0) if value is None or value == "" else (0, value)


class KeyedTableModel(QAbstractTableModel):
    """A table of domain values keyed by `key_of(row)`; see the module docstring."""

    columns: Sequence[Column] = ()
    read_first = 0
    """How many leading columns must be visible without scrolling at the default size."""
    default_order: Callable[[Any], Any] | None = None
    """Order when no column is sorted (e.g. account then symbol, so tables line up)."""

    def __init__(self, key_of: Callable[[Any], Hashable], parent: Any = None) -> None:
        super().__init__(parent)
        self._key_of = key_of
        self._rows: dict[Hashable, Any] = {}
        self._visible: list[Hashable] = []
        self._position: dict[Hashable, int] = {}
        self._accept: Callable[[Any], bool] = lambda _row: True
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._highlights: dict[Hashable, Highlight] = {}
        self._explanations: dict[Hashable, str] = {}  # more of a marked figure's why, by key
        self._italic = _italic()
        self._brushes = _brushes(LIGHT)
        # Each row's key in the current order, kept as rows change: ordering 20,000 rows is then
        # a sort by dictionary lookup (milliseconds), not 20,000 Python calls on every update.
        self._order_keys: dict[Hashable, Any] = {}
        self._layout = 0  # counts filter and sort changes (a prepared reset must not straddle one)
        self.revision = 0  # counts changes of the rows held (callers skip work on an unchanged one)

    # ------------------------------------------------------------------ Qt API
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._visible)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        column = self.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.title
        if role == Qt.ItemDataRole.ToolTipRole and column.tooltip:
            return column.tooltip
        if role == Qt.ItemDataRole.TextAlignmentRole and column.numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._visible):
            return None
        if not 0 <= index.column() < len(self.columns):
            return None
        key = self._visible[index.row()]
        row = self._rows[key]
        column = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(row)
        if role == SORT_ROLE:
            return column.value(row)
        if role == KEY_ROLE:
            return key
        if role == Qt.ItemDataRole.TextAlignmentRole:
            horizontal = (
                Qt.AlignmentFlag.AlignRight if column.numeric else Qt.AlignmentFlag.AlignLeft
            )
            return int(horizontal | Qt.AlignmentFlag.AlignVCenter)
        basis = column.basis(row) if column.basis is not None else None
        estimate = basis is PnlBasis.ESTIMATED or basis is PnlBasis.UNKNOWN
        if role == Qt.ItemDataRole.ForegroundRole and column.pnl:
            return self._pnl_brush(column.value(row), basis)
        if role == Qt.ItemDataRole.FontRole:
            return self._italic if estimate else None
        highlight = self._highlights.get(key)
        if role == Qt.ItemDataRole.ToolTipRole and estimate and column.why is not None:
            why = column.why(row)
            more = self._explanations.get(key)
            if more:
                why = f"{why}\n{more}" if why else more
            return f"{why}\n\n{highlight.reason}" if highlight is not None else why
        if highlight is None:
            if role == Qt.ItemDataRole.ToolTipRole and column.cell_tip is not None:
                return column.cell_tip(row)
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(highlight.background)
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
            return highlight.icon
        if role == Qt.ItemDataRole.ToolTipRole:
            return highlight.reason
        return None

    def _pnl_brush(self, value: Any, basis: PnlBasis | None) -> QBrush | None:
        gain, loss, estimated_gain, estimated_loss, unknown = self._brushes
        if basis is PnlBasis.UNKNOWN:
            return unknown
        estimated = basis is PnlBasis.ESTIMATED
        if value is not None and value > 0:
            return estimated_gain if estimated else gain
        if value is not None and value < 0:
            return estimated_loss if estimated else loss
        return None

    def set_colours(self, colours: Colours) -> None:
        """Draw P&L in the colours of the palette in use (light or dark); repaints."""
        brushes = _brushes(colours)
        if [b.color() for b in brushes] == [b.color() for b in self._brushes]:
            return
        self._brushes = brushes
        if self._visible:
            self.dataChanged.emit(
                self.index(0, 0),
                self.index(len(self._visible) - 1, self.columnCount() - 1),
                [Qt.ItemDataRole.ForegroundRole],
            )

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort = (column, order) if 0 <= column < len(self.columns) else None
        self._layout += 1
        order_key = self._order_key_function()
        self._order_keys = (
            {k: order_key(r) for k, r in self._rows.items()} if order_key is not None else {}
        )
        self._resort()

    # ------------------------------------------------------------------ content
    def key_of(self, value: Any) -> Hashable:
        """The key a value is held under."""
        return self._key_of(value)

    def row(self, position: int) -> Any:
        """The domain value shown at a visible row."""
        return self._rows[self._visible[position]]

    def get(self, key: Hashable) -> Any | None:
        """The domain value for a key (visible or filtered out)."""
        return self._rows.get(key)

    def row_of(self, key: Hashable) -> int | None:
        """The visible row showing `key`, if any."""
        return self._position.get(key)

    def values(self) -> list[Any]:
        """Every value held (also those the filter hides)."""
        return list(self._rows.values())

    def visible_values(self) -> list[Any]:
        """The values shown, in display order."""
        return [self._rows[k] for k in self._visible]

    def reset(self, rows: Iterable[Any]) -> None:
        """Replace everything (loads and filter changes; live updates use upsert)."""
        self.apply_reset(self.prepare_reset(rows))

    def prepare_reset(self, rows: Iterable[Any]) -> PreparedReset:
        """The work of `reset(rows)` that touches no Qt object: run it on a worker thread for
        big tables, then `apply_reset` on the GUI thread."""
        held = {self._key_of(r): r for r in rows}
        visible = [k for k, r in held.items() if self._accept(r)]
        order_key = self._order_key_function()
        order_keys = {k: order_key(r) for k, r in held.items()} if order_key is not None else {}
        self._sort_visible(visible, order_keys)
        return PreparedReset(self._layout, held, visible, order_keys)

    def apply_reset(self, prepared: PreparedReset) -> None:
        """Show a prepared reset (prepared again here if the filter or order changed since)."""
        if prepared.layout != self._layout:
            prepared = self.prepare_reset(prepared.rows.values())
        self.revision += 1
        self.beginResetModel()
        self._rows = prepared.rows
        self._visible = prepared.visible
        self._order_keys = prepared.order_keys
        self._position = {k: i for i, k in enumerate(self._visible)}
        self.endResetModel()

    def upsert(self, rows: Iterable[Any]) -> None:
        """Update rows in place and append new ones; selection and scroll stay."""
        self.revision += 1
        changed_rows: list[int] = []
        appended: dict[Hashable, None] = {}  # ordered and unique: a batch may repeat a key
        order_key = self._order_key_function()
        order_keys = self._order_keys
        reordered = False  # a shown row's place in the current order moved
        for value in rows:
            key = self._key_of(value)
            held = self._rows.get(key)
            if order_key is not None:
                new_order = order_key(value)
                if held is not None and order_keys.get(key) != new_order:
                    reordered = True
                order_keys[key] = new_order
            self._rows[key] = value
            position = self._position.get(key)
            if position is not None:
                changed_rows.append(position)
            elif self._accept(value):  # new, or filtered out before and shown now
                appended[key] = None
        if changed_rows:
            last = self.columnCount() - 1
            self.dataChanged.emit(
                self.index(min(changed_rows), 0), self.index(max(changed_rows), last)
            )
        if appended:
            start = len(self._visible)
            self.beginInsertRows(QModelIndex(), start, start + len(appended) - 1)
            for offset, key in enumerate(appended):
                self._position[key] = start + offset
            self._visible.extend(appended)
            self.endInsertRows()
        if appended or (changed_rows and reordered):
            self._resort()

    def remove(self, keys: Iterable[Hashable]) -> None:
        """Drop rows by key."""
        for key in keys:
            if key not in self._rows:
                continue
            self.revision += 1
            del self._rows[key]
            self._order_keys.pop(key, None)
            position = self._position.pop(key, None)
            if position is None:
                continue
            self.beginRemoveRows(QModelIndex(), position, position)
            del self._visible[position]
            for moved in self._visible[position:]:
                self._position[moved] -= 1
            self.endRemoveRows()

    def set_filter(self, accept: Callable[[Any], bool]) -> None:
        """Show only rows for which `accept(row)` is true."""
        self._accept = accept
        self._layout += 1
        self.reset(list(self._rows.values()))

    def set_highlights(self, highlights: dict[Hashable, Highlight]) -> None:
        """Mark rows (discrepancies); repaints only when the marking changed."""
        if highlights == self._highlights:
            return
        self._highlights = highlights
        if self._visible:
            self.dataChanged.emit(
                self.index(0, 0),
                self.index(len(self._visible) - 1, self.columnCount() - 1),
                [
                    Qt.ItemDataRole.BackgroundRole,
                    Qt.ItemDataRole.DecorationRole,
                    Qt.ItemDataRole.ToolTipRole,
                ],
            )

    def set_explanations(self, explanations: dict[Hashable, str]) -> None:
        """More of why rows' marked figures are estimates (their events), by key; shown in the
        tooltip of every `basis` column after the column's own `why`."""
        if explanations == self._explanations:
            return
        self._explanations = explanations
        if self._visible:
            self.dataChanged.emit(
                self.index(0, 0),
                self.index(len(self._visible) - 1, self.columnCount() - 1),
                [Qt.ItemDataRole.ToolTipRole],
            )

    # ------------------------------------------------------------------ ordering
    def _order_key_function(self) -> Callable[[Any], Any] | None:
        """A row's key in the current order: the sorted column's value, else the default."""
        if self._sort is not None:
            value = self.columns[self._sort[0]].value
            return lambda row: _sort_key(value(row))
        default = type(self).default_order
        return default if default is not None else None

    def _sort_visible(self, visible: list[Hashable], order_keys: dict[Hashable, Any]) -> None:
        if self._sort is not None:
            reverse = self._sort[1] == Qt.SortOrder.DescendingOrder
            visible.sort(key=order_keys.__getitem__, reverse=reverse)
        elif order_keys:
            visible.sort(key=order_keys.__getitem__)

    def _order_visible(self) -> None:
        self._sort_visible(self._visible, self._order_keys)
        self._position = {k: i for i, k in enumerate(self._visible)}

    def _resort(self) -> None:
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        keys = [(self._visible[i.row()], i.column()) if i.isValid() else None for i in persistent]
        self._order_visible()
        new = [
            self.index(self._position[key], col) if key is not None else QModelIndex()
            for key, col in (k if k is not None else (None, 0) for k in keys)
        ]
        self.changePersistentIndexList(persistent, new)
        self.layoutChanged.emit()
