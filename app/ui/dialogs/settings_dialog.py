"""Settings…: connection, syncing, notifications, the local API, statements, the database.

Reads and writes app.settings.Settings (validated by it, so the dialog refuses exactly what the
settings file would); the window applies the result without a restart, except the local API,
which starts with the window. Secrets (tokens) are masked, with a Show switch.

The Statements tab lists the `flex_*` settings the Settings class declares (IB Flex Web
Service: flex_token, flex_query_id, flex_url), whichever exist: a setting added there shows
here without a change to this dialog.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from pydantic import ValidationError
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.domain.values import CostBasis
from app.settings import Settings
from app.ui.palette import colours_for

SECRET_WORDS = ("token", "password", "secret")
API_NOTE = (
    "Serves the ledger over HTTP with a bearer token (see README, Local API). Changes take "
    "effect the next time the window starts."
)
STATEMENTS_NOTE = (
    "IB Flex Web Service: the token and the query id come from Client Portal → Reports → "
    "Flex Queries. The token is stored in the settings file (mode 0600)."
)

CLIENT_ID_NOTE = (
    "TWS shows fills of orders entered by hand only to client id 0 (or the Master API client "
    "id set in TWS). With another id, manual fills still move positions, but their prices and "
    "commissions are not seen; realized P&L then uses the market price at the sync."
)


class SettingsDialog(QDialog):
    """Edits a copy of the settings; `result_settings()` is valid after Accepted."""

    def __init__(self, settings: Settings, parent: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self._original = settings
        self._result: Settings | None = None
        self._edited: tuple[str, ...] = ()  # the settings the last OK read from the fields

        self.host = QLineEdit(settings.ib_host)
        self.port = _spin(1, 65535, settings.ib_port)
        self.client_id = _spin(0, 2_147_483_647, settings.ib_client_id)
        self.account = QLineEdit(settings.ib_account)
        self.account.setPlaceholderText("every managed account")
        self.timeout = _seconds(1, 600, settings.ib_timeout)
        # Editable: the list is the tz database's names; a typed name is validated on OK.
        self.tws_timezone = QComboBox()
        self.tws_timezone.setObjectName("twsTimezone")
        self.tws_timezone.setEditable(True)
        self.tws_timezone.addItems(sorted(available_timezones()))
        self.tws_timezone.setCurrentText(settings.tws_timezone)
        self.tws_timezone.setToolTip(
            "The time zone chosen in the TWS login dialog. Older TWS versions send execution "
            "times without a zone, in that zone; times that name their zone are read in it."
        )
        colours = colours_for(self.palette())
        note = _note(CLIENT_ID_NOTE, colours.note)
        connection = QFormLayout()
        connection.addRow("TWS / Gateway host", self.host)
        connection.addRow("API port", self.port)
        connection.addRow("Client id", self.client_id)
        connection.addRow("", note)
        connection.addRow("Account", self.account)
        connection.addRow("Timeout (s)", self.timeout)
        connection.addRow("TWS login time zone", self.tws_timezone)

        self.enabled = QCheckBox("Sync automatically")
        self.enabled.setChecked(settings.enabled)
        self.interval = _seconds(5, 86_400, settings.sync_interval)
        self.debounce = _seconds(0, 60, settings.debounce_seconds)
        self.on_trade = QCheckBox("Sync right after a fill")
        self.on_trade.setChecked(settings.sync_on_trade)
        self.on_update = QCheckBox("Sync when the broker pushes a position change")
        self.on_update.setChecked(settings.sync_on_position_update)
        self.close_missing = QCheckBox(
            "Close positions the broker stops reporting (off: warn and let me decide)"
        )
        self.close_missing.setChecked(settings.mark_missing_as_closed)
        self.realized = QCheckBox("Calculate realized P&L")
        self.realized.setChecked(settings.calculate_realized_pnl)
        # Which realized figure totals show (DESIGN.md "FIFO lots"): the values are the
        # setting's own, so the combo cannot offer one the class would refuse.
        self.cost_basis = QComboBox()
        self.cost_basis.setObjectName("cost_basis")
        for basis, label in (
            (CostBasis.AVERAGE, "Average cost (as TWS shows it)"),
            (CostBasis.FIFO, "FIFO tax lots (as IB's tax reporting)"),
        ):
            self.cost_basis.addItem(label, basis.value)
        self.cost_basis.setCurrentIndex(max(0, self.cost_basis.findData(settings.cost_basis.value)))
        syncing = QFormLayout()
        syncing.addRow(self.enabled)
        syncing.addRow("Full sync every (s)", self.interval)
        syncing.addRow("Wait after broker events (s)", self.debounce)
        syncing.addRow(self.on_trade)
        syncing.addRow(self.on_update)
        syncing.addRow(self.close_missing)
        syncing.addRow(self.realized)
        syncing.addRow("Realized totals", self.cost_basis)

        self.notify_missing = QCheckBox("A position goes missing at IB")
        self.notify_missing.setChecked(settings.notify_missing)
        self.notify_failures = QCheckBox("Syncing fails several times in a row")
        self.notify_failures.setChecked(settings.notify_sync_failures)
        self.failure_threshold = _spin(1, 1000, settings.notify_failure_threshold)
        self.notify_disconnect = QCheckBox(
            "TWS disconnects unexpectedly during market hours (09:30–16:00 New York, Mon–Fri)"
        )
        self.notify_disconnect.setChecked(settings.notify_disconnect)
        self.notify_pnl = QCheckBox("Our realized P&L differs from IB's")
        self.notify_pnl.setChecked(settings.notify_pnl_mismatch)
        notifications = QFormLayout()
        notifications.addRow(self.notify_missing)
        notifications.addRow(self.notify_failures)
        notifications.addRow("Failed syncs in a row", self.failure_threshold)
        notifications.addRow(self.notify_disconnect)
        notifications.addRow(self.notify_pnl)

        self.database = QLineEdit(settings.database_url)
        self.database.setObjectName("databaseUrl")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.database)
        row.addWidget(browse)
        storage = QFormLayout()
        storage.addRow("Database", _wrap(row))

        self.api_enabled = QCheckBox("Serve the local API from the window")
        self.api_enabled.setChecked(settings.api_enabled)
        self.api_host = QLineEdit(settings.api_host)
        self.api_port = _spin(0, 65535, settings.api_port)
        self.api_token = _secret(settings.api_token, "generated when the API first starts")
        self.api_token.setObjectName("api_token")
        self.api_allow_remote = QCheckBox(
            "Allow a non-loopback address (plain HTTP: only on a network you trust)"
        )
        self.api_allow_remote.setChecked(settings.api_allow_remote)
        api = QFormLayout()
        api.addRow(self.api_enabled)
        api.addRow("Address", self.api_host)
        api.addRow("Port (0: any free)", self.api_port)
        api.addRow("Token", _wrap_secret(self.api_token))
        api.addRow(self.api_allow_remote)
        api.addRow("", _note(API_NOTE, colours.note))

        # Statements: whichever flex_* settings the Settings class declares.
        self.statement_fields: dict[str, QLineEdit | QSpinBox] = {}
        statements = QFormLayout()
        for name, info in type(settings).model_fields.items():
            if not name.startswith("flex_"):
                continue
            value = getattr(settings, name)
            editor: QLineEdit | QSpinBox
            if isinstance(value, bool):
                continue  # none yet; a checkbox would go here
            if isinstance(value, int):
                editor = _spin(0, 2_147_483_647, value)
            elif any(word in name for word in SECRET_WORDS):
                editor = _secret(str(value or ""), "")
            else:
                editor = QLineEdit("" if value is None else str(value))
            editor.setObjectName(name)
            editor.setToolTip(info.description or "")
            self.statement_fields[name] = editor
            label = name.removeprefix("flex_").replace("_", " ").capitalize()
            statements.addRow(label, _wrap_secret(editor) if _is_secret(editor) else editor)
        if self.statement_fields:
            statements.addRow("", _note(STATEMENTS_NOTE, colours.note))

        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {colours.loss}")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._check_and_accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        # Tabs: every group at once was taller than a 800-pixel screen.
        self.tabs = QTabWidget()
        self.tabs.setObjectName("settingsTabs")
        pages = [
            ("Connection", (("TWS / IB Gateway", connection),)),
            ("Syncing", (("Syncing", syncing), ("Storage", storage))),
            ("Notifications", (("Notify me when", notifications),)),
            ("Local API", (("Local API", api),)),
        ]
        if self.statement_fields:
            pages.append(("Statements", (("Flex statements", statements),)))
        for title, groups in pages:
            page = QWidget()
            page_layout = QVBoxLayout(page)
            for group_title, form in groups:
                box = QGroupBox(group_title)
                box.setLayout(form)
                page_layout.addWidget(box)
            page_layout.addStretch(1)
            self.tabs.addTab(page, title)
        layout.addWidget(self.tabs)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def result_settings(self) -> Settings:
        """The edited settings (after Accepted)."""
        assert self._result is not None
        return self._result

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Ledger database", "", "SQLite database (*.sqlite *.db);;All files (*)"
        )
        if path:
            self.database.setText(f"sqlite:///{path}")

    def _check_and_accept(self) -> None:
        values = {
            "ib_host": self.host.text(),
            "ib_port": self.port.value(),
            "ib_client_id": self.client_id.value(),
            "ib_account": self.account.text().strip(),
            "ib_timeout": self.timeout.value(),
            "tws_timezone": self.tws_timezone.currentText().strip(),
            "enabled": self.enabled.isChecked(),
            "sync_interval": self.interval.value(),
            "debounce_seconds": self.debounce.value(),
            "sync_on_trade": self.on_trade.isChecked(),
            "sync_on_position_update": self.on_update.isChecked(),
            "mark_missing_as_closed": self.close_missing.isChecked(),
            "calculate_realized_pnl": self.realized.isChecked(),
            "cost_basis": self.cost_basis.currentData(),
            "notify_missing": self.notify_missing.isChecked(),
            "notify_sync_failures": self.notify_failures.isChecked(),
            "notify_failure_threshold": self.failure_threshold.value(),
            "notify_disconnect": self.notify_disconnect.isChecked(),
            "notify_pnl_mismatch": self.notify_pnl.isChecked(),
            "database_url": self.database.text().strip(),
            "api_enabled": self.api_enabled.isChecked(),
            "api_host": self.api_host.text(),
            "api_port": self.api_port.value(),
            "api_token": self.api_token.text().strip(),
            "api_allow_remote": self.api_allow_remote.isChecked(),
        }
        for name, editor in self.statement_fields.items():
            values[name] = editor.value() if isinstance(editor, QSpinBox) else editor.text().strip()
        self._edited = tuple(values)
        try:
            # The class's own validators decide (a subclass's too): the same as the file's.
            kind = type(self._original)
            self._result = kind.model_validate({**self._original.model_dump(), **values})
        except ValidationError as exc:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            self.error.setText(f"Please correct: {problems}")
            return
        self.accept()


def _note(text: str, colour: str) -> QLabel:
    note = QLabel(text)
    note.setWordWrap(True)
    note.setStyleSheet(f"color: {colour}")
    return note


def _secret(value: str, placeholder: str) -> QLineEdit:
    """A masked field (a token): shown only while its Show switch is on."""
    field = QLineEdit(value)
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setPlaceholderText(placeholder)
    field.setProperty("secret", True)
    return field


def _is_secret(editor: QWidget) -> bool:
    return bool(editor.property("secret"))


def _wrap_secret(field: QWidget) -> QWidget:
    assert isinstance(field, QLineEdit)
    show = QCheckBox("Show")
    show.setObjectName(f"{field.objectName() or 'secret'}Show")
    show.toggled.connect(
        lambda on: field.setEchoMode(
            QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password
        )
    )
    row = QHBoxLayout()
    row.addWidget(field, 1)
    row.addWidget(show)
    return _wrap(row)


def _spin(low: int, high: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    return box


def _seconds(low: float, high: float, value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(1)
    box.setValue(value)
    return box


def _wrap(layout: QHBoxLayout) -> QWidget:
    widget = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    widget.setLayout(layout)
    return widget
