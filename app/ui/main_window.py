"""The main window's widgets: banner, toolbar, broker | cache tables, history, closed, sync log.

Layout only: app/ui/controller.py and its presenters (app/ui/presenters) fill the models and
react to the buttons.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.ui.banner import READING, BannerState, Level, SyncBanner
from app.ui.charts.pane import ChartsPane
from app.ui.closed_totals import TOOLTIP as CLOSED_TOTALS_TIP
from app.ui.copying import install_copy
from app.ui.exporting import add_export_menu
from app.ui.models.history import EventsModel, FillsModel, RunsModel
from app.ui.models.keyed import KeyedTableModel
from app.ui.models.lots import LotsModel
from app.ui.models.positions import BrokerModel, CacheModel, ClosedModel
from app.ui.resources import app_icon
from app.ui.statements import add_statement_menu
from app.ui.summary_strip import SummaryStrip

ALL_ACCOUNTS = "All accounts"


def _table(name: str, model: KeyedTableModel) -> QTableView:
    view = QTableView()
    view.setObjectName(name)
    view.setModel(model)
    view.setSortingEnabled(True)
    view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(22)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    header.setSectionsMovable(True)
    for section, column in enumerate(model.columns):
        header.resizeSection(section, column.width)
    install_copy(view)
    return view


TABLE_CHROME = 25  # a table's frame and vertical scroll bar, in pixels
DEFAULT_WIDTH = 1280  # the window's first size: what must fit without scrolling (issue 19)
MARGIN = 4  # around the window's content: every pixel goes to the tables' columns


def _first_columns_width(model: KeyedTableModel) -> int:
    """Pixels the columns a trader reads first need (the model's `read_first`)."""
    return sum(c.width for c in model.columns[: model.read_first]) + TABLE_CHROME


def _titled(title: str, widget: QWidget, extra: QWidget | None = None) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    row = QHBoxLayout()
    label = QLabel(f"<b>{title}</b>")
    row.addWidget(label)
    row.addStretch(1)
    if extra is not None:
        row.addWidget(extra)
    layout.addLayout(row)
    layout.addWidget(widget)
    return box


class MainWindow(QMainWindow):
    """The Position Sync window."""

    closing = Signal()
    palette_changed = Signal()

    def __init__(self, title: str = "Position Sync", parent: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle(title)
        self.setWindowIcon(app_icon())

        self.broker_model = BrokerModel(self)
        self.cache_model = CacheModel(self)
        self.closed_model = ClosedModel(self)
        self.events_model = EventsModel(self)
        self.fills_model = FillsModel(self)
        self.lots_model = LotsModel(self)
        self.runs_model = RunsModel(self)

        # ---- top: banner, filters, actions
        self.banner = SyncBanner()
        self.banner.show_state(BannerState(Level.SYNCING, f"Starting — {READING}"))
        self.account_filter = QComboBox()
        self.account_filter.setObjectName("accountFilter")
        self.account_filter.addItem(ALL_ACCOUNTS)
        self.account_filter.setMinimumWidth(140)
        self.text_filter = QLineEdit()
        self.text_filter.setObjectName("textFilter")
        self.text_filter.setPlaceholderText("Filter symbol or account…")
        self.text_filter.setClearButtonEnabled(True)
        self.sync_button = QPushButton("Sync now")
        self.sync_button.setObjectName("syncButton")
        self.sync_button.setToolTip("Sync the ledger from TWS now (F5)")
        self.mark_closed_button = QPushButton("Mark closed…")
        self.mark_closed_button.setObjectName("markClosedButton")
        self.mark_closed_button.setToolTip(
            "Close the selected cached position in the ledger (nothing is sent to the broker)"
        )
        self.mark_closed_button.setEnabled(False)
        controls = QHBoxLayout()
        controls.addWidget(self.account_filter)
        controls.addWidget(self.text_filter, 1)
        controls.addWidget(self.sync_button)
        controls.addWidget(self.mark_closed_button)
        self.summary_strip = SummaryStrip()

        # ---- positions tab: broker | cache, history below
        self.broker_table = _table("brokerTable", self.broker_model)
        self.cache_table = _table("cacheTable", self.cache_model)
        self.broker_count = QLabel()
        self.cache_count = QLabel()
        self.sides = QSplitter(Qt.Orientation.Horizontal)
        self.sides.setObjectName("sidesSplitter")
        self.sides.addWidget(
            _titled("Broker — live from TWS", self.broker_table, self.broker_count)
        )
        self.sides.addWidget(_titled("Cache — local ledger", self.cache_table, self.cache_count))
        # The ledger side carries more columns (type, the difference, realized): it gets what
        # its first columns need, the broker side the rest; extra width is shared 5:7.
        self.sides.setStretchFactor(0, 5)
        self.sides.setStretchFactor(1, 7)
        ledger = _first_columns_width(self.cache_model)
        room = DEFAULT_WIDTH - 2 * MARGIN - self.sides.handleWidth()
        self.sides.setSizes([max(_first_columns_width(self.broker_model), room - ledger), ledger])

        # ---- history of the selected lifecycle (open or closed), under every tab
        self.events_table = _table("eventsTable", self.events_model)
        self.fills_table = _table("fillsTable", self.fills_model)
        self.lots_table = _table("lotsTable", self.lots_model)
        self.history_title = QLabel("Select a position to see its history and fills.")
        self.history_title.setObjectName("historyTitle")
        history = QWidget()
        history_layout = QVBoxLayout(history)
        history_layout.setContentsMargins(0, 0, 0, 0)
        history_layout.addWidget(self.history_title)
        history_split = QSplitter(Qt.Orientation.Horizontal)
        history_split.addWidget(_titled("Events", self.events_table))
        history_split.addWidget(_titled("Fills", self.fills_table))
        history_split.addWidget(_titled("Open lots (FIFO)", self.lots_table))
        history_split.setStretchFactor(0, 3)
        history_split.setStretchFactor(1, 2)
        history_split.setStretchFactor(2, 2)
        history_layout.addWidget(history_split)

        # ---- closed tab
        self.closed_table = _table("closedTable", self.closed_model)
        self.closed_totals = QLabel()
        self.closed_totals.setObjectName("closedTotals")
        self.closed_totals.setToolTip(CLOSED_TOTALS_TIP)
        self.closed_totals.setTextFormat(Qt.TextFormat.RichText)
        # Several currencies, each with its parts: one unwrapped line would widen the window.
        self.closed_totals.setWordWrap(True)
        closed = QWidget()
        closed_layout = QVBoxLayout(closed)
        closed_layout.addWidget(self.closed_totals)
        closed_layout.addWidget(self.closed_table)

        # ---- sync log tab
        self.runs_table = _table("runsTable", self.runs_model)
        self.run_stats = QLabel()
        self.run_stats.setObjectName("runStats")
        log = QWidget()
        log_layout = QVBoxLayout(log)
        log_layout.addWidget(self.run_stats)
        log_layout.addWidget(self.runs_table)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("views")
        self.tabs.addTab(self.sides, "Open positions")
        self.tabs.addTab(closed, "Closed")
        self.tabs.addTab(log, "Sync log")
        self.charts = ChartsPane()
        self.tabs.addTab(self.charts, "Charts")
        # Read-only lists: several rows may be selected to copy (the position tables keep one
        # selected row, which Mark closed and the mirrored selection act on).
        for view in (self.events_table, self.fills_table, self.runs_table):
            view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.positions_split = QSplitter(Qt.Orientation.Vertical)
        self.positions_split.setObjectName("historySplitter")
        self.positions_split.addWidget(self.tabs)
        self.positions_split.addWidget(history)
        self.positions_split.setStretchFactor(0, 3)
        self.positions_split.setStretchFactor(1, 1)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
        layout.addWidget(self.banner)
        layout.addLayout(controls)
        layout.addWidget(self.summary_strip)
        layout.addWidget(self.positions_split, 1)
        self.setCentralWidget(central)

        # ---- menus and shortcuts
        self.sync_action = QAction("Sync now", self)
        self.sync_action.setShortcut(QKeySequence(Qt.Key.Key_F5))
        self.sync_action.triggered.connect(self.sync_button.click)
        self.settings_action = QAction("Settings…", self)
        # The platform's Preferences key; X11 desktops define none, so Ctrl+, there.
        preferences = QKeySequence(QKeySequence.StandardKey.Preferences)
        self.settings_action.setShortcut(
            preferences if not preferences.isEmpty() else QKeySequence("Ctrl+,")
        )
        quit_action = QAction("Quit", self)
        quit_keys = QKeySequence(QKeySequence.StandardKey.Quit)
        quit_action.setShortcut(quit_keys if not quit_keys.isEmpty() else QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.sync_action)
        file_menu.addAction(self.settings_action)
        self.export_actions, self.export_only_shown = add_export_menu(file_menu)
        self.statement_actions = add_statement_menu(file_menu)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        self.find_action = QAction("Find…", self)
        self.find_action.setObjectName("findAction")
        self.find_action.setShortcut(QKeySequence.StandardKey.Find)
        self.find_action.triggered.connect(self._focus_filter)
        self.mark_closed_action = QAction("Mark closed…", self)
        self.mark_closed_action.setShortcut(QKeySequence("Ctrl+Shift+M"))
        self.mark_closed_action.setEnabled(False)
        self.mark_closed_action.triggered.connect(self.mark_closed_button.click)
        self.mark_closed_button.installEventFilter(self)
        edit_menu = self.menuBar().addMenu("&Edit")
        edit_menu.addAction(self.find_action)
        edit_menu.addAction(self.mark_closed_action)
        self.addAction(self.sync_action)
        self.addAction(self.find_action)
        self.database_label = QLabel()
        self.statusBar().addPermanentWidget(self.database_label)
        self.resize(DEFAULT_WIDTH, 800)

    # ------------------------------------------------------------------ window state
    def restore_state(self, store: QSettings) -> None:
        """Geometry, splitters and column layouts from the last session."""
        for key, restore in (
            ("geometry", self.restoreGeometry),
            ("state", self.restoreState),
            ("sides", self.sides.restoreState),
            ("positions", self.positions_split.restoreState),
        ):
            value = store.value(f"window/{key}")
            if isinstance(value, QByteArray):
                restore(value)
        for view in self.tables():
            value = store.value(f"columns/{view.objectName()}")
            if isinstance(value, QByteArray):
                view.horizontalHeader().restoreState(value)

    def save_state(self, store: QSettings) -> None:
        """Remember geometry, splitters and column layouts."""
        store.setValue("window/geometry", self.saveGeometry())
        store.setValue("window/state", self.saveState())
        store.setValue("window/sides", self.sides.saveState())
        store.setValue("window/positions", self.positions_split.saveState())
        for view in self.tables():
            store.setValue(f"columns/{view.objectName()}", view.horizontalHeader().saveState())

    def tables(self) -> list[QTableView]:
        """Every table view in the window."""
        return [
            self.broker_table,
            self.cache_table,
            self.events_table,
            self.fills_table,
            self.lots_table,
            self.closed_table,
            self.runs_table,
        ]

    def shown_account(self) -> str | None:
        """The account the filter shows (None: all accounts)."""
        account = self.account_filter.currentText()
        return None if account in ("", ALL_ACCOUNTS) else account

    def _focus_filter(self) -> None:
        self.text_filter.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.text_filter.selectAll()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The menu's Mark closed… follows the button's enabled state (one place decides it).
        if watched is self.mark_closed_button and event.type() == QEvent.Type.EnabledChange:
            self.mark_closed_action.setEnabled(self.mark_closed_button.isEnabled())
        return super().eventFilter(watched, event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self.palette_changed.emit()
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closing.emit()
        super().closeEvent(event)
