"""Await a dialog's answer on the running (qasync) loop without a nested event loop."""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QDialog, QMessageBox, QWidget


async def result_of(dialog: QDialog) -> int:
    """Open `dialog` window-modal and wait for its result code (Accepted / Rejected)."""
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def finished(code: int) -> None:
        if not future.done():
            future.set_result(code)

    dialog.finished.connect(finished)
    dialog.open()
    try:
        return await future
    finally:
        dialog.finished.disconnect(finished)


async def ask(parent: QWidget, title: str, text: str, detail: str = "") -> bool:
    """A Yes/No question; True for Yes."""
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        parent,
    )
    box.setDefaultButton(QMessageBox.StandardButton.No)
    if detail:
        box.setInformativeText(detail)
    await result_of(box)
    return box.clickedButton() is box.button(QMessageBox.StandardButton.Yes)


async def tell(parent: QWidget, title: str, text: str) -> None:
    """An information message the user acknowledges."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    await result_of(box)
