"""Mark closed…: the trader's own close of a cached OPEN position (exit price, time, note)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import (
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from app.domain.manual import last_known_price
from app.domain.values import Lifecycle
from app.ui import formatting as fmt


class MarkClosedDialog(QDialog):
    """Asks for exit price (prefilled with the last known price), time and a note."""

    def __init__(self, position: Lifecycle, parent: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("markClosedDialog")
        self.position = position
        contract = position.contract
        self.setWindowTitle("Mark closed")
        intro = QLabel(
            f"Close <b>{fmt.quantity(position.quantity)} {contract.local_symbol or contract.symbol}"
            f"</b> in {position.account} (average {fmt.price(position.average_price)}) in the "
            "ledger. Nothing is sent to the broker."
        )
        intro.setWordWrap(True)
        self.price = QLineEdit(fmt.quantity(last_known_price(position)))
        self.price.setObjectName("exitPrice")
        # "Now" to the microsecond unless the trader edits the time: the widget shows whole
        # seconds, which could otherwise put the close before a position opened this second.
        self._now = datetime.now(UTC)
        self._shown_now = QDateTime.currentDateTime()
        self.when = QDateTimeEdit(self._shown_now)
        self.when.setObjectName("exitTime")
        self.when.setCalendarPopup(True)
        self.when.setDisplayFormat("dd MMM yyyy HH:mm:ss")
        self.note = QLineEdit()
        self.note.setObjectName("closeNote")
        self.note.setPlaceholderText("e.g. closed at another broker")
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b")
        form = QFormLayout()
        form.addRow("Exit price", self.price)
        form.addRow("Closed at", self.when)
        form.addRow("Note", self.note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Mark closed")
        buttons.accepted.connect(self._check_and_accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def exit_price(self) -> Decimal | None:
        """The typed price as an exact decimal, or None when it is not a number ≥ 0."""
        try:
            value = Decimal(self.price.text().strip().replace(",", ""))
        except InvalidOperation:
            return None
        return value if value.is_finite() and value >= 0 else None

    def closed_at(self) -> datetime:
        """The chosen time as an aware UTC datetime."""
        chosen = self.when.dateTime()
        if chosen.toSecsSinceEpoch() == self._shown_now.toSecsSinceEpoch():
            return self._now
        return datetime.fromtimestamp(chosen.toSecsSinceEpoch(), UTC)

    def _check_and_accept(self) -> None:
        if self.exit_price() is None:
            self.error.setText("The exit price must be a number (0 or more).")
            self.price.setFocus(Qt.FocusReason.OtherFocusReason)
            return
        if self.closed_at() < self.position.opened_at:
            self.error.setText("The close time is before the position was opened.")
            return
        self.accept()
